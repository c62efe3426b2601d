"""``predict_xarray``: a lazy, dask-backed class map for users who live in xarray.

The graph is the local engine's work spelled as dask tasks: one task per block
(:func:`geoseg.engine.task.infer_block`, the same maths) and one per cell, which
takes its pixels from the single block that finished it or adds up the integer
sums of the blocks that share it. The output's dask chunks *are* the cells, so
nothing is recomputed or re-blended when it is sliced, and the bytes equal
``geoseg.pipeline.predict``'s class raster. Compute it with any dask scheduler, a
``distributed.Client`` included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.engine.resources import check_chip
from geoseg.engine.task import BlockResult, PredictJob, infer_block
from geoseg.errors import InputError, MissingDependencyError
from geoseg.grid.blend import fixed_point_scale
from geoseg.grid.chips import Block, BlockPlan, Cell, ChipGrid
from geoseg.io.normalize import build_normalizer
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.schemes import NODATA_CLASS


def _require() -> tuple[Any, Any]:
    try:
        import dask
        import dask.array
        import xarray
    except ImportError as err:
        raise MissingDependencyError(
            "predict_xarray needs xarray and dask: pip install 'geoseg[xarray]'"
        ) from err
    return dask, xarray


def _valid_mask(arr: NDArray[Any], nodata: float | None) -> NDArray[np.bool_]:
    valid = np.ones(arr.shape[1:], dtype=bool)
    if arr.dtype.kind == "f":
        valid &= np.isfinite(arr).all(axis=0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        valid &= (arr != nodata).all(axis=0)
    return valid


def _block_task(
    job: PredictJob,
    block: Block,
    arr: NDArray[Any],
    offset: tuple[int, int],
    bundle: ModelBundle,
    device: str,
    nodata: float | None,
    backend: str = "torch",
) -> BlockResult:
    """Pad the block's pixels to its chip union, mask nodata, infer."""
    from geoseg.engine.backend import get_backend_predictor

    if not device.startswith("cuda"):
        import torch

        if torch.get_num_threads() != 1:  # one task per scheduler thread
            torch.set_num_threads(1)
    _, _, h, w = job.grid.block_window(block)
    data = np.zeros((arr.shape[0], h, w), dtype=arr.dtype)
    valid = np.zeros((h, w), dtype=bool)
    dr, dc = offset
    inner = (slice(dr, dr + arr.shape[1]), slice(dc, dc + arr.shape[2]))
    ok = _valid_mask(arr, nodata)
    data[(slice(None), *inner)] = np.where(ok, arr, 0)
    valid[inner] = ok
    predictor = get_backend_predictor(bundle, device, "fp32", backend=backend, threads=1)
    return infer_block(job, block, data, valid, predictor)


def _cell_task(cell: Cell, job: PredictJob, *results: BlockResult) -> NDArray[np.uint8]:
    """A cell's classes (and confidence, stacked) from the blocks that cover it."""
    from geoseg.grid.blend import finalize

    for res in results:
        for fin in res.finals:
            if fin.key == cell.key:
                return _stack(fin.classes, fin.confidence)
    parts = [p for res in results for p in res.partials if p.key == cell.key]
    if not parts:  # every chip of the cell was nodata
        cls = np.full(cell.window[2:], NODATA_CLASS, dtype=np.uint8)
        return _stack(cls, cls.copy() if job.confidence else None)
    sums: NDArray[np.int32] = np.sum([p.sums for p in parts], axis=0, dtype=np.int32)
    weights: NDArray[np.int32] = np.sum([p.weights for p in parts], axis=0, dtype=np.int32)
    return _stack(*finalize(sums, weights, job.class_ids, confidence=job.confidence))


def _stack(cls: NDArray[np.uint8], conf: NDArray[np.uint8] | None) -> NDArray[np.uint8]:
    return cls[None] if conf is None else np.stack([cls, conf])


def predict_xarray(
    da: Any,
    bundle: ModelBundle | str,
    *,
    chip: int | None = None,
    overlap: int | None = None,
    block: int = 1024,
    batch_size: int = 1,
    blend: str = "smooth",
    device: str = "cpu",
    confidence: bool = False,
    nodata: float | None = None,
    bands: Sequence[int | str] | None = None,
    sensor: str | None = None,
    backend: str = "auto",
) -> Any:
    """Lazy class map of a ``(band, y, x)`` DataArray, as a dask-backed DataArray.

    Parameters
    ----------
    da
        Image with dims ``(band, y, x)`` (e.g. ``rioxarray.open_rasterio(path,
        chunks={"x": 512, "y": 512})``); numpy- or dask-backed.
    bundle
        A :class:`ModelBundle`, a bundle path or a shipped bundle name.
    nodata
        Value marking invalid pixels [``da.rio.nodata`` or the ``_FillValue`` attribute].
    bands
        Positions (0-based) or ``band`` coordinate values to feed the model, in order.
    sensor
        The sensor preset of the values (``geoseg sensors`` lists them). Needed for a
        bundle trained on reflectance with fixed statistics: its scale and offset (a
        Sentinel-2 offset from ``da.attrs`` when they state one) turn the values into
        the reflectance the bundle reads, as ``predict --sensor`` does.
    confidence
        Return a Dataset with ``classes`` and ``confidence`` instead.
    backend
        ``auto`` (ONNX Runtime for a torch bundle on CPU, as ``predict`` picks),
        ``torch`` or ``onnxruntime``; each task runs one thread.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        ``classes`` (uint8, 255 = nodata) on ``da``'s ``y``/``x`` coordinates, with
        its CRS and transform (rioxarray) when ``da`` has them. Nothing runs until
        it is computed.

    Examples
    --------
    >>> import rioxarray
    >>> da = rioxarray.open_rasterio("data/zion/landsat8_2015-08-18_b2345.tif",
    ...                              chunks={"x": 512, "y": 512})
    >>> classes = predict_xarray(da, "landcover-nlcd8")
    >>> classes.dims, classes.dtype.name, type(classes.data).__name__
    (('y', 'x'), 'uint8', 'Array')
    """
    dask, xr = _require()
    bundle = bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)
    from geoseg.engine.backend import choose_backend

    # chosen once, here, so a bad --backend is refused before any graph is built
    runtime = choose_backend(backend, bundle, device, "fp32").name
    da = _select_bands(da, bundle, bands)
    nodata = _nodata_of(da, nodata)
    rows, cols = da.shape[1:]
    check_chip(chip)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    chip = chip or bundle.chip
    grid = ChipGrid(
        (rows, cols), chip, overlap if overlap is not None else min(bundle.overlap, chip - 1)
    )
    plan = BlockPlan(grid, block, keep="core" if blend == "crop" else "chip")
    # padding short batches only up to the chips there are (one shape for the whole run)
    spec = _normalization(bundle, sensor, da.attrs)
    job = _job(da, bundle, spec, grid, blend, min(batch_size, len(grid)), confidence, nodata)
    src = da.data if hasattr(da.data, "dask") else dask.array.from_array(da.data)
    job_d = dask.delayed(job, traverse=False)
    bundle_d = dask.delayed(bundle, traverse=False)
    results = {}
    for blk in plan.blocks():
        r0, c0, h, w = grid.block_window(blk)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        part = src[:, rr0 : min(r0 + h, rows), cc0 : min(c0 + w, cols)]
        results[blk.index] = dask.delayed(_block_task, pure=True)(
            job_d, blk, part, (rr0 - r0, cc0 - c0), bundle_d, device, nodata, runtime
        )
    out = _assemble(dask, plan, job, job_d, results)
    return _wrap(xr, da, out, bundle, confidence)


def _select_bands(da: Any, bundle: ModelBundle, bands: Sequence[int | str] | None) -> Any:
    if da.ndim != 3:
        raise InputError(f"predict_xarray needs dims (band, y, x), got {da.dims}")
    if bands is not None:
        da = (
            da.isel({da.dims[0]: list(bands)})
            if all(isinstance(b, int) for b in bands)
            else da.sel({da.dims[0]: list(bands)})
        )
    if da.shape[0] != len(bundle.bands):
        raise InputError(
            f"the DataArray has {da.shape[0]} bands but bundle '{bundle.name}' expects "
            f"{len(bundle.bands)} ({', '.join(bundle.bands)}); pass bands=[...]"
        )
    return da


def _nodata_of(da: Any, nodata: float | None) -> float | None:
    if nodata is not None:
        return nodata
    rio = getattr(da, "rio", None)
    if rio is not None and rio.nodata is not None:
        return float(rio.nodata)
    fill = da.attrs.get("_FillValue", da.encoding.get("_FillValue"))
    return None if fill is None else float(fill)


def _normalization(
    bundle: ModelBundle, sensor: str | None, attrs: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The bundle's normalization, with the sensor preset's conversion where it needs one."""
    from geoseg.sensors.domain import InputDomain
    from geoseg.sensors.presets import get_preset, preset_offset

    spec = bundle.meta["normalization"]
    data = bundle.meta.get("domain")
    if not isinstance(data, Mapping):
        return spec
    tags = {str(k): str(v) for k, v in attrs.items()}
    return InputDomain.from_dict(data).units_normalization(
        spec,
        get_preset(sensor) if sensor else None,
        lambda preset: preset_offset(preset, tags),
        "the DataArray",
    )


def _job(
    da: Any,
    bundle: ModelBundle,
    spec: Mapping[str, Any],
    grid: ChipGrid,
    blend: str,
    batch_size: int,
    confidence: bool,
    nodata: float | None,
) -> PredictJob:
    stats = None
    if spec["type"] == "percentile":
        step = max(1, int((grid.shape[0] * grid.shape[1] / (1 << 20)) ** 0.5))
        sample = np.asarray(da[:, ::step, ::step].values, dtype=np.float64)
        ok = _valid_mask(sample, nodata)
        if not ok.any():
            raise InputError("the DataArray has no valid pixel (all nodata); nothing to predict")
        stats = []
        for b in sample:
            lo, hi = np.percentile(b[ok], [spec["low"], spec["high"]])
            stats.append((float(lo), float(hi)))
    from geoseg.models.predictor import returns_logits

    normalizer = build_normalizer(spec, stats=stats)
    if not normalizer.finite_constants():
        raise InputError(
            "the DataArray's values (or the bundle's normalization) are beyond float32's range; "
            "the model reads float32: rescale the data or mask those values as nodata"
        )
    return PredictJob.build(
        None,
        grid,
        blend=blend,
        batch_size=batch_size,
        normalizer=normalizer,
        scale=fixed_point_scale(grid),
        class_ids=np.array([c.id for c in bundle.classes], dtype=np.uint8),
        confidence=confidence,
        logits=returns_logits(bundle),
    )


def _assemble(
    dask: Any, plan: BlockPlan, job: PredictJob, job_d: Any, results: dict[tuple[int, int], Any]
) -> Any:
    """The cells as a grid of dask chunks."""
    layers = 2 if job.confidence else 1
    rows: dict[int, list[Any]] = {}
    for cell in plan.cells():
        deps = [results[c] for c in cell.contributors]
        value = dask.delayed(_cell_task, pure=True)(cell, job_d, *deps)
        h, w = cell.window[2:]
        rows.setdefault(cell.key[0], []).append(
            dask.array.from_delayed(value, shape=(layers, h, w), dtype=np.uint8)
        )
    return dask.array.block([rows[k] for k in sorted(rows)])


def _wrap(xr: Any, da: Any, out: Any, bundle: ModelBundle, confidence: bool) -> Any:
    ydim, xdim = da.dims[1], da.dims[2]
    coords = {k: v for k, v in da.coords.items() if set(v.dims) <= {ydim, xdim}}
    attrs = {
        "_FillValue": NODATA_CLASS,
        "bundle": bundle.name,
        "classes": ", ".join(f"{c.id}={c.name}" for c in bundle.classes),
    }
    classes = xr.DataArray(out[0], dims=(ydim, xdim), coords=coords, name="classes", attrs=attrs)
    result = (
        classes
        if not confidence
        else xr.Dataset(
            {
                "classes": classes,
                "confidence": xr.DataArray(
                    out[1],
                    dims=(ydim, xdim),
                    coords=coords,
                    attrs={"_FillValue": NODATA_CLASS, "units": "percent"},
                ),
            }
        )
    )
    rio = getattr(da, "rio", None)
    if rio is not None and rio.crs is not None:
        result = result.rio.write_crs(rio.crs).rio.write_transform(rio.transform())
    return result
