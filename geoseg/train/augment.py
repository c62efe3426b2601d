"""Training batches: chips cut from prepared images, resized for scale jitter, augmented.

Augmentations suit overhead imagery, where there is no "up": flips and 90°
rotations are exact symmetries; per-band brightness and contrast (an offset and a
gain per band) stand in for atmosphere, season and sensor differences; scale jitter
and coarsening (``resolution``) for resolution differences; quantization to 256
levels for 8-bit products; a wavelength-dependent veil (``haze``) for haze and
thin cloud; band dropout for a band that is missing or poor. Each is drawn from the
generator only when it is on, so a config that leaves them off draws the same
numbers, and trains the same model, as before they existed. Invalid (nodata)
pixels stay at the neutral 0 that :meth:`~geoseg.io.normalize.Normalizer.prepare`
gives them, and their labels stay ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.train.config import AugmentConfig
from geoseg.train.data import ChipRef, TrainingImage
from geoseg.train.labels import IGNORE


def _resize(
    x: NDArray[np.float32], y: NDArray[np.uint8], v: NDArray[np.bool_], size: int
) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.bool_]]:
    """Bilinear for pixels, nearest for labels and validity."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name

    xt = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(x))[None], size=(size, size), mode="bilinear"
    )[0]
    yv = torch.from_numpy(np.stack([y.astype(np.float32), v.astype(np.float32)]))[None]
    yv = F.interpolate(yv, size=(size, size), mode="nearest")[0]
    v2 = yv[1].numpy() > 0.5
    x2 = xt.numpy()
    x2[:, ~v2] = 0.0
    return x2, yv[0].numpy().astype(np.uint8), v2


def cut_chip(
    img: TrainingImage, ref: ChipRef, chip: int
) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.bool_]]:
    """Model input, labels and validity of one chip, resized to ``chip``."""
    sl = (slice(ref.row, ref.row + ref.size), slice(ref.col, ref.col + ref.size))
    x = img.x[(slice(None), *sl)]
    y, v = img.labels[sl], img.valid[sl]
    if ref.size != chip:
        return _resize(x, y, v, chip)
    return x.copy(), y.copy(), v.copy()


WAVELENGTH_UM = {
    "coastal": 0.443,
    "blue": 0.49,
    "green": 0.56,
    "yellow": 0.61,
    "red": 0.665,
    "rededge1": 0.705,
    "rededge2": 0.74,
    "rededge3": 0.783,
    "nir": 0.842,
    "nir08": 0.865,
    "nir09": 0.945,
    "cirrus": 1.375,
    "swir1": 1.61,
    "swir2": 2.19,
    "pan": 0.59,
}
"""Centre wavelengths of the common band names (Sentinel-2's), for the haze veil."""

HAZE_LEVEL = 2.0
"""The bright value (normalized units) the haze veil pulls bands towards."""


def haze_weights(bands: Sequence[str]) -> NDArray[np.float32]:
    """How strongly haze pulls each band: ``(0.49 / wavelength) ** 2``, 0.5 if unknown.

    >>> [round(float(w), 2) for w in haze_weights(["blue", "nir", "swir2", "b7"])]
    [1.0, 0.34, 0.05, 0.5]
    """
    return np.array(
        [(0.49 / WAVELENGTH_UM[b]) ** 2 if b in WAVELENGTH_UM else 0.5 for b in bands],
        dtype=np.float32,
    )


def _coarsen(x: NDArray[np.float32], factor: float) -> NDArray[np.float32]:
    """Average ``x`` down by ``factor`` (area) and resize it back (bilinear)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name

    size = x.shape[-1]
    small = max(1, round(size / factor))
    t = torch.from_numpy(np.ascontiguousarray(x))[None]
    t = F.interpolate(t, size=(small, small), mode="area")
    return F.interpolate(t, size=(size, size), mode="bilinear")[0].numpy()


def _extra(
    x: NDArray[np.float32],
    v: NDArray[np.bool_],
    aug: AugmentConfig,
    rng: np.random.Generator,
    haze: NDArray[np.float32] | None,
) -> NDArray[np.float32]:
    """The sensor-difference augmentations (each drawn only when it is on)."""
    if aug.resolution > 1 and rng.random() < 0.5:
        x = _coarsen(x, float(rng.uniform(1, aug.resolution)))
    if aug.haze:
        t = float(rng.uniform(0, aug.haze))
        w = (t * (haze if haze is not None else haze_weights([""] * x.shape[0])))[:, None, None]
        x = x * (1 - w) + HAZE_LEVEL * w
    if aug.quantize and rng.random() < aug.quantize and v.any():
        lo = x[:, v].min(axis=1)[:, None, None]
        step = np.maximum(x[:, v].max(axis=1)[:, None, None] - lo, 1e-6) / 255
        x = np.round((x - lo) / step) * step + lo
    if aug.band_dropout and x.shape[0] > 1 and rng.random() < aug.band_dropout:
        x = x.copy()
        x[int(rng.integers(x.shape[0]))] = 0.0
    x = np.asarray(x, dtype=np.float32)
    x[:, ~v] = 0.0
    return x


def augment(
    x: NDArray[np.float32],
    y: NDArray[np.uint8],
    v: NDArray[np.bool_],
    aug: AugmentConfig,
    rng: np.random.Generator,
    haze: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """One chip's random augmentations (same draw order always; see the module docstring).

    ``haze`` holds :func:`haze_weights` of the model's bands.
    """
    k = int(rng.integers(4)) if aug.rot90 else 0
    flip = bool(rng.random() < 0.5) if aug.flips else False
    n = x.shape[0]
    gain = rng.uniform(1 - aug.contrast, 1 + aug.contrast, n) if aug.contrast else None
    bias = rng.uniform(-aug.brightness, aug.brightness, n) if aug.brightness else None
    if gain is not None or bias is not None:
        g = np.ones(n) if gain is None else np.asarray(gain)
        b = np.zeros(n) if bias is None else np.asarray(bias)
        x = x * g.astype(np.float32)[:, None, None] + b.astype(np.float32)[:, None, None]
        x[:, ~v] = 0.0
    if aug.resolution > 1 or aug.haze or aug.quantize or aug.band_dropout:
        x = _extra(x, v, aug, rng, haze)
    if k:
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
    if flip:
        x, y = x[:, :, ::-1], y[:, ::-1]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def make_batch(
    images: list[TrainingImage],
    refs: list[ChipRef],
    *,
    chip: int,
    aug: AugmentConfig,
    rng: np.random.Generator,
    bands: Sequence[str] = (),
) -> tuple[Any, Any]:
    """A ``(x, y)`` pair of torch tensors ``(n, bands, chip, chip)`` and ``(n, chip, chip)``.

    ``bands``: the model's band names (for the haze veil's weights).
    """
    import torch

    haze = haze_weights(bands) if aug.haze and bands else None
    xs, ys = [], []
    for ref in refs:
        x, y, v = cut_chip(images[ref.image], ref, chip)
        x, y = augment(x, y, v, aug, rng, haze)
        xs.append(x)
        ys.append(y)
    yt = torch.from_numpy(np.stack(ys)).long()
    return torch.from_numpy(np.stack(xs)), yt


__all__ = ["IGNORE", "augment", "cut_chip", "haze_weights", "make_batch"]
