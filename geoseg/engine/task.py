"""The block task: the one piece of maths every engine runs unchanged.

:func:`run_block` reads a block's chips (one read of their union), normalizes
them, runs the model in batches, blends the probabilities into integer sums and
returns finished pixels for the cells only this block covers and raw sums for
the cells it shares with neighbours (:class:`PartialCell`; the pipeline's merge
step adds them up once every block of a cell is in). Its inputs (:class:`PredictJob`,
:class:`~geoseg.grid.chips.Block`) are small, frozen and picklable, so a Dask worker
can run it exactly as the in-process engine does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.grid.blend import axis_weights, classify, finalize, nodata_cell, softmax
from geoseg.grid.chips import Block, Cell, ChipGrid, Window
from geoseg.io.normalize import Normalizer
from geoseg.io.scene import Scene
from geoseg.models.device import Predictor, predict_stream


@dataclass(frozen=True)
class PredictJob:
    """Everything a block task needs besides the model."""

    scene: Scene | None  # None when pixels come from elsewhere (xarray)
    grid: ChipGrid
    blend: str
    batch_size: int
    normalizer: Normalizer
    scale: int
    class_ids: NDArray[np.uint8] = field(repr=False)
    confidence: bool
    row_weights: list[NDArray[np.float32]] = field(repr=False)
    col_weights: list[NDArray[np.float32]] = field(repr=False)
    logits: bool = True  # the predictor returns logits, not probabilities
    backend: str = "torch"  # what runs a torch bundle where the job is sent (Dask workers)

    @classmethod
    def build(
        cls,
        scene: Scene | None,
        grid: ChipGrid,
        *,
        blend: str,
        batch_size: int,
        normalizer: Normalizer,
        scale: int,
        class_ids: NDArray[np.uint8],
        confidence: bool,
        logits: bool = True,
    ) -> PredictJob:
        """Precompute the per-chip weights of the grid."""
        rows, cols = grid.shape
        return cls(
            scene=scene,
            grid=grid,
            blend=blend,
            batch_size=batch_size,
            normalizer=normalizer,
            scale=scale,
            class_ids=class_ids,
            confidence=confidence,
            logits=logits,
            row_weights=axis_weights(grid.row_starts, grid.chip, grid.overlap, rows, blend),
            col_weights=axis_weights(grid.col_starts, grid.chip, grid.overlap, cols, blend),
        )


@dataclass
class FinalCell:
    """Finished pixels of one cell."""

    key: tuple[int, int]
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
    worker: str | None = None
    """The Dask worker that ran the block (``None`` in-process)."""


def _chip_cells(block: Block) -> dict[tuple[int, int], list[Cell]]:
    """For each chip of the block, the cells it covers."""
    out: dict[tuple[int, int], list[Cell]] = {
        (i, j): [] for i in block.row_chips for j in block.col_chips
    }
    for cell in block.cells:
        for i in cell.row_chips:
            for j in cell.col_chips:
                if (i, j) in out:
                    out[(i, j)].append(cell)
    return out


class _Sums:
    """Integer sums of one multi-chip cell inside a block."""

    __slots__ = ("sums", "weights")

    def __init__(self, n_classes: int, h: int, w: int) -> None:
        self.sums = np.zeros((n_classes, h, w), dtype=np.int32)
        self.weights = np.zeros((h, w), dtype=np.int32)


def run_block(job: PredictJob, block: Block, predictor: Predictor) -> BlockResult:
    """Read a block's pixels from the job's scene and :func:`infer_block` them."""
    if job.scene is None:
        raise RuntimeError("run_block needs a job with a scene; use infer_block with pixels")
    t0 = time.perf_counter()
    data, valid = job.scene.read(job.grid.block_window(block), raw=True)
    return infer_block(job, block, data, valid, predictor, read_seconds=time.perf_counter() - t0)


def infer_block(
    job: PredictJob,
    block: Block,
    data: NDArray[Any],
    valid: NDArray[np.bool_],
    predictor: Predictor,
    *,
    read_seconds: float = 0.0,
) -> BlockResult:
    """Infer a block's chips and turn them into final and partial cells.

    ``data``/``valid`` cover :meth:`ChipGrid.block_window`. Cells covered by one chip take
    that chip's prediction directly (argmax, no blending arithmetic); cells
    covered by several chips get fixed-point weighted sums.
    """
    g = job.grid
    r0, c0 = g.block_window(block)[:2]
    t_read = read_seconds
    if job.normalizer.may_overflow(data.dtype):
        # a value the float32 model input cannot hold (float64 1e300) is nodata,
        # decided per pixel, so any block size gives the same answer
        valid = valid & job.normalizer.finite_mask(data)
    chip_cells = _chip_cells(block)
    todo: list[tuple[int, int, tuple[slice, slice]]] = []
    skipped: list[tuple[int, int, tuple[slice, slice]]] = []
    for i, j in chip_cells:
        sl = (
            slice(g.row_starts[i] - r0, g.row_starts[i] - r0 + g.chip),
            slice(g.col_starts[j] - c0, g.col_starts[j] - c0 + g.chip),
        )
        (todo if valid[sl].any() else skipped).append((i, j, sl))
    finals: list[FinalCell] = []
    sums: dict[tuple[int, int], _Sums] = {}
    t_model = t_blend = 0.0
    for i, j, _ in skipped:
        _add_chip(job, i, j, chip_cells[(i, j)], None, None, finals, sums)
    batches = [todo[k : k + job.batch_size] for k in range(0, len(todo), job.batch_size)]
    t_prep = 0.0

    def prepared() -> Iterator[NDArray[np.float32]]:
        nonlocal t_prep
        for batch in batches:
            tp = time.perf_counter()
            x = job.normalizer.prepare(
                np.stack([data[(slice(None), *sl)] for _, _, sl in batch]),
                np.stack([valid[sl] for _, _, sl in batch]),
            )
            t_prep += time.perf_counter() - tp
            yield _pad_batch(x, job.batch_size)

    # predict_stream lets a GPU run one batch while the next is prepared on the CPU
    tm = time.perf_counter()
    for batch, padded in zip(batches, predict_stream(predictor, prepared()), strict=True):
        t_model += time.perf_counter() - tm
        tb = time.perf_counter()
        for (i, j, sl), p in zip(batch, padded[: len(batch)], strict=True):
            _add_chip(job, i, j, chip_cells[(i, j)], p, valid[sl], finals, sums)
        t_blend += time.perf_counter() - tb
        tm = time.perf_counter()
    t_model -= t_prep  # preparing the chips is blending-side work, as before
    t_blend += t_prep
    t_cells = time.perf_counter()
    partials = []
    for cell in block.cells:
        entry = sums.get(cell.key)
        if entry is None:
            continue
        if cell.expected == 1:
            cls, conf = finalize(
                entry.sums, entry.weights, job.class_ids, confidence=job.confidence
            )
            finals.append(FinalCell(cell.key, cell.window, cls, conf))
        else:
            partials.append(PartialCell(cell.key, cell.window, entry.sums, entry.weights))
    t_end = time.perf_counter()
    return BlockResult(
        index=block.index,
        finals=finals,
        partials=partials,
        chips_inferred=len(todo),
        chips_skipped_nodata=len(skipped),
        seconds={
            "read": t_read,
            "model": t_model,
            "blend": t_blend,
            "cells": t_end - t_cells,
        },
    )


def _pad_batch(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """Pad a short batch with zero chips so every forward pass has the same shape.

    Kernels (oneDNN, cuDNN) pick algorithms by input shape, and a chip's output
    can differ in the last float bits between shapes; with one shape for every
    call, a chip's probabilities never depend on which block or batch it was in.
    """
    if len(x) == size:
        return x
    pad = np.zeros((size - len(x), *x.shape[1:]), dtype=x.dtype)
    return np.concatenate([x, pad])


def _add_chip(
    job: PredictJob,
    i: int,
    j: int,
    cells: list[Cell],
    scores: NDArray[np.float32] | None,
    valid: NDArray[np.bool_] | None,
    finals: list[FinalCell],
    sums: dict[tuple[int, int], _Sums],
) -> None:
    """Add one chip's class scores (``None`` for an all-nodata chip) to its cells."""
    g = job.grid
    cr, cc = g.row_starts[i], g.col_starts[j]
    n_cls = len(job.class_ids)
    for cell in cells:
        r, c, h, w = cell.window
        lr, lc = slice(r - cr, r - cr + h), slice(c - cc, c - cc + w)
        if cell.single:
            if scores is None or valid is None:
                finals.append(FinalCell(cell.key, cell.window, *nodata_cell(h, w, job.confidence)))
            else:
                cls, conf = classify(
                    scores[:, lr, lc],
                    valid[lr, lc],
                    job.class_ids,
                    confidence=job.confidence,
                    logits=job.logits,
                )
                finals.append(FinalCell(cell.key, cell.window, cls, conf))
            continue
        entry = sums.get(cell.key)
        if entry is None:
            entry = sums[cell.key] = _Sums(n_cls, h, w)
        if scores is None or valid is None:
            continue
        wt = np.outer(job.row_weights[i][lr], job.col_weights[j][lc])
        wt *= valid[lr, lc]
        wt *= job.scale
        p = softmax(scores[:, lr, lc]) if job.logits else scores[:, lr, lc].copy()
        p *= wt
        q = p
        entry.sums += np.rint(q, out=q).astype(np.int32)
        entry.weights += np.rint(wt).astype(np.int32)
