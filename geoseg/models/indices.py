"""Spectral-index bundles: NDWI, MNDWI and NDVI with a fixed or an Otsu threshold.

They are the classic training-free baselines of water and forest mapping, shipped
as bundles of kind ``index`` so that ``geoseg predict`` and ``geoseg eval`` treat
them like any trained model. The bundle's ``index`` metadata names the index,
its threshold and the logistic steepness; its ``bands`` are the two bands the
index needs (``--bands`` selects them from a scene with other band names). The
kind itself (index arithmetic, metadata check, predictor, units) is
:mod:`geoseg.models.spectral`; this module makes index bundles and resolves
Otsu thresholds.

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import SceneError
from geoseg.grid.windows import PixelWindow, iter_strips
from geoseg.models.bundle import ModelBundle
from geoseg.models.kinds import finish_meta
from geoseg.models.schema import FORMAT, FORMAT_VERSION
from geoseg.models.spectral import DEFAULT_STEEPNESS as DEFAULT_STEEPNESS
from geoseg.models.spectral import INDICES as INDICES
from geoseg.models.spectral import OTSU_BINS as OTSU_BINS
from geoseg.models.spectral import IndexPredictor as IndexPredictor
from geoseg.models.spectral import compute_index as compute_index
from geoseg.models.spectral import normalized_difference as normalized_difference
from geoseg.models.spectral import otsu_threshold as otsu_threshold
from geoseg.models.spectral import threshold_text as threshold_text
from geoseg.models.spectral import validate_index_meta as validate_index_meta
from geoseg.schemes import ClassInfo

if TYPE_CHECKING:
    from geoseg.io.scene import Scene

STRIP_PIXELS = 1 << 21
"""Pixels per strip read while measuring a scene's histogram (bounds memory)."""


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
    for strip in iter_strips(scene.shape, strip_pixels):
        data, valid = scene.read(PixelWindow.from_rasterio(strip))
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
