"""The block task: the one piece of maths every engine runs unchanged.

:func:`run_block` reads a block's chips (one read of their union), normalizes
them, runs the model in batches, blends the probabilities into integer sums and
returns finished pixels for the cells only this block covers and raw sums for
the cells it shares with neighbours. Its inputs (:class:`PredictJob`,
:class:`~geoseg.chips.Block`) are small, frozen and picklable, so a Dask worker
can run it exactly as the in-process engine does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.blend import axis_weights, finalize
from geoseg.chips import Block, ChipGrid, Window
from geoseg.normalize import Normalizer
from geoseg.predictor import Predictor
from geoseg.scene import Scene


@dataclass(frozen=True)
class PredictJob:
    """Everything a block task needs besides the model."""

    scene: Scene
    grid: ChipGrid
    blend: str
    batch_size: int
    normalizer: Normalizer
    scale: int
    class_ids: NDArray[np.uint8] = field(repr=False)
    confidence: bool
    row_weights: list[NDArray[np.float32]] = field(repr=False)
    col_weights: list[NDArray[np.float32]] = field(repr=False)

    @classmethod
    def build(
        cls,
        scene: Scene,
        grid: ChipGrid,
        *,
        blend: str,
        batch_size: int,
        normalizer: Normalizer,
        scale: int,
        class_ids: NDArray[np.uint8],
        confidence: bool,
    ) -> PredictJob:
        """Precompute the per-chip weights of the grid."""
        rows, cols = grid.shape
        return cls(
            scene=scene, grid=grid, blend=blend, batch_size=batch_size,
            normalizer=normalizer, scale=scale, class_ids=class_ids, confidence=confidence,
            row_weights=axis_weights(grid.row_starts, grid.chip, grid.overlap, rows, blend),
            col_weights=axis_weights(grid.col_starts, grid.chip, grid.overlap, cols, blend),
        )


@dataclass
class FinalCell:
    """Finished pixels of one cell."""

    window: Window
    classes: NDArray[np.uint8]
    confidence: NDArray[np.uint8] | None


@dataclass
class PartialCell:
    """One block's integer sums for a cell shared with other blocks."""

    key: tuple[int, int]
    window: Window
    sums: NDArray[np.int32]
    weights: NDArray[np.int32]


@dataclass
class BlockResult:
    """What a block task returns to the merger."""

    index: tuple[int, int]
    finals: list[FinalCell]
    partials: list[PartialCell]
    chips_inferred: int
    chips_skipped_nodata: int
    seconds: dict[str, float]


def _chip_windows(job: PredictJob, block: Block) -> list[tuple[int, int, Window]]:
    g = job.grid
    return [
        (i, j, (g.row_starts[i], g.col_starts[j], g.chip, g.chip))
        for i in block.row_chips
        for j in block.col_chips
    ]


def run_block(job: PredictJob, block: Block, predictor: Predictor) -> BlockResult:
    """Infer a block's chips and blend them into final and partial cells."""
    t0 = time.perf_counter()
    g = job.grid
    r0 = g.row_starts[block.row_chips[0]]
    c0 = g.col_starts[block.col_chips[0]]
    h = g.row_starts[block.row_chips[-1]] + g.chip - r0
    w = g.col_starts[block.col_chips[-1]] + g.chip - c0
    data, valid = job.scene.read((r0, c0, h, w))
    job.normalizer(data)
    t_read = time.perf_counter()

    n_cls = len(job.class_ids)
    sums = np.zeros((n_cls, h, w), dtype=np.int32)
    wsum = np.zeros((h, w), dtype=np.int32)
    todo = []
    skipped = 0
    for i, j, (cr, cc, ch, cw) in _chip_windows(job, block):
        sl = (slice(cr - r0, cr - r0 + ch), slice(cc - c0, cc - c0 + cw))
        if not valid[sl].any():
            skipped += 1
            continue
        todo.append((i, j, sl))
    t_model = 0.0
    for k in range(0, len(todo), job.batch_size):
        batch = todo[k : k + job.batch_size]
        x = np.stack([data[(slice(None), *sl)] for _, _, sl in batch])
        tm = time.perf_counter()
        probs = predictor.predict(x)
        t_model += time.perf_counter() - tm
        for (i, j, sl), p in zip(batch, probs, strict=True):
            wt = np.outer(job.row_weights[i], job.col_weights[j])
            wt *= valid[sl]
            wt *= job.scale
            p *= wt
            sums[(slice(None), *sl)] += np.rint(p, out=p).astype(np.int32)
            wsum[sl] += np.rint(wt).astype(np.int32)
    t_blend = time.perf_counter()

    finals, partials = [], []
    for cell in block.cells:
        cr, cc, ch, cw = cell.window
        sl = (slice(cr - r0, cr - r0 + ch), slice(cc - c0, cc - c0 + cw))
        if cell.expected == 1:
            cls, conf = finalize(sums[(slice(None), *sl)], wsum[sl], job.class_ids,
                                 confidence=job.confidence)
            finals.append(FinalCell(cell.window, cls, conf))
        else:
            partials.append(PartialCell(cell.key, cell.window,
                                        sums[(slice(None), *sl)].copy(), wsum[sl].copy()))
    t_end = time.perf_counter()
    return BlockResult(
        index=block.index,
        finals=finals,
        partials=partials,
        chips_inferred=len(todo),
        chips_skipped_nodata=skipped,
        seconds={
            "read": t_read - t0,
            "model": t_model,
            "blend": t_blend - t_read - t_model,
            "cells": t_end - t_blend,
        },
    )


def merge_partial(
    store: dict[tuple[int, int], list[Any]], part: PartialCell, expected: int
) -> tuple[Window, NDArray[np.int32], NDArray[np.int32]] | None:
    """Add a partial cell to ``store``; return its total sums once all arrived."""
    entry = store.get(part.key)
    if entry is None:
        entry = store[part.key] = [part.sums, part.weights, 1]
    else:
        entry[0] += part.sums
        entry[1] += part.weights
        entry[2] += 1
    if entry[2] < expected:
        return None
    del store[part.key]
    return part.window, entry[0], entry[1]
