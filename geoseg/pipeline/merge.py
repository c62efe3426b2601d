"""The merge step: finished cells to the writers, shared cells summed until complete.

Block tasks (:func:`geoseg.engine.task.run_block`) return finished pixels for the
cells only their own chips cover and integer sums for the cells they share with
neighbouring blocks. :class:`Merger` runs on the engine's calling thread: it
writes each finished cell as it arrives, adds shared sums into a
:class:`PartialStore` (in memory, or spilled to disk past a budget) and finalizes a cell
(:func:`geoseg.grid.blend.finalize`) when its last block is in. Integer
addition is associative, so the order blocks arrive in never changes a byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.engine.task import BlockResult, PartialCell, PredictJob
from geoseg.grid.blend import finalize
from geoseg.grid.chips import BlockPlan, Window
from geoseg.io.writer import RasterSink
from geoseg.schemes import NODATA_CLASS

SPILL_BUDGET = 4 * 2**20
"""Bytes of shared-cell sums kept in memory; the rest wait in a temporary folder."""


class PartialStore:
    """Integer sums of cells shared between blocks, kept until their last block arrives.

    Blocks finish row by row, so the cells waiting for the next row of blocks
    span the whole scene width: 24 bytes a pixel for 5 classes, over 100 MB on
    a 16384-pixel-wide scene. Past ``budget`` bytes the sums go to raw files in
    a temporary folder (read back, added to, written again, deleted once
    complete), so memory stays flat however wide the scene is; the arithmetic
    is the same integer addition either way, so the bytes written do not change.

    Examples
    --------
    >>> from geoseg.engine.task import PartialCell
    >>> store = PartialStore({(0, 0): 2})  # cell (0, 0) is shared by two blocks
    >>> sums, weights = np.ones((3, 1, 2), np.int32), np.ones((1, 2), np.int32)
    >>> part = PartialCell((0, 0), (0, 0, 1, 2), sums, weights)
    >>> store.add(part) is None, len(store)  # the first block's sums wait
    (True, 1)
    >>> window, total, weight = store.add(part)  # the second completes the cell
    >>> window, total[:, 0, 0].tolist(), weight.tolist(), len(store)
    ((0, 0, 1, 2), [2, 2, 2], [[2, 2]], 0)
    """

    def __init__(self, expected: dict[tuple[int, int], int], *, budget: int | None = None) -> None:
        self.expected = expected
        self.budget = SPILL_BUDGET if budget is None else budget
        self.nbytes = 0
        self.spilled_cells = 0
        self._mem: dict[tuple[int, int], list[Any]] = {}
        self._disk: dict[tuple[int, int], tuple[Path, int]] = {}
        self._dir: Path | None = None

    def __len__(self) -> int:
        return len(self._mem) + len(self._disk)

    def add(self, part: PartialCell) -> tuple[Window, NDArray[np.int32], NDArray[np.int32]] | None:
        """Add one block's sums for a cell; its window and totals once every block has."""
        key, expected = part.key, self.expected[part.key]
        if key in self._mem:
            entry = self._mem[key]
            entry[0] += part.sums
            entry[1] += part.weights
            entry[2] += 1
            if entry[2] < expected:
                return None
            del self._mem[key]
            self.nbytes -= entry[0].nbytes + entry[1].nbytes
            return part.window, entry[0], entry[1]
        if key in self._disk:
            path, count = self._disk.pop(key)
            sums, weights = self._load(path, part)
            sums += part.sums
            weights += part.weights
            if count + 1 < expected:
                self._save(path, sums, weights)
                self._disk[key] = (path, count + 1)
                return None
            path.unlink()
            return part.window, sums, weights
        if expected <= 1:
            return part.window, part.sums, part.weights
        # own copies: a view would keep a whole deserialized block result alive
        sums, weights = np.array(part.sums), np.array(part.weights)
        size = sums.nbytes + weights.nbytes
        if self.nbytes + size <= self.budget:
            self._mem[key] = [sums, weights, 1]
            self.nbytes += size
        else:
            path = self._folder() / f"{key[0]}_{key[1]}.raw"
            self._save(path, sums, weights)
            self._disk[key] = (path, 1)
            self.spilled_cells += 1
        return None

    def close(self) -> None:
        """Remove the temporary folder, if one was made."""
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _folder(self) -> Path:
        if self._dir is None:
            import tempfile

            self._dir = Path(tempfile.mkdtemp(prefix="geoseg-partials-"))
        return self._dir

    @staticmethod
    def _save(path: Path, sums: NDArray[np.int32], weights: NDArray[np.int32]) -> None:
        with open(path, "wb") as f:
            sums.tofile(f)
            weights.tofile(f)

    @staticmethod
    def _load(path: Path, part: PartialCell) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        with open(path, "rb") as f:
            sums = np.fromfile(f, dtype=np.int32, count=part.sums.size).reshape(part.sums.shape)
            weights = np.fromfile(f, dtype=np.int32, count=part.weights.size)
        return sums, weights.reshape(part.weights.shape)


class Merger:
    """Writes finished cells and merges shared ones, on the engine's calling thread.

    It also keeps the tallies the run record reports: chips inferred and
    skipped, blocks, chips per Dask worker, seconds per stage, pixels per class
    and the confidence sum.
    """

    def __init__(
        self,
        plan: BlockPlan,
        job: PredictJob,
        sinks: dict[str, RasterSink],
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.store = PartialStore({c.key: c.expected for c in plan.cells()})
        self.job = job
        self.batch_size = job.batch_size
        self.sinks = sinks
        self.progress = progress
        self.total = total
        self.done = 0
        self.inferred = 0
        self.skipped = 0
        self.blocks = 0
        self.by_worker: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.write_s = 0.0
        self.class_pixels = np.zeros(256, dtype=np.int64)  # written pixels per class id
        self.confidence_sum = 0  # of the confidence (0..100) of valid pixels

    def __call__(self, res: BlockResult) -> None:
        t0 = time.perf_counter()
        for cell in res.finals:
            self._write(cell.window, cell.classes, cell.confidence)
        for part in res.partials:
            merged = self.store.add(part)
            if merged is not None:
                window, sums, weights = merged
                cls, conf = finalize(
                    sums, weights, self.job.class_ids, confidence=self.job.confidence
                )
                self._write(window, cls, conf)
        self.write_s += time.perf_counter() - t0
        self.blocks += 1
        self.inferred += res.chips_inferred
        self.skipped += res.chips_skipped_nodata
        if res.worker is not None:
            self.by_worker[res.worker] = self.by_worker.get(res.worker, 0) + res.chips_inferred
        for k, v in res.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v
        self.done += res.chips_inferred + res.chips_skipped_nodata
        if self.progress:
            self.progress(self.done, self.total)

    def _write(
        self, window: Window, cls: NDArray[np.uint8], conf: NDArray[np.uint8] | None
    ) -> None:
        self.sinks["classes"].write(window, cls)
        self.class_pixels += np.bincount(cls.ravel(), minlength=256)[:256]
        if conf is not None:
            self.confidence_sum += int(conf[cls != NODATA_CLASS].sum(dtype=np.int64))
            if "confidence" in self.sinks:
                self.sinks["confidence"].write(window, conf)
