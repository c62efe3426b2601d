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
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from geoseg.grid.chips import ChipGrid, core_bounds
from geoseg.schemes import NODATA_CLASS

Blend = Literal["smooth", "crop"]
BLENDS: tuple[Blend, ...] = get_args(Blend)
"""Blending modes (``--blend``), as listed by :data:`Blend`."""


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


def first_argmax(values: NDArray[Any]) -> tuple[NDArray[np.uint8], NDArray[Any]]:
    """Index and value of the maximum along axis 0; ties go to the lowest index.

    Same result as ``values.argmax(axis=0)``, but a loop over the (few) classes
    of whole-plane comparisons is several times faster than numpy's argmax
    along a non-contiguous axis.
    """
    best = values[0].copy()
    idx = np.zeros(best.shape, dtype=np.uint8)
    for k in range(1, values.shape[0]):
        better = values[k] > best
        idx[better] = k
        np.maximum(best, values[k], out=best)
    return idx, best


def nodata_cell(
    h: int, w: int, confidence: bool
) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Classes (and confidence) of a cell with no valid pixel."""
    cls = np.full((h, w), NODATA_CLASS, dtype=np.uint8)
    return cls, (cls.copy() if confidence else None)


def softmax(scores: NDArray[np.float32]) -> NDArray[np.float32]:
    """Softmax over axis 0 of ``(classes, rows, cols)`` logits (a new array)."""
    e: NDArray[np.float32] = scores - np.maximum.reduce(scores, axis=0)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=0)
    return e


def classify(
    scores: NDArray[np.float32],
    valid: NDArray[np.bool_],
    class_ids: NDArray[np.uint8],
    *,
    confidence: bool,
    logits: bool = True,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Classes and confidence of pixels covered by a single chip.

    ``scores`` are logits (or probabilities with ``logits=False``); the argmax
    needs no softmax, and the top probability is ``1 / sum(exp(s - s_top))``.
    """
    idx, top = first_argmax(scores)
    classes = class_ids[idx]
    classes[~valid] = NODATA_CLASS
    conf = None
    if confidence:
        if logits:
            e = scores - top
            np.exp(e, out=e)
            top = 1.0 / np.add.reduce(e, axis=0)
        conf = np.rint(np.clip(top, 0.0, 1.0) * 100.0).astype(np.uint8)
        conf[~valid] = NODATA_CLASS
    return classes, conf


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
    idx, top = first_argmax(sums)
    classes = class_ids[idx]
    empty = weights <= 0
    classes[empty] = NODATA_CLASS
    conf = None
    if confidence:
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.rint(np.clip(top.astype(np.float64) * 100.0 / weights, 0.0, 100.0))
        conf = np.where(empty, NODATA_CLASS, pct).astype(np.uint8)
    return classes, conf
