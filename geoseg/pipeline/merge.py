"""The merge step: finished cells to the writers, shared cells summed until complete.

Block tasks (:func:`geoseg.engine.task.run_block`) return finished pixels for the
cells only their own chips cover and integer sums for the cells they share with
neighbouring blocks. :class:`Merger` runs on the engine's calling thread: it
writes each finished cell as it arrives, adds shared sums into a
:class:`~geoseg.engine.task.PartialStore` and finalizes a cell
(:func:`geoseg.grid.blend.finalize`) when its last block is in. Integer
addition is associative, so the order blocks arrive in never changes a byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from geoseg.engine.task import BlockResult, PartialStore, PredictJob
from geoseg.grid.blend import finalize
from geoseg.grid.chips import BlockPlan
from geoseg.io.writer import RasterSink
from geoseg.schemes import NODATA_CLASS


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

    def _write(self, window: Any, cls: Any, conf: Any) -> None:
        self.sinks["classes"].write(window, cls)
        self.class_pixels += np.bincount(cls.ravel(), minlength=256)[:256]
        if conf is not None:
            self.confidence_sum += int(conf[cls != NODATA_CLASS].sum(dtype=np.int64))
            if "confidence" in self.sinks:
                self.sinks["confidence"].write(window, conf)
