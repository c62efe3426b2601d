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

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from geoseg.engine.backend import BackendChoice, check_backend, choose_backend
from geoseg.engine.local import _malloc_trim, map_large_buffers, tune_malloc
from geoseg.engine.task import BlockResult, PredictJob, run_block
from geoseg.errors import GeosegError, InputError, MissingDependencyError, WorkerLostError
from geoseg.grid.chips import Block
from geoseg.models.bundle import ModelBundle


def require_distributed() -> Any:
    """The ``distributed`` module, or a clear error saying how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise MissingDependencyError(
            "running on Dask needs dask.distributed: pip install 'geoseg[dask]'"
        ) from err
    return distributed


_worker_trim: Callable[[], None] | None = None
_chips_run = 0


def chips_run_here() -> int:
    """Chips this worker process has inferred so far (run on workers with ``client.run``).

    Counted where the model runs, so a chip inferred twice anywhere (a task run
    twice) would show in the sum over workers, not only in the client's tally.
    """
    return _chips_run


def _worker_setup() -> Callable[[], None]:
    """Once per worker process: allocator settings, and the periodic trim that goes with them."""
    global _worker_trim
    if _worker_trim is None:
        tune_malloc()
        _worker_trim = _malloc_trim()
    return _worker_trim


def run_block_on_worker(
    job: PredictJob, block: Block, bundle: ModelBundle, device: str, precision: str = "fp32"
) -> BlockResult:
    """The Dask task: one torch thread per worker thread, the cached model, the block."""
    from geoseg.engine.backend import get_backend_predictor
    from geoseg.io.scene import gdal_env

    trim = _worker_setup()
    if not device.startswith("cuda"):
        import torch

        if torch.get_num_threads() != 1:  # workers run one task per thread
            torch.set_num_threads(1)
    global _chips_run
    failure = None
    try:
        with gdal_env():
            # the backend travels in the job (chosen once, on the client)
            predictor = get_backend_predictor(
                bundle, device, precision, backend=job.backend, threads=1
            )
            result = run_block(job, block, predictor)
    except GeosegError as err:
        failure = portable_error(err)
    finally:
        trim()
    if failure is not None:
        raise failure  # raised here, outside the except, so it carries no __context__ either
    _chips_run += result.chips_inferred
    result.worker = _worker_name()
    return result


def portable_error(err: GeosegError) -> GeosegError:
    """The same error without its cause chain, so that it survives the trip to the client.

    A read error's cause is rasterio's ``CPLE_*`` exception, which pickles but does
    not unpickle; Dask would then hand the client a bare ``Exception`` with the
    repr, and a batch could no longer tell a corrupt scene from a bug. The
    message already says what went wrong and what to do.
    """
    try:
        return type(err)(*err.args)
    except TypeError:  # a subclass with its own constructor
        return GeosegError(str(err))


def _worker_name() -> str | None:
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # called outside a worker (tests call the task directly)
        return None
    return str(worker.name if worker.name is not None else worker.address)


def cuda_devices() -> int:
    """GPUs this process sees (0 without CUDA); run on workers with ``client.run``."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


QUIET_CLUSTER = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.scheduler.work-stealing": False,
    "distributed.worker.profile.enabled": False,
}
"""Dask settings for the clusters geoseg starts itself (``--workers``): housekeeping off.

Idle, a default 2-worker LocalCluster used 4.0 s of CPU per 20 s across its
client and worker processes (event-loop ticks every 20 ms, a system monitor
every 0.5 s, work stealing every 0.1 s, a statistical profiler sampling every
10 ms), 10 % of a 2-core machine; with these, 1.0 s. Blocks are equal and
handed out two per thread as results return, so stealing has nothing to even
out; the profiler only feeds the dashboard, which geoseg does not start.
The same goes for ``--gpus`` clusters (:func:`gpu_cluster`). Clusters you
bring (``--scheduler``, ``client=``) keep their own settings.
"""


@contextlib.contextmanager
def local_cluster(workers: int | None) -> Iterator[Any]:
    """A client on a new LocalCluster of single-threaded worker processes (``--workers N``).

    The client fetches block results from the workers directly. Dask's default
    for a client outside the cluster is to have the scheduler relay them, which
    for a LocalCluster (scheduler in this process) means every result arrives
    twice in this process: on a 16384-px scene that took the client's peak from
    187 to 198 MB and the run from 21 to 25 s. Every process of a local cluster
    can reach every other, so direct is safe here; clusters you bring keep their
    own ``direct_to_workers`` setting.
    """
    import dask

    distributed = require_distributed()
    with (
        dask.config.set(QUIET_CLUSTER),
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, direct_to_workers=True) as client,
    ):
        yield client


def gpu_cluster(gpus: Sequence[int], *, threads_per_gpu: int = 2, check: bool = True) -> Any:
    """A local cluster with one worker process per GPU, each seeing only its own.

    With ``dask-cuda`` installed this is its ``LocalCUDACluster`` (which also
    pins each worker to the GPU's CPU cores); without it, a ``SpecCluster`` of
    nannies whose worker processes get ``CUDA_VISIBLE_DEVICES=<gpu>``. Either
    way each worker runs the model on its ``cuda`` device, and
    ``threads_per_gpu`` block tasks at once (one reads and normalizes while the
    other's forward pass runs).

    Parameters
    ----------
    gpus
        GPU indexes as this machine numbers them (``--gpus 0,1``).
    threads_per_gpu
        Worker threads per GPU.
    check
        Check that this machine has those GPUs first (tests of the cluster
        layout turn it off).

    Raises
    ------
    InputError
        No CUDA, an index this machine does not have, or a repeated index.
    """
    distributed = require_distributed()
    ids = [int(g) for g in gpus]
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise InputError(f"--gpus needs distinct GPU indexes such as 0,1; got {gpus!r}")
    if check:
        have = cuda_devices()
        if have == 0:
            raise InputError(
                "--gpus asked for, but this machine has no CUDA GPU that torch can use "
                "(torch.cuda.is_available() is False); use --workers N for CPU workers"
            )
        if max(ids) >= have:
            raise InputError(f"--gpus {gpus!r}: this machine has {have} GPU(s), numbered from 0")
    import dask

    # the scheduler and the nannies read their settings as they start: quiet, as --workers
    with dask.config.set(QUIET_CLUSTER):
        return _start_gpu_cluster(distributed, ids, threads_per_gpu)


def _start_gpu_cluster(distributed: Any, ids: list[int], threads_per_gpu: int) -> Any:
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        pass
    else:
        return LocalCUDACluster(
            CUDA_VISIBLE_DEVICES=",".join(map(str, ids)),
            threads_per_worker=threads_per_gpu,
            dashboard_address=None,
        )
    workers = {
        f"gpu-{g}": {
            "cls": distributed.Nanny,
            "options": {
                "nthreads": threads_per_gpu,
                "env": {"CUDA_VISIBLE_DEVICES": str(g)},
                "name": f"gpu-{g}",
            },
        }
        for g in ids
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": None}}
    return distributed.SpecCluster(workers=workers, scheduler=scheduler, name="geoseg-gpus")


class DaskEngine:
    """Run block tasks on a ``dask.distributed.Client``'s workers.

    An :class:`~geoseg.engine.base.Engine`; the device is decided by asking the
    workers (:meth:`resolve_device`), not this process.
    """

    name = "dask"
    reads_chips = False
    """Workers read the chips; this process only merges and writes."""
    task = staticmethod(run_block_on_worker)
    """The function each block runs as on a worker."""

    def __init__(
        self, client: Any, *, in_flight_per_thread: int = 2, backend: str = "auto"
    ) -> None:
        require_distributed()
        self.client = client
        self.backend = check_backend(backend)
        self.choice: BackendChoice | None = None
        self.in_flight_per_thread = in_flight_per_thread
        self._bundle: Any = None
        self._device = "cpu"
        self._precision = "fp32"

    def resolve_device(self, device: str) -> str:
        """``auto``/``cpu``/``cuda[:i]`` decided by what the workers have, not this process.

        Raises
        ------
        InputError
            CUDA asked for but a worker has no such GPU, or an unknown name.
        """
        device = device.strip().lower()
        if device == "cpu":
            return device
        if device != "auto" and not device.startswith("cuda"):
            raise InputError(f"unknown --device '{device}'; use auto, cpu, cuda or cuda:N")
        counts = self.client.run(cuda_devices)
        if device == "auto":
            return "cuda" if counts and min(counts.values()) > 0 else "cpu"
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        short = sorted(w for w, n in counts.items() if n <= index)
        if short:
            raise InputError(
                f"--device {device}: worker(s) {', '.join(short)} have no such CUDA GPU; "
                "use --device cpu, or start the workers where the GPUs are"
            )
        return device

    @property
    def parallelism(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        return max(1, int(sum(self.client.nthreads().values())))

    def memory_budget(self, device: str) -> tuple[int | None, int, str]:
        """The smallest worker memory limit, that worker's threads, and where (no limit: None)."""
        del device  # each worker thread runs one block task, CPU or GPU
        workers = self.client.scheduler_info().get("workers", {}).values()
        limited = [(int(w.get("memory_limit") or 0), int(w.get("nthreads") or 1)) for w in workers]
        limited = [(m, n) for m, n in limited if m > 0]
        if not limited:
            return None, 1, "a Dask worker"
        memory, threads = min(limited)
        return memory, max(1, threads), "a Dask worker"

    def prepare(self, bundle: ModelBundle, device: str, precision: str = "fp32") -> None:
        """Send the bundle to every worker once."""
        self._bundle = self.client.scatter(bundle, broadcast=True, hash=False)
        self._device = device
        self._precision = precision
        self.choice = choose_backend(self.backend, bundle, device, precision)

    def describe(self, device: str) -> dict[str, Any]:
        """What the workers run with (for ``--explain`` and the run record)."""
        return {
            "engine": self.name,
            "backend": self.choice.name if self.choice else self.backend,
            "backend_reason": self.choice.reason if self.choice else "not prepared yet",
            "parallel_blocks": self.parallelism,
            "threads_per_block": 1,
            "layout_reason": "one block task per Dask worker thread, one intra-op thread each",
        }

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
        if self.choice is not None:
            job = dataclasses.replace(job, backend=self.choice.name)
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
                    self.task,
                    job_f,
                    block,
                    self._bundle,
                    self._device,
                    self._precision,
                    key=f"geoseg-block-{job_f.key}-{block.index[0]}-{block.index[1]}",
                    retries=2,
                )
            )
            submitted += 1
            return True

        while submitted < limit and submit_next():
            pass
        # results arrive on the comm thread's heap: large buffers get their own
        # mappings, and freed memory goes back now and then, as in the local engine;
        # otherwise the client's resident size creeps up with the number of results
        map_large_buffers()
        trim = _malloc_trim()
        try:
            for fut in queue:
                try:
                    result = fut.result()
                except distributed.KilledWorker as err:
                    raise WorkerLostError(
                        f"a block of {job.scene.path if job.scene else 'this scene'} took down "
                        "every Dask worker that ran it (out of memory, or a crash in native "
                        "code); give the workers more memory or pass a smaller --block"
                    ) from err
                fut.release()
                on_result(result)
                del result
                trim()
                submit_next()
        except BaseException:
            for fut in list(queue.futures):
                fut.cancel()
            raise
