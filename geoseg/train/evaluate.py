"""``eval``: score a class raster against truth (a raster or polygons), or bundles side by side.

The prediction's grid is the reference. When the truth raster is on another
grid (another CRS, resolution or extent) it is warped onto the prediction grid
with *nearest* resampling, so labels are never blended into classes that do
not exist; this happens window by window through a GDAL ``WarpedVRT``, so
memory does not grow with the rasters. A pixel is scored only where both sides
have data: prediction nodata (255 for geoseg outputs, or the file's mask),
truth nodata, and truth pixels outside the truth raster's footprint are left
out. Truth polygons (with an attribute holding class ids or names) are
rasterized onto the prediction grid one window at a time, as training labels
are; pixels outside every polygon are not scored. Pixels are counted into one
:class:`~geoseg.analysis.metrics.ConfusionMatrix` over the whole raster,
which is reduced once at the end.

Results and their tables, JSON and PNG are in :mod:`geoseg.train.scores`;
reading rasters and truth windows in :mod:`geoseg.train._truth`.

Class ids are mapped to matrix rows by the class scheme: ``--scheme`` (a catalog
name or YAML), else the classes embedded in a geoseg class raster. With
``classes`` a subset is scored: truth pixels of other classes are ignored and
predictions of other classes go to an extra ``other`` column (they are errors).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.analysis.metrics import ConfusionMatrix
from geoseg.errors import InputError
from geoseg.grid.windows import iter_strips
from geoseg.io.align import RasterGrid, check_overlap, same_grid, warp_onto
from geoseg.io.classraster import read_scheme, select_classes
from geoseg.schemes import ClassInfo
from geoseg.train._truth import (
    PolygonTruth,
    RasterTruth,
    boxes_overlap,
    check_class_dtype,
    open_raster,
    valid_mask,
)
from geoseg.train.labels import UNKNOWN_NAME, is_vector, read_label_polygons
from geoseg.train.scores import OTHER as OTHER  # these moved to scores in 0.2: re-exported
from geoseg.train.scores import EvalResult as EvalResult
from geoseg.train.scores import format_comparison as format_comparison
from geoseg.train.scores import format_result as format_result
from geoseg.train.scores import write_json as write_json
from geoseg.train.scores import write_png as write_png

IGNORE = 255
"""Matrix index of pixels that are not scored."""

WINDOW_PIXELS = 1 << 21
"""Pixels per window read (bounds memory)."""


def _lookup(ids: Sequence[int], other: int | None) -> NDArray[np.int64]:
    """Class id (0..255) -> matrix index; ``other`` (or IGNORE) for ids not listed."""
    table = np.full(256, IGNORE if other is None else other, dtype=np.int64)
    for i, cid in enumerate(ids):
        table[cid] = i
    return table


def _resolve_classes(
    pred: Any, scheme: str | os.PathLike[str] | None, classes: Sequence[int | str] | None
) -> tuple[tuple[ClassInfo, ...], bool]:
    infos = read_scheme(pred, scheme)
    if not infos:
        raise InputError(
            f"{pred.name} does not embed a class scheme (not a geoseg class raster); "
            "pass --scheme (e.g. water, nlcd8 or a YAML file)"
        )
    if classes is None:
        return infos, False
    picked = select_classes(infos, classes)
    subset = len(picked) < len(infos)
    return tuple(picked), subset


def evaluate(
    prediction: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    *,
    scheme: str | os.PathLike[str] | None = None,
    classes: Sequence[int | str] | None = None,
    field: str | None = None,
    window_pixels: int = WINDOW_PIXELS,
) -> EvalResult:
    """Score a class raster against a truth raster or truth polygons.

    Parameters
    ----------
    prediction
        Class raster (e.g. ``*_classes.tif`` from ``geoseg predict``); its grid is
        the reference.
    truth
        Label raster with the same class ids, on any grid that overlaps the prediction;
        or polygons (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, GeoParquet) whose
        attribute ``field`` holds class ids or names: they are rasterized onto the
        prediction grid window by window (a pixel takes the class of the polygon over
        its centre), and pixels outside every polygon are not scored.
    scheme
        Class scheme (catalog name or YAML); default: the one embedded in ``prediction``.
    classes
        Ids or names of the classes to score (default: all of the scheme).
    field
        Attribute of truth polygons that holds the class; unused for a truth raster.
    window_pixels
        Pixels per window read; any value gives the same counts.

    Returns
    -------
    EvalResult

    Raises
    ------
    InputError
        The rasters do not overlap, no pixel has data on both sides, no class
        scheme, or a class id outside the scheme.
    RasterReadError
        A raster is missing or unreadable.

    Examples
    --------
    >>> label = "data/water/olinda_water_mndwi_otsu.tif"
    >>> r = evaluate(label, label, scheme="water")  # a label scored against itself
    >>> r.matrix.overall_accuracy, r.names
    (1.0, ['land', 'water'])
    """
    if is_vector(truth):
        return _evaluate_polygons(
            prediction,
            truth,
            scheme=scheme,
            classes=classes,
            field=field,
            window_pixels=window_pixels,
        )
    pred = open_raster(prediction, "prediction")
    with pred:
        tru = open_raster(truth, "truth")
        with tru:
            check_class_dtype(pred, "prediction")
            check_class_dtype(tru, "truth")
            infos, subset = _resolve_classes(pred, scheme, classes)
            ref = RasterGrid.of(pred)
            check_overlap(
                RasterGrid.of(tru),
                ref,
                name=f"truth {tru.name}",
                ref_name=f"prediction {pred.name}",
            )
            names = [c.name for c in infos] + ([OTHER] if subset else [])
            cm = ConfusionMatrix(len(names), ignore_index=IGNORE, names=names)
            ids = [c.id for c in infos]
            reproject = not same_grid(pred, tru)
            # the alpha band marks pixels outside the truth footprint (and its nodata):
            # without it they would read as 0, a valid class id
            source = warp_onto(tru, ref, alpha=True) if reproject else tru
            try:
                _accumulate(
                    cm,
                    pred,
                    RasterTruth(source, tru.nodata, reproject),
                    ids,
                    subset,
                    window_pixels,
                )
            finally:
                if reproject:
                    source.close()
    _check_counted(cm, prediction, truth)
    return EvalResult(
        prediction=os.fspath(prediction),
        truth=os.fspath(truth),
        classes=infos,
        matrix=cm,
        reprojected=reproject,
    )


def _evaluate_polygons(
    prediction: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    *,
    scheme: str | os.PathLike[str] | None,
    classes: Sequence[int | str] | None,
    field: str | None,
    window_pixels: int,
) -> EvalResult:
    import shapely

    pred = open_raster(prediction, "prediction")
    with pred:
        check_class_dtype(pred, "prediction")
        infos, subset = _resolve_classes(pred, scheme, classes)
        shapes = read_label_polygons(
            os.fspath(truth),
            pred.crs,
            field,
            read_scheme(pred, scheme),
            field_option="--field",
        )
        unknown = [g for g, i in shapes if i == UNKNOWN_NAME]
        if unknown:
            raise InputError(
                f"{len(unknown)} truth polygons in {truth} name a class that is not in the "
                f"scheme ({', '.join(f'{c.id}={c.name}' for c in infos)}); fix their "
                "attribute or pass --scheme"
            )
        p = pred.bounds
        if not shapes or not boxes_overlap(
            shapely.total_bounds([g for g, _ in shapes]), (p.left, p.bottom, p.right, p.top)
        ):
            raise InputError(
                f"truth polygons {truth} do not overlap prediction {pred.name}; check that they "
                "cover the same area and that both have the right CRS"
            )
        names = [c.name for c in infos] + ([OTHER] if subset else [])
        cm = ConfusionMatrix(len(names), ignore_index=IGNORE, names=names)
        source = PolygonTruth(shapes, pred.transform, os.fspath(truth))
        _accumulate(cm, pred, source, [c.id for c in infos], subset, window_pixels)
    _check_counted(cm, prediction, truth)
    return EvalResult(
        prediction=os.fspath(prediction),
        truth=os.fspath(truth),
        classes=infos,
        matrix=cm,
        reprojected=False,
        extra={"truth_polygons": len(shapes), "field": field},
    )


def _check_counted(
    cm: ConfusionMatrix, prediction: str | os.PathLike[str], truth: str | os.PathLike[str]
) -> None:
    if cm.total == 0:
        raise InputError(
            f"no pixel has data in both {prediction} and {truth} (for the scored classes); "
            "check their nodata values, extents and --classes"
        )


def _accumulate(
    cm: ConfusionMatrix,
    pred: Any,
    truth: RasterTruth | PolygonTruth,
    ids: list[int],
    subset: bool,
    window_pixels: int,
) -> None:
    pred_lut = _lookup(ids, len(ids) if subset else None)
    truth_lut = _lookup(ids, None)
    for window in iter_strips((pred.height, pred.width), window_pixels):
        p = pred.read(1, window=window)
        t, ok = truth.read(window)
        ok &= valid_mask(pred, 1, p, window)
        _check_range(p[ok], "prediction", pred.name)
        _check_range(t[ok], "truth", truth.name)
        t_idx = truth_lut[t.astype(np.int64).clip(0, 255)]
        p_idx = pred_lut[p.astype(np.int64).clip(0, 255)]
        t_idx[~ok] = IGNORE
        if not subset:
            _check_known(p_idx[ok], p[ok], "prediction", pred.name)
            _check_known(t_idx[ok], t[ok], "truth", truth.name)
        p_idx[t_idx == IGNORE] = 0  # not counted: any in-range value
        cm.update(p_idx, t_idx)


def _check_range(values: NDArray[Any], what: str, name: str) -> None:
    if values.size and (int(values.min()) < 0 or int(values.max()) > 254):
        bad = int(values.min()) if int(values.min()) < 0 else int(values.max())
        raise InputError(f"{what} {name} holds class id {bad}, outside 0..254; relabel it")


def _check_known(idx: NDArray[np.int64], raw: NDArray[Any], what: str, name: str) -> None:
    unknown = idx == IGNORE
    if unknown.any():
        bad = sorted({int(v) for v in np.unique(raw[unknown])})[:5]
        raise InputError(
            f"{what} {name} holds class ids {bad} that are not in the scheme; pass --classes to "
            "score a subset or --scheme for the right scheme"
        )


# -- several bundles on one scene ----------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """A bundle to compare, with the scene bands it reads (``None``: by name/count)."""

    bundle: str
    bands: tuple[int | str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``NAME`` or ``NAME@BANDS`` (``ndwi-otsu@2,4``, ``water@blue,green,red,nir``)."""
        ref, sep, bands = text.rpartition("@")
        if not sep:
            return cls(text)
        if not ref or not bands.strip():
            raise InputError(f"--model {text!r}: write NAME or NAME@BANDS, e.g. ndwi-otsu@2,4")
        parsed = tuple(int(b) if b.strip().isdigit() else b.strip() for b in bands.split(","))
        return cls(ref, parsed)


def compare_bundles(
    image: str | os.PathLike[str],
    truth: str | os.PathLike[str],
    models: Sequence[ModelRef | str],
    *,
    out_dir: str | os.PathLike[str],
    scheme: str | os.PathLike[str] | None = None,
    classes: Sequence[int | str] | None = None,
    field: str | None = None,
    **predict_options: Any,
) -> list[EvalResult]:
    """Predict ``image`` with each bundle and score every class map against ``truth``.

    Each bundle writes into its own folder ``out_dir/<bundle name>/`` (vectors
    off; a repeated name gets ``-2``, ``-3`` …). Bundles must share a class
    scheme for the scores to be comparable; ``scheme`` defaults to the first
    bundle's.

    Examples
    --------
    >>> import tempfile
    >>> [r] = compare_bundles("data/water/olinda_landsat7_etm_6band.tif",
    ...     "data/water/olinda_water_mndwi_otsu.tif", ["ndwi-otsu@2,4"],
    ...     out_dir=tempfile.mkdtemp(), device="cpu")
    >>> r.extra["model"], r.names
    ('ndwi-otsu', ['land', 'water'])
    """
    from geoseg.models.bundle import load_bundle
    from geoseg.pipeline.predict import predict

    refs = [m if isinstance(m, ModelRef) else ModelRef.parse(m) for m in models]
    if not refs:
        raise InputError("pass at least one --model to compare")
    bundles = [load_bundle(r.bundle) for r in refs]
    ref_ids = [c.id for c in bundles[0].classes]
    for b in bundles[1:]:
        if [c.id for c in b.classes] != ref_ids and scheme is None:
            raise InputError(
                f"bundles '{bundles[0].name}' and '{b.name}' have different class schemes; "
                "pass --scheme and --classes to score the classes they share"
            )
    results = []
    labels = _unique_labels([b.name for b in bundles])
    for ref, bundle, label in zip(refs, bundles, labels, strict=True):
        folder = Path(out_dir) / label
        [res] = predict(
            image,
            bundle,
            folder,
            bands=ref.bands,
            vector=False,
            overwrite=True,
            **predict_options,
        )
        scored = evaluate(
            res.outputs["classes"],
            truth,
            scheme=scheme,
            classes=classes,
            field=field,
        )
        scored.extra["model"] = label
        scored.extra["bundle"] = ref.bundle
        scored.extra["bundle_sha256"] = res.record["bundle"]["sha256"]
        if "index" in res.record["bundle"]:
            scored.extra["index"] = res.record["bundle"]["index"]
        results.append(scored)
    return results


def _unique_labels(names: Sequence[str]) -> list[str]:
    """Bundle names, with ``-2``, ``-3`` … added to repeats (their folders must differ)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out
