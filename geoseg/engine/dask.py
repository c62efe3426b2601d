"""The Dask engine: the same block task on the workers of a ``dask.distributed`` cluster.

Nothing here computes: each task calls :func:`geoseg.engine.task.run_block`
exactly as the local engine does, so the class raster is the same bytes. The
bundle is scattered to every worker once and each worker process builds its
model once (``predictor.get_predictor`` caches it), not once per task. Blocks
are submitted with a bounded number in flight and results stream back to this
process, which merges and writes them: that is the backpressure that keeps the
client's memory flat. If a worker dies, the scheduler reruns its blocks
elsewhere; the result is the same because a block's output depends on nothing
but the block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from geoseg.bundle import ModelBundle
from geoseg.chips import Block
from geoseg.engine.task import BlockResult, PredictJob, run_block
from geoseg.errors import MissingDependencyError


def require_distributed() -> Any:
    """The ``distributed`` module, or a clear error saying how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise MissingDependencyError(
            "running on Dask needs dask.distributed: pip install 'geoseg[dask]'"
        ) from err
    return distributed


def run_block_on_worker(
    job: PredictJob, block: Block, bundle: ModelBundle, device: str
) -> BlockResult:
    """The Dask task: one torch thread per worker thread, the cached model, the block."""
    from geoseg.predictor import get_predictor
    from geoseg.scene import gdal_env

    if not device.startswith("cuda"):
        import torch

        if torch.get_num_threads() != 1:  # workers run one task per thread
            torch.set_num_threads(1)
    with gdal_env():
        return run_block(job, block, get_predictor(bundle, device))


class DaskEngine:
    """Run block tasks on a ``dask.distributed.Client``'s workers."""

    name = "dask"

    def __init__(self, client: Any, *, in_flight_per_thread: int = 2) -> None:
        require_distributed()
        self.client = client
        self.in_flight_per_thread = in_flight_per_thread
        self._bundle: Any = None
        self._device = "cpu"

    @property
    def parallelism(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        return max(1, int(sum(self.client.nthreads().values())))

    def prepare(self, bundle: ModelBundle, device: str) -> None:
        """Send the bundle to every worker once."""
        self._bundle = self.client.scatter(bundle, broadcast=True, hash=False)
        self._device = device

    def run(
        self,
        job: PredictJob,
        blocks: Iterable[Block],
        on_result: Callable[[BlockResult], None],
    ) -> None:
        """Run every block on the cluster; call ``on_result`` here as each finishes."""
        distributed = require_distributed()
        if self._bundle is None:
            raise RuntimeError("DaskEngine.run before prepare()")
        job_f = self.client.scatter(job, broadcast=True, hash=False)
        limit = self.in_flight_per_thread * self.parallelism
        todo = iter(blocks)
        queue = distributed.as_completed()
        submitted = 0

        def submit_next() -> bool:
            nonlocal submitted
            block = next(todo, None)
            if block is None:
                return False
            queue.add(
                self.client.submit(
                    run_block_on_worker,
                    job_f,
                    block,
                    self._bundle,
                    self._device,
                    key=f"geoseg-block-{job_f.key}-{block.index[0]}-{block.index[1]}",
                    retries=2,
                )
            )
            submitted += 1
            return True

        while submitted < limit and submit_next():
            pass
        try:
            for fut in queue:
                result = fut.result()
                fut.release()
                on_result(result)
                submit_next()
        except BaseException:
            for fut in list(queue.futures):
                fut.cancel()
            raise
