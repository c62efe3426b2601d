"""Training batches: chips cut from prepared images, resized for scale jitter, augmented.

Augmentations suit overhead imagery, where there is no "up": flips and 90°
rotations are exact symmetries; per-band brightness and contrast stand in for
atmosphere, season and sensor differences; scale jitter for resolution
differences. Invalid (nodata) pixels stay at the neutral 0 that
:meth:`~geoseg.io.normalize.Normalizer.prepare` gives them, and their labels stay
ignored.
"""

from __future__ import annotations

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


def augment(
    x: NDArray[np.float32],
    y: NDArray[np.uint8],
    v: NDArray[np.bool_],
    aug: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """One chip's random flips, rotation, brightness and contrast (same draw order always)."""
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
) -> tuple[Any, Any]:
    """A ``(x, y)`` pair of torch tensors ``(n, bands, chip, chip)`` and ``(n, chip, chip)``."""
    import torch

    xs, ys = [], []
    for ref in refs:
        x, y, v = cut_chip(images[ref.image], ref, chip)
        x, y = augment(x, y, v, aug, rng)
        xs.append(x)
        ys.append(y)
    yt = torch.from_numpy(np.stack(ys)).long()
    return torch.from_numpy(np.stack(xs)), yt


__all__ = ["IGNORE", "augment", "cut_chip", "make_batch"]
