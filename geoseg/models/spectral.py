"""The ``index`` kind: NDWI, MNDWI and NDVI with a threshold, a model without weights.

An index bundle has no tensors; its ``index`` metadata (:class:`IndexPredictor`
reads it) is the whole model: the index, its threshold and the logistic
steepness. This module holds the index arithmetic, the check of that metadata
and the predictor; making index bundles and resolving an Otsu threshold on a
scene are in :mod:`geoseg.models.indices`.

Scores, not labels
    :class:`IndexPredictor` returns per-class *logits* ``(0, k · (index − t))``:
    their softmax is a steep logistic of the index around the threshold ``t``,
    so the positive class (water, forest) wins exactly where ``index > t``, and
    overlap blending and ``--confidence`` work as for any model.

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
from geoseg.models.schema import check_no_onnx_keys

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle

INDICES: dict[str, tuple[str, str]] = {
    "ndwi": ("green", "nir"),
    "mndwi": ("green", "swir1"),
    "ndvi": ("nir", "red"),
}
"""Each index is the normalized difference ``(a − b) / (a + b)`` of these two bands."""

OTSU_BINS = 2000
"""Histogram bins over ``[-1, 1]`` for Otsu (0.001 wide)."""

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


def check_index_meta(meta: dict[str, Any]) -> None:
    """Check an index bundle's metadata in place (the kind registry's hook).

    Raises
    ------
    BundleError
        Keys only ONNX bundles have, or an invalid ``index`` spec (:func:`validate_index_meta`).
    """
    check_no_onnx_keys(meta)
    meta["index"] = validate_index_meta(meta)


def threshold_text(spec: Mapping[str, Any]) -> str:
    """``ndwi > otsu (per scene)`` or ``ndwi > 0.12``, for cards and tables."""
    thr = spec["threshold"]
    if thr["mode"] == "otsu":
        return f"{spec['name']} > Otsu threshold (measured once per scene)"
    text = f"{spec['name']} > {thr['value']:g}"
    if "otsu" in thr:
        text += f" (Otsu on {thr['otsu']['scene']})"
    return text


def index_detail(meta: Mapping[str, Any]) -> str:
    """``ndwi > 0`` or the like: what ``geoseg bundle info`` shows after the kind."""
    return threshold_text(meta["index"])


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


def make_index_predictor(bundle: ModelBundle, device: str, precision: str) -> IndexPredictor:
    """The :class:`IndexPredictor` of an index bundle (float32, whatever ``precision`` says)."""
    return IndexPredictor(bundle, device)
