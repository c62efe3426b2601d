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

Class ids are mapped to matrix rows by the class scheme: ``--scheme`` (a catalog
name or YAML), else the classes embedded in a geoseg class raster. With
``classes`` a subset is scored: truth pixels of other classes are ignored and
predictions of other classes go to an extra ``other`` column (they are errors).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.analysis.metrics import SCORES, ConfusionMatrix
from geoseg.errors import InputError, RasterReadError
from geoseg.grid.windows import iter_strips
from geoseg.io.align import RasterGrid, check_overlap, same_grid, warp_onto
from geoseg.io.classraster import read_scheme, select_classes
from geoseg.io.scene import read_masks
from geoseg.records import write_record
from geoseg.schemes import ClassInfo
from geoseg.train.labels import NO_LABEL, UNKNOWN_NAME, is_vector, read_label_polygons

IGNORE = 255
"""Matrix index of pixels that are not scored."""

WINDOW_PIXELS = 1 << 21
"""Pixels per window read (bounds memory)."""

OTHER = "other"


@dataclass
class EvalResult:
    """Scores of one prediction against one truth raster."""

    prediction: str
    truth: str
    classes: tuple[ClassInfo, ...]
    matrix: ConfusionMatrix
    reprojected: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Row/column names of the confusion matrix."""
        return self.matrix.names

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (NaN scores become ``null``)."""
        return {
            "prediction": self.prediction,
            "truth": self.truth,
            "truth_reprojected": self.reprojected,
            "classes": [c.to_dict() for c in self.classes],
            **self.matrix.to_dict(),
            **self.extra,
        }

    def table(self) -> str:
        """Per-class scores, mIoU, OA and the confusion matrix as plain text."""
        return format_result(self)


# -- reading --------------------------------------------------------------------


def _open(path: str | os.PathLike[str], what: str) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    text = os.fspath(path)
    if not os.path.exists(text) and "://" not in text and not text.startswith("/vsi"):
        raise RasterReadError(f"{what} raster {text} does not exist; check the path")
    try:
        return rasterio.open(text)
    except RasterioIOError as err:
        raise RasterReadError(
            f"cannot open {what} raster {text} ({str(err).splitlines()[0]}); is it a GeoTIFF?"
        ) from err


def _valid(ds: Any, band: int, data: NDArray[Any], window: Any) -> NDArray[np.bool_]:
    ok: NDArray[np.bool_] = read_masks(ds, band, window=window) > 0
    if ds.nodata is not None and not math.isnan(ds.nodata):
        ok &= data != ds.nodata
    return ok


def _lookup(ids: Sequence[int], other: int | None) -> NDArray[np.int64]:
    """Class id (0..255) -> matrix index; ``other`` (or IGNORE) for ids not listed."""
    table = np.full(256, IGNORE if other is None else other, dtype=np.int64)
    for i, cid in enumerate(ids):
        table[cid] = i
    return table


def _check_dtype(ds: Any, what: str) -> None:
    if ds.dtypes[0] not in ("uint8", "int8", "uint16", "int16", "int32", "uint32"):
        raise InputError(
            f"{what} raster {ds.name} holds {ds.dtypes[0]} values, not class ids; pass a class "
            "raster (integers, e.g. a geoseg *_classes.tif)"
        )


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
    pred = _open(prediction, "prediction")
    with pred:
        tru = _open(truth, "truth")
        with tru:
            _check_dtype(pred, "prediction")
            _check_dtype(tru, "truth")
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
                    _RasterTruth(source, tru.nodata, reproject),
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


class _RasterTruth:
    """Truth class ids and validity of one window, from a raster (maybe a warped view)."""

    def __init__(self, ds: Any, nodata: float | None, warped: bool) -> None:
        self.ds, self.nodata, self.warped, self.name = ds, nodata, warped, ds.name

    def read(self, window: Any) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        t = self.ds.read(1, window=window)
        if not self.warped:
            return t, _valid(self.ds, 1, t, window)
        ok = self.ds.read(self.ds.count, window=window) > 0  # the alpha the warper added
        if self.nodata is not None and not math.isnan(self.nodata):
            ok &= t != self.nodata
        return t, ok


class _PolygonTruth:
    """Truth class ids and validity of one window, rasterized from polygons on the fly."""

    def __init__(self, shapes: list[tuple[Any, int]], transform: Any, name: str) -> None:
        import shapely

        self.geoms = [g for g, _ in shapes]
        self.ids = [i for _, i in shapes]
        self.tree = shapely.STRtree(self.geoms)
        self.transform, self.name = transform, name

    def read(self, window: Any) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        import shapely
        from rasterio.features import rasterize
        from rasterio.windows import bounds, transform

        shape = (int(window.height), int(window.width))
        # sorted: where polygons overlap, the later feature wins, as in training labels
        hits = sorted(self.tree.query(shapely.box(*bounds(window, self.transform))))
        if not hits:
            return np.full(shape, NO_LABEL, np.int32), np.zeros(shape, bool)
        t = rasterize(
            [(self.geoms[i], self.ids[i]) for i in hits],
            out_shape=shape,
            transform=transform(window, self.transform),
            fill=NO_LABEL,
            dtype="int32",
        )
        return t, t != NO_LABEL


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

    pred = _open(prediction, "prediction")
    with pred:
        _check_dtype(pred, "prediction")
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
        if not shapes or not _boxes_overlap(
            shapely.total_bounds([g for g, _ in shapes]), (p.left, p.bottom, p.right, p.top)
        ):
            raise InputError(
                f"truth polygons {truth} do not overlap prediction {pred.name}; check that they "
                "cover the same area and that both have the right CRS"
            )
        names = [c.name for c in infos] + ([OTHER] if subset else [])
        cm = ConfusionMatrix(len(names), ignore_index=IGNORE, names=names)
        source = _PolygonTruth(shapes, pred.transform, os.fspath(truth))
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


def _boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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
    truth: _RasterTruth | _PolygonTruth,
    ids: list[int],
    subset: bool,
    window_pixels: int,
) -> None:
    pred_lut = _lookup(ids, len(ids) if subset else None)
    truth_lut = _lookup(ids, None)
    for window in iter_strips((pred.height, pred.width), window_pixels):
        p = pred.read(1, window=window)
        t, ok = truth.read(window)
        ok &= _valid(pred, 1, p, window)
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


# -- presentation ---------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "   -  " if v is None or math.isnan(v) else f"{v:6.3f}"


def format_result(res: EvalResult) -> str:
    """Text table: per-class scores, mIoU, OA, confusion matrix (rows truth)."""
    cm = res.matrix
    pc = cm.per_class()
    width = max(8, *(len(n) for n in cm.names))
    head = f"{'class':<{width}}  {'support':>10}  " + "  ".join(f"{k:>9}" for k in SCORES)
    lines = [head, "-" * len(head)]
    for i, name in enumerate(cm.names):
        if name == OTHER:
            continue
        scores = "  ".join(f"{_fmt(pc[k][i]):>9}" for k in SCORES)
        lines.append(f"{name:<{width}}  {int(cm.support[i]):>10}  {scores}")
    lines += [
        "",
        f"mIoU {_fmt(cm.miou).strip()}   overall accuracy {_fmt(cm.overall_accuracy).strip()}   "
        f"pixels {cm.total}" + ("   (truth reprojected, nearest)" if res.reprojected else ""),
        "",
        "confusion matrix (rows: truth, columns: prediction)",
    ]
    m = cm.matrix
    cw = max(width, *(len(str(v)) for v in m.ravel()))
    lines.append(f"{'':<{width}}  " + "  ".join(f"{n:>{cw}}" for n in cm.names))
    for i, name in enumerate(cm.names):
        if name == OTHER:
            continue
        lines.append(f"{name:<{width}}  " + "  ".join(f"{int(v):>{cw}}" for v in m[i]))
    return "\n".join(lines)


def write_json(results: EvalResult | Sequence[EvalResult], path: str | os.PathLike[str]) -> Path:
    """Write one result (an object) or several (a list) as JSON, atomically."""
    if isinstance(results, EvalResult):
        doc: Any = results.to_dict()
    else:
        doc = [r.to_dict() for r in results]
    return write_record(path, doc)


def write_png(
    results: EvalResult | Sequence[EvalResult],
    path: str | os.PathLike[str],
    *,
    titles: Sequence[str] | None = None,
) -> Path:
    """Confusion matrices as a PNG: colors are row-normalized (recall), cells show counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geoseg.atomic import atomic_path

    items = [results] if isinstance(results, EvalResult) else list(results)
    n = len(items)
    k = max(len(r.names) for r in items)
    fig, axes = plt.subplots(
        1, n, figsize=(1.2 + 0.9 * k * n + 0.6 * n, 1.6 + 0.8 * k), squeeze=False
    )
    for j, (res, ax) in enumerate(zip(items, axes[0], strict=True)):
        m = res.matrix.matrix.astype(np.float64)
        rows = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for (r, c), v in np.ndenumerate(m):
            ax.text(
                c,
                r,
                f"{int(v)}\n{frac[r, c]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if frac[r, c] > 0.6 else "black",
            )
        ax.set_xticks(range(len(res.names)), res.names, rotation=45, ha="right")
        ax.set_yticks(range(len(res.names)), res.names)
        ax.set_xlabel("prediction")
        ax.set_ylabel("truth")
        title = titles[j] if titles else Path(res.prediction).name
        ax.set_title(f"{title}\nmIoU {_fmt(res.matrix.miou).strip()}", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(str(tmp), dpi=110, format="png")
    plt.close(fig)
    return out


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


def format_comparison(results: Sequence[EvalResult]) -> str:
    """One row per model: mIoU, OA and per-class IoU / F1."""
    names = [n for n in results[0].names if n != OTHER]
    cols = ["mIoU", "OA"] + [f"IoU {n}" for n in names] + [f"F1 {n}" for n in names]
    labels = [str(r.extra.get("model", Path(r.prediction).name)) for r in results]
    width = max(5, *(len(m) for m in labels))
    cw = max(8, *(len(c) for c in cols))
    lines = [f"{'model':<{width}}  " + "  ".join(f"{c:>{cw}}" for c in cols)]
    lines.append("-" * len(lines[0]))
    for label, r in zip(labels, results, strict=True):
        pc = r.matrix.per_class()
        idx = [r.names.index(n) for n in names]
        vals = [r.matrix.miou, r.matrix.overall_accuracy]
        vals += [pc["iou"][i] for i in idx] + [pc["f1"][i] for i in idx]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{_fmt(v):>{cw}}" for v in vals))
    lines.append(f"\npixels scored: {results[0].matrix.total} (truth {results[0].truth})")
    return "\n".join(lines)
