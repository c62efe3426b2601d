"""Weight windows, fixed-point accumulation and the finalize step.

Blending is overlap-add: every chip adds ``probability x weight`` and ``weight``
into sums; a pixel's probability is their ratio. The sums are kept as
**integers** (fixed point, ``scale`` units per 1.0): integer addition is
associative, so the sums, and therefore the class raster, are bit-identical
whatever order blocks, workers or the merger add them in. The scale is chosen
from the grid so the sums cannot overflow ``int32``.

Weights depend only on a chip's place in the global grid, never on the block
that computes it:

``smooth`` (default)
    Each chip's weight rises as ``sin^2`` over ``overlap`` pixels on every side
    that has a neighbouring chip (flat on sides at the scene border), so two
    overlapping chips' weights sum to one across a regular overlap.
``crop``
    Each chip keeps only its centre: the pixels nearer its own centre than a
    neighbour's (the middle of each overlap). Every pixel comes from exactly
    one chip, at least ``overlap // 2`` pixels from that chip's inner edges.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from geoseg.chips import ChipGrid, core_bounds
from geoseg.schemes import NODATA_CLASS

Blend = Literal["smooth", "crop"]
BLENDS: tuple[str, ...] = ("smooth", "crop")


def fixed_point_scale(grid: ChipGrid) -> int:
    """Units per 1.0 in the integer sums: as fine as int32 allows, at most 2**22."""
    limit = (2**31 - 1) // (grid.max_cover() + 1)
    return int(min(2**22, 2 ** math.floor(math.log2(limit))))


def axis_weights(
    starts: tuple[int, ...], chip: int, overlap: int, n: int, blend: str
) -> list[NDArray[np.float32]]:
    """1-D weight of each chip along one axis (length ``chip``)."""
    out = []
    last = len(starts) - 1
    if blend == "crop":
        bounds = core_bounds(starts, chip, n)
        for i, s in enumerate(starts):
            w = np.zeros(chip, dtype=np.float32)
            w[bounds[i] - s : bounds[i + 1] - s] = 1.0
            out.append(w)
        return out
    ramp_len = max(overlap, 1)
    x = np.arange(chip, dtype=np.float64) + 0.5
    rise = np.sin(np.pi / 2 * np.clip(x / ramp_len, 0.0, 1.0)) ** 2
    fall = rise[::-1]
    for i in range(len(starts)):
        w = np.ones(chip, dtype=np.float64)
        if i > 0:
            w *= rise
        if i < last:
            w *= fall
        out.append(w.astype(np.float32))
    return out


def finalize(
    sums: NDArray[np.int32],
    weights: NDArray[np.int32],
    class_ids: NDArray[np.uint8],
    *,
    confidence: bool,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Turn integer sums into class ids (255 = nodata) and confidence 0..100.

    Ties go to the lowest class index, so the result depends only on the sums.
    """
    idx = sums.argmax(axis=0)
    classes = class_ids[idx]
    empty = weights <= 0
    classes[empty] = NODATA_CLASS
    conf = None
    if confidence:
        top = np.take_along_axis(sums, idx[None], axis=0)[0].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.rint(np.clip(top * 100.0 / weights, 0.0, 100.0))
        conf = np.where(empty, NODATA_CLASS, pct).astype(np.uint8)
    return classes, conf
