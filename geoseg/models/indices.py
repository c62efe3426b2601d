"""Spectral-index "models": NDWI, MNDWI and NDVI with a fixed or an Otsu threshold.

They are the classic training-free baselines of water and forest mapping, shipped
as bundles of kind ``index`` so that ``geoseg predict`` and ``geoseg eval`` treat
them like any trained model. The bundle's ``index`` metadata names the index,
its threshold and the logistic steepness; its ``bands`` are the two bands the
index needs (``--bands`` selects them from a scene with other band names).

Scores, not labels
    :class:`IndexPredictor` returns per-class *logits* ``(0, k · (index − t))``:
    their softmax is a steep logistic of the index around the threshold ``t``,
    so the positive class (water, forest) wins exactly where ``index > t``, and
    overlap blending and ``--confidence`` work as for any model.

Why Otsu is computed once per scene, never per chip
    An Otsu threshold measured on each chip would depend on where the chip grid
    falls (a chip that is all land still gets split in two), so neighbouring
    chips would disagree in their overlap and the class raster would change with
    the chip size: it would break partition invariance and seamless stitching.
    An ``otsu`` bundle is therefore *resolved per scene before prediction*:
    :func:`resolve_scene_bundle` reads the whole scene strip by strip (bounded
    memory), accumulates an integer histogram of the index over its valid
    pixels on fixed bins over ``[-1, 1]``, picks Otsu's threshold from that
    histogram and returns a copy of the bundle with a ``fixed`` threshold (and
    where it came from) in its metadata. Integer counts add up to the same
    histogram whatever the strip size, so the threshold, and with it every
    block, depends on the scene only: the local and the Dask engine receive the
    same resolved bundle, and the run record carries the threshold.

Units
    An index is a ratio, so a per-band *scale* cancels out but an *offset* does
    not. Index bundles use ``fixed`` normalization with mean 0 and one common
    std, i.e. raw values pass through unchanged: right for DN or reflectance
    without an offset (Landsat L1 DN, NAIP, Sentinel-2 L2A before processing
    baseline 04.00). For products with an offset (Landsat Collection 2 L2,
    recent Sentinel-2 L2A) set the normalization's ``scale`` and ``offset`` to
    the product's; both the histogram and the prediction apply them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError, SceneError

if TYPE_CHECKING:
    from geoseg.io.scene import Scene
    from geoseg.models.bundle import ModelBundle

INDICES: dict[str, tuple[str, str]] = {
    "ndwi": ("green", "nir"),
    "mndwi": ("green", "swir1"),
    "ndvi": ("nir", "red"),
}
"""Each index is the normalized difference ``(a − b) / (a + b)`` of these two bands."""

OTSU_BINS = 2000
"""Histogram bins over ``[-1, 1]`` for Otsu (0.001 wide)."""

STRIP_PIXELS = 1 << 21
"""Pixels per strip read while measuring a scene's histogram (bounds memory)."""

DEFAULT_STEEPNESS = 50.0
"""Logit per unit of index: 0.1 past the threshold gives a probability of 0.993."""


def normalized_difference(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float32]:
    """``(a − b) / (a + b)`` as float32, 0 where ``a + b`` is 0, clipped to ``[-1, 1]``.

    Values outside ``[-1, 1]`` only arise from negative inputs (e.g. reflectance
    below 0 after an offset); clipping keeps them in the histogram's range.

    Examples
    --------
    >>> normalized_difference(np.array([3.0, 1.0, 0.0]), np.array([1.0, 3.0, 0.0]))
    array([ 0.5, -0.5,  0. ], dtype=float32)
    """
    a32 = np.asarray(a, dtype=np.float32)
    b32 = np.asarray(b, dtype=np.float32)
    num = a32 - b32
    den = a32 + b32
    out = np.zeros(np.broadcast_shapes(a32.shape, b32.shape), dtype=np.float32)
    np.divide(num, den, out=out, where=den != 0)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def compute_index(name: str, data: NDArray[Any]) -> NDArray[np.float32]:
    """The index ``name`` of ``(..., 2, rows, cols)`` data in the index's band order.

    Examples
    --------
    >>> compute_index("ndwi", np.array([[[60.0]], [[20.0]]]))  # green, nir
    array([[0.5]], dtype=float32)
    """
    if name not in INDICES:
        raise BundleError(f"unknown index {name!r}; known: {', '.join(INDICES)}")
    return normalized_difference(data[..., 0, :, :], data[..., 1, :, :])


def otsu_threshold(counts: NDArray[Any], edges: NDArray[Any]) -> float:
    """Otsu's threshold from a histogram: the bin edge maximizing between-class variance.

    Pixels below the returned edge form one class, pixels at or above it the
    other. Ties go to the lowest edge, so the result is deterministic.

    Raises
    ------
    SceneError
        Fewer than two non-empty bins: the values cannot be split in two.

    Examples
    --------
    >>> counts = np.array([5, 5, 0, 0, 5, 5])
    >>> otsu_threshold(counts, np.linspace(0.0, 6.0, 7))
    3.0
    """
    c = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    if np.count_nonzero(c) < 2:
        raise SceneError(
            "the index takes a single value over the scene's valid pixels, so Otsu cannot "
            "split it; use a fixed-threshold bundle (e.g. ndwi) instead"
        )
    centers = (e[:-1] + e[1:]) / 2
    w0 = np.cumsum(c)[:-1]
    m0 = np.cumsum(c * centers)[:-1]
    total, mass = c.sum(), (c * centers).sum()
    w1 = total - w0
    ok = (w0 > 0) & (w1 > 0)
    between = np.zeros_like(w0)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=ok)
    mu1 = np.divide(mass - m0, w1, out=np.zeros_like(m0), where=ok)
    between[ok] = w0[ok] * w1[ok] * (mu0[ok] - mu1[ok]) ** 2
    # Across empty bins between two modes the split, and so the variance, is the
    # same (exactly: adding zeros changes no sum): take the middle of that run, not
    # its first edge, so the threshold lies midway between the modes.
    first = int(np.argmax(between))
    last = first
    while last + 1 < len(between) and between[last + 1] == between[first]:
        last += 1
    i = (first + last) // 2
    return round(float(e[i + 1]), 9)


# -- the bundle's ``index`` metadata -------------------------------------------


def validate_index_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Check an index bundle's ``index`` spec, bands, classes and normalization.

    Returns the cleaned ``index`` mapping.

    Raises
    ------
    BundleError
        Unknown index, wrong bands, bad threshold, or a normalization that is
        not a plain pass-through (ratios of stretched bands mean nothing).
    """
    spec = meta.get("index")
    if not isinstance(spec, Mapping):
        raise BundleError("an index bundle needs an 'index' mapping (name, threshold)")
    name = spec.get("name")
    if name not in INDICES:
        raise BundleError(f"index bundle: unknown index {name!r}; known: {', '.join(INDICES)}")
    if [str(b).lower() for b in meta["bands"]] != list(INDICES[str(name)]):
        raise BundleError(
            f"index bundle '{meta.get('name')}': {name} needs bands "
            f"{', '.join(INDICES[str(name)])} in that order, got {meta['bands']}"
        )
    if len(meta["classes"]) != 2:
        raise BundleError("an index bundle has exactly two classes: negative, then positive")
    norm = meta["normalization"]
    if (
        norm.get("type") != "fixed"
        or any(m != 0 for m in norm["mean"])
        or len(set(norm["std"])) != 1
    ):
        raise BundleError(
            "an index bundle needs 'fixed' normalization with mean 0 and one common std "
            "(a pass-through, optionally with scale/offset), so band ratios keep their meaning"
        )
    thr = spec.get("threshold")
    if not isinstance(thr, Mapping) or thr.get("mode") not in ("fixed", "otsu"):
        raise BundleError("index 'threshold' must be {mode: fixed, value: …} or {mode: otsu}")
    out_thr = dict(thr)
    if thr["mode"] == "fixed":
        value = thr.get("value")
        if not isinstance(value, int | float) or not -1.0 <= float(value) <= 1.0:
            raise BundleError(f"a fixed index threshold must be a number in [-1, 1], got {value!r}")
        out_thr["value"] = float(value)
    steep = float(spec.get("steepness", DEFAULT_STEEPNESS))
    if not math.isfinite(steep) or steep <= 0:
        raise BundleError(f"index 'steepness' must be a positive number, got {steep}")
    return {**spec, "name": name, "threshold": out_thr, "steepness": steep}


def make_index_bundle(
    name: str,
    *,
    index: str,
    threshold: float | str,
    classes: Any,
    chip: int = 512,
    description: str = "",
    card: str = "",
    steepness: float = DEFAULT_STEEPNESS,
    scale: float = 1.0,
    offset: float = 0.0,
) -> ModelBundle:
    """Create an index bundle.

    Parameters
    ----------
    name
        Bundle name.
    index
        ``ndwi``, ``mndwi`` or ``ndvi``.
    threshold
        A number in ``[-1, 1]``, or ``"otsu"`` (resolved per scene at predict time).
    classes
        Two classes (mappings or :class:`~geoseg.schemes.ClassInfo`): negative, positive.
    chip
        Chip size; the index is per pixel, so overlap is 0 and any chip gives the same map.
    description, card
        Shown by ``geoseg bundle info``.
    steepness
        Logit per unit of index (confidence sharpness).
    scale, offset
        Applied to raw values before the index (for products with an offset).

    Examples
    --------
    >>> from geoseg.schemes import load_scheme
    >>> b = make_index_bundle("ndwi", index="ndwi", threshold=0.0, classes=load_scheme("water"))
    >>> b.kind, b.bands, b.meta["index"]["threshold"]
    ('index', ('green', 'nir'), {'mode': 'fixed', 'value': 0.0})
    """
    from geoseg.models.bundle import FORMAT, FORMAT_VERSION, ModelBundle, finish_meta
    from geoseg.schemes import ClassInfo

    thr: dict[str, Any] = (
        {"mode": "otsu", "bins": OTSU_BINS}
        if threshold == "otsu"
        else {"mode": "fixed", "value": float(threshold)}
    )
    bands = list(INDICES.get(index, ()))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "kind": "index",
        "architecture": None,
        "encoder": None,
        "arch_params": {},
        "index": {"name": index, "threshold": thr, "steepness": float(steepness)},
        "bands": bands,
        "input_units": "DN or reflectance without offset (or set scale/offset)",
        "normalization": {
            "type": "fixed",
            "mean": [0.0] * len(bands),
            "std": [1.0] * len(bands),
            "scale": float(scale),
            "offset": float(offset),
        },
        "classes": [c.to_dict() if isinstance(c, ClassInfo) else dict(c) for c in classes],
        "chip": int(chip),
        "overlap": 0,
        "resolution_m": None,
        "provenance": {"created_by": "geoseg.indices.make_index_bundle", "trained": False},
        "card": card,
    }
    return ModelBundle(meta=finish_meta(meta, {}), tensors={})


def threshold_text(spec: Mapping[str, Any]) -> str:
    """``ndwi > otsu (per scene)`` or ``ndwi > 0.12``, for cards and tables."""
    thr = spec["threshold"]
    if thr["mode"] == "otsu":
        return f"{spec['name']} > Otsu threshold (measured once per scene)"
    text = f"{spec['name']} > {thr['value']:g}"
    if "otsu" in thr:
        text += f" (Otsu on {thr['otsu']['scene']})"
    return text


# -- prediction ----------------------------------------------------------------


class IndexPredictor:
    """Per-class logits ``(0, k · (index − t))`` of a fixed-threshold index bundle."""

    logits = True

    def __init__(self, bundle: ModelBundle, device: str = "cpu") -> None:
        spec = bundle.meta["index"]
        if spec["threshold"]["mode"] != "fixed":
            raise BundleError(
                f"index bundle '{bundle.name}' has an Otsu threshold that is measured per "
                "scene; run it through geoseg.pipeline.predict (or resolve_scene_bundle) first"
            )
        self.name = str(spec["name"])
        self.threshold = np.float32(spec["threshold"]["value"])
        self.steepness = np.float32(spec["steepness"])
        self.n_classes = 2
        self.device = device

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        """``(n, 2, r, c)`` pass-through bands -> ``(n, 2, r, c)`` logits."""
        idx = compute_index(self.name, chips)
        out = np.zeros((chips.shape[0], 2, *chips.shape[2:]), dtype=np.float32)
        np.subtract(idx, self.threshold, out=out[:, 1])
        out[:, 1] *= self.steepness
        return out


def scene_index_histogram(
    scene: Scene, bundle: ModelBundle, *, strip_pixels: int = STRIP_PIXELS
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Integer histogram of the bundle's index over a scene's valid pixels.

    The scene is read in full-width strips of about ``strip_pixels`` pixels, so
    memory does not grow with the scene; the counts do not depend on the strip
    size. Pixels whose two bands sum to 0 are left out (no index).
    """
    from geoseg.io.normalize import build_normalizer

    spec = bundle.meta["index"]
    bins = int(spec["threshold"].get("bins", OTSU_BINS))
    edges = np.linspace(-1.0, 1.0, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    normalizer = build_normalizer(bundle.meta["normalization"])
    rows, cols = scene.shape
    step = max(1, strip_pixels // max(cols, 1))
    for r0 in range(0, rows, step):
        data, valid = scene.read((r0, 0, min(step, rows - r0), cols))
        x = normalizer(data)
        ok = valid & ((x[0] + x[1]) != 0)
        idx = compute_index(spec["name"], x)[ok]
        counts += np.histogram(idx, bins=edges)[0]
    return counts, edges


def resolve_scene_bundle(scene: Scene, bundle: ModelBundle) -> ModelBundle:
    """The bundle to run on ``scene``: an Otsu index bundle becomes a fixed-threshold one.

    Any other bundle is returned unchanged. The resolved bundle keeps the name;
    its ``index.threshold`` records the value, the scene, the valid-pixel count
    and the hash of the bundle it was resolved from.

    Raises
    ------
    SceneError
        The scene has no valid pixel with a defined index, or the index is constant.
    """
    if bundle.kind != "index" or bundle.meta["index"]["threshold"]["mode"] != "otsu":
        return bundle
    counts, edges = scene_index_histogram(scene, bundle)
    n = int(counts.sum())
    if n == 0:
        raise SceneError(
            f"{scene.path} has no valid pixel where {bundle.meta['index']['name']} is defined; "
            "check its nodata value or --bands"
        )
    value = otsu_threshold(counts, edges)
    spec = bundle.meta["index"]
    thr = {
        "mode": "fixed",
        "value": value,
        "otsu": {
            "scene": scene.stem,
            "valid_pixels": n,
            "bins": len(counts),
            "resolved_from_sha256": bundle.sha256,
        },
    }
    return bundle.with_meta(index={**spec, "threshold": thr})
