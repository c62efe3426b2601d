"""Input normalization shared by training and inference.

Training and inference must never disagree about preprocessing, so both build
a :class:`Normalizer` from the bundle's ``normalization`` metadata and call it.
Two kinds exist:

``fixed``
    ``(x * scale + offset - mean) / std`` per band, with constants stored in
    the bundle: right when every scene has the same units (e.g. Landsat DN).
``percentile``
    Per scene and band, ``(x - p_low) / (p_high - p_low)`` clipped to ``[0, 1]``
    (then ``mean``/``std`` if given), with the percentiles measured once per
    scene on a decimated read of its valid pixels: right when models must work
    across sensors and units. The measured values go into the run record, and
    every block uses the same values, so tiling cannot change them.
    With ``joint: true`` one stretch serves every band (the lowest ``p_low``
    and highest ``p_high`` of all bands), so the order of bands at a pixel
    (green above NIR over water) survives normalization, which a per-band
    stretch scrambles from scene to scene.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError, SceneError

STATS_MAX_PIXELS = 1 << 20
"""Pixels read (decimated) to measure per-scene percentiles."""


@dataclass(frozen=True, slots=True)
class Normalizer:
    """Per-band affine map ``x -> (x - sub) * mul`` with an optional clip."""

    sub: tuple[float, ...]
    mul: tuple[float, ...]
    clip: tuple[float, float] | None = None
    post_sub: tuple[float, ...] | None = None
    post_mul: tuple[float, ...] | None = None

    def __call__(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Normalize ``(..., bands, rows, cols)`` float32 in place and return it."""
        shape = (len(self.sub), 1, 1)
        x -= np.asarray(self.sub, dtype=np.float32).reshape(shape)
        x *= np.asarray(self.mul, dtype=np.float32).reshape(shape)
        if self.clip is not None:
            np.clip(x, self.clip[0], self.clip[1], out=x)
        if self.post_sub is not None and self.post_mul is not None:
            x -= np.asarray(self.post_sub, dtype=np.float32).reshape(shape)
            x *= np.asarray(self.post_mul, dtype=np.float32).reshape(shape)
        return x

    def prepare(self, raw: NDArray[Any], valid: NDArray[np.bool_]) -> NDArray[np.float32]:
        """Chips ``(n, bands, rows, cols)`` in scene units to model input.

        Invalid pixels become 0 after normalization (the band mean for ``fixed``,
        the low percentile for ``percentile``), a neutral value, so nodata does
        not push extreme numbers into the receptive field of valid neighbours.
        """
        with np.errstate(over="ignore", invalid="ignore"):  # see finite_mask
            x = self(raw.astype(np.float32))
        x[np.broadcast_to(~valid[:, None], x.shape)] = 0.0
        return x

    def finite_constants(self) -> bool:
        """Whether every constant is a finite float32 (the type the model input is built in)."""
        values = [*self.sub, *self.mul, *(self.post_sub or ()), *(self.post_mul or ())]
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.asarray(values, dtype=np.float32)).all())

    def may_overflow(self, dtype: Any) -> bool:
        """Whether some value of ``dtype`` could normalize to a non-finite number.

        Floats always may (a float64 1e300 is inf in float32). For integers the
        map is monotonic per band, so checking the type's two extremes suffices.
        """
        dt = np.dtype(dtype)
        if dt.kind == "f" or not self.finite_constants():
            return True
        info = np.iinfo(dt)
        ends = np.empty((1, len(self.sub), 1, 2), dtype=np.float64)
        ends[..., 0], ends[..., 1] = info.min, info.max
        return not bool(self.finite_mask(ends).all())

    def finite_mask(self, raw: NDArray[Any]) -> NDArray[np.bool_]:
        """Pixels of ``(..., bands, rows, cols)`` whose every band normalizes to a finite value.

        The same float32 arithmetic as :meth:`__call__`, one band at a time (one
        band of float32 in memory). Overflow is expected here, not warned about.
        """
        ok = np.ones(raw.shape[:-3] + raw.shape[-2:], dtype=bool)
        with np.errstate(over="ignore", invalid="ignore"):
            for b in range(raw.shape[-3]):
                y = raw[..., b, :, :].astype(np.float32)
                y -= np.float32(self.sub[b])
                y *= np.float32(self.mul[b])
                if self.clip is not None:
                    np.clip(y, self.clip[0], self.clip[1], out=y)
                if self.post_sub is not None and self.post_mul is not None:
                    y -= np.float32(self.post_sub[b])
                    y *= np.float32(self.post_mul[b])
                ok &= np.isfinite(y)
        return ok

    def to_dict(self) -> dict[str, Any]:
        """The resolved constants, for the run record."""
        return {"sub": list(self.sub), "mul": list(self.mul), "clip": self.clip}


def validate_normalization(spec: Mapping[str, Any], n_bands: int) -> dict[str, Any]:
    """Check a bundle's ``normalization`` mapping and return it cleaned."""
    kind = spec.get("type")
    out: dict[str, Any] = {"type": kind}
    if kind == "fixed":
        for key in ("mean", "std"):
            vals = spec.get(key)
            if not isinstance(vals, Sequence) or len(vals) != n_bands:
                raise BundleError(f"normalization '{key}' needs {n_bands} numbers, got {vals!r}")
            out[key] = [float(v) for v in vals]
        if any(s <= 0 for s in out["std"]):
            raise BundleError(f"normalization std must be positive, got {out['std']}")
        out["scale"] = float(spec.get("scale", 1.0))
        out["offset"] = float(spec.get("offset", 0.0))
    elif kind == "percentile":
        low, high = float(spec.get("low", 2.0)), float(spec.get("high", 98.0))
        if not 0 <= low < high <= 100:
            raise BundleError(
                f"percentile normalization needs 0 <= low < high <= 100, got {low}, {high}"
            )
        out.update(low=low, high=high)
        if spec.get("joint"):  # key only when set: existing bundles keep their hash
            out["joint"] = True
        for key in ("mean", "std"):
            if key in spec:
                vals = spec[key]
                if not isinstance(vals, Sequence) or len(vals) != n_bands:
                    raise BundleError(f"normalization '{key}' needs {n_bands} numbers")
                out[key] = [float(v) for v in vals]
    else:
        raise BundleError(f"normalization type must be 'fixed' or 'percentile', got {kind!r}")
    return out


def scene_sample(scene: Any, max_pixels: int = STATS_MAX_PIXELS) -> NDArray[np.float64]:
    """``(bands, n)`` valid pixels of a decimated read of a scene's bands.

    Raises
    ------
    SceneError
        The scene has no valid pixel.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from geoseg.io.scene import read_error, read_masks

    rows, cols = scene.shape
    f = max(1.0, (rows * cols / max_pixels) ** 0.5)
    out_shape = (len(scene.bands), max(1, int(rows / f)), max(1, int(cols / f)))
    try:
        with rasterio.open(scene.path) as ds:
            data = ds.read(list(scene.bands), out_shape=out_shape).astype(np.float64)
            valid = np.isfinite(data).all(axis=0)
            if scene.has_mask:
                valid &= read_masks(ds, list(scene.bands), out_shape=out_shape).all(axis=0)
            if scene.alpha is not None:
                valid &= ds.read(scene.alpha, out_shape=out_shape[1:]) > 0
    except RasterioIOError as err:
        raise read_error(scene.path, err) from err
    if not valid.any():
        raise SceneError(f"{scene.path} has no valid pixel (all nodata); nothing to predict")
    sample: NDArray[np.float64] = data[:, valid]
    return sample


def scene_percentiles(
    scene: Any, low: float, high: float, *, max_pixels: int = STATS_MAX_PIXELS
) -> list[tuple[float, float]]:
    """Per-band ``(p_low, p_high)`` of a scene's valid pixels from a decimated read.

    Raises
    ------
    SceneError
        The scene has no valid pixel.
    """
    result = []
    for band in scene_sample(scene, max_pixels):
        lo, hi = np.percentile(band, [low, high])
        result.append((float(lo), float(hi)))
    return result


def build_normalizer(
    spec: Mapping[str, Any], *, stats: list[tuple[float, float]] | None = None
) -> Normalizer:
    """Build the normalizer of a validated spec (``stats`` for ``percentile``)."""
    kind: Literal["fixed", "percentile"] = spec["type"]
    if kind == "fixed":
        scale, offset = spec["scale"], spec["offset"]
        # (x*scale + offset - mean)/std == (x - (mean - offset)/scale) * (scale/std)
        sub = tuple((m - offset) / scale for m in spec["mean"])
        mul = tuple(scale / s for s in spec["std"])
        return Normalizer(sub=sub, mul=mul)
    if stats is None:
        raise BundleError("percentile normalization needs per-scene statistics")
    if spec.get("joint"):
        low, high = min(lo for lo, _ in stats), max(hi for _, hi in stats)
        stats = [(low, high)] * len(stats)
    sub = tuple(lo for lo, _ in stats)
    mul = tuple(1.0 / (hi - lo) if hi > lo else 1.0 for lo, hi in stats)
    post_sub = tuple(spec["mean"]) if "mean" in spec else None
    post_mul = tuple(1.0 / s for s in spec["std"]) if "std" in spec else None
    return Normalizer(sub=sub, mul=mul, clip=(0.0, 1.0), post_sub=post_sub, post_mul=post_mul)
