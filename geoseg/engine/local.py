"""The embedded default engine: block tasks on a pool of threads in this process.

On CPU, two single-threaded model instances beat one two-threaded instance by
about 30% (see ``benchmarks/``), so the engine runs ``threads`` block tasks at
once with torch limited to ``cpu_count // threads`` intra-op threads each; the
model is shared (inference does not mutate it) and GDAL, numpy and torch release
the GIL. Blocks are submitted in row-major order with a bounded number in
flight, which is the backpressure that keeps memory flat: finished cells are
written as soon as they are complete.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from geoseg.engine.backend import (
    BackendChoice,
    check_backend,
    choose_backend,
    get_backend_predictor,
)
from geoseg.engine.task import BlockResult, PredictJob, run_block
from geoseg.grid.chips import Block
from geoseg.models.bundle import ModelBundle
from geoseg.models.device import Predictor, resolve_device

TRIM_EVERY = 4
"""Blocks between two returns of freed memory to the OS (each costs page faults later)."""


def default_threads(device: str) -> int:
    """Block tasks run at once: one per core on CPU (at most 4), two on a GPU."""
    if device.startswith("cuda"):
        return 2
    return max(1, min(os.cpu_count() or 1, 4))


MMAP_THRESHOLD = 32 * 2**20
"""glibc's ceiling for its own dynamic mmap threshold (``DEFAULT_MMAP_THRESHOLD_MAX``)."""

TRIM_THRESHOLD = 64 * 2**20
"""Free memory glibc may keep at the top of a heap between our own ``malloc_trim`` calls."""


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""``mallopt`` parameters (``<malloc.h>``)."""


def _glibc(name: str) -> Any:
    """The C library function ``name`` (glibc), or None where there is no glibc."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def tune_malloc() -> bool:
    """Let glibc keep chip-sized buffers in its heaps; True if the settings took.

    Setting ``MALLOC_TRIM_THRESHOLD_`` in the environment (Dask's nanny sets
    65536 for its workers) also freezes glibc's mmap threshold at 128 KiB, so
    every activation tensor of a forward pass is a fresh ``mmap`` whose pages
    fault in again: on the benchmark U-Net that is 3.4x the page faults and a
    forward pass 1.45x as slow. This puts both thresholds where glibc's own
    dynamic rule would have them; the engines' periodic ``malloc_trim`` keeps
    resident memory flat. A no-op without glibc.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


CLIENT_MMAP_THRESHOLD = 2**20
"""Allocations at least this big get their own mapping in a process that only merges."""


def map_large_buffers(threshold: int = CLIENT_MMAP_THRESHOLD) -> bool:
    """Give every buffer of ``threshold`` bytes or more its own ``mmap``; True if it took.

    For a process that receives block results and merges them (a Dask client)
    rather than running the model. glibc's dynamic rule lifts the mmap threshold
    to the size of the first large buffer freed, after which each multi-MB
    result frame is carved from a heap and the heaps fragment: the client's
    resident size then grows with the number of results (16384² vs 4096²: 1.40×
    its peak, benchmarks/README.md). Mapped buffers go back to the OS when
    freed; the page faults cost little beside the transfer that filled them.
    """
    mallopt = _glibc("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, threshold))


def _malloc_trim(every: int = TRIM_EVERY) -> Callable[[], None]:
    """Every ``every``-th call, glibc's ``malloc_trim(0)``; a no-op without glibc."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return lambda: None
    calls = itertools.count(1)

    def maybe_trim() -> None:
        if next(calls) % every == 0:
            trim(0)

    return maybe_trim


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Limit torch's intra-op threads to ``n`` for the duration."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threads_per_block(device: str, parallel_blocks: int) -> int:
    """Intra-op threads of each block task: the cores shared out between the tasks (1 on a GPU)."""
    if device.startswith("cuda"):
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, parallel_blocks))


class LocalEngine:
    """Run block tasks on threads of this process (an :class:`~geoseg.engine.base.Engine`).

    ``backend`` says what runs a torch bundle's forward passes (``auto``,
    ``torch``, ``onnxruntime``; see :func:`geoseg.engine.backend.choose_backend`);
    an ONNX Runtime session gets the intra-op threads of one block task.
    """

    name = "local"
    reads_chips = True

    def __init__(self, threads: int | None = None, *, backend: str = "auto") -> None:
        self.threads = threads
        self.backend = check_backend(backend)
        self._predictor: Predictor | None = None
        self.choice: BackendChoice | None = None

    def layout(self, device: str) -> tuple[int, int]:
        """Block tasks run at once on ``device``, and intra-op threads of each."""
        n = self.threads or default_threads(device)
        return n, threads_per_block(device, n)

    def prepare(self, bundle: ModelBundle, device: str, precision: str = "fp32") -> None:
        """Build (or reuse) the model for ``bundle`` on ``device`` in this process."""
        per_task = self.layout(device)[1]
        self.choice = choose_backend(self.backend, bundle, device, precision)
        self._predictor = get_backend_predictor(
            bundle, device, precision, backend=self.choice.name, threads=per_task
        )

    def describe(self, device: str) -> dict[str, Any]:
        """What this engine runs with on ``device`` (for ``--explain`` and the run record)."""
        n, per_task = self.layout(device)
        return {
            "engine": self.name,
            "backend": self.choice.name if self.choice else self.backend,
            "backend_reason": self.choice.reason if self.choice else "not prepared yet",
            "parallel_blocks": n,
            "threads_per_block": per_task,
            "layout_reason": (
                f"--threads {self.threads}"
                if self.threads
                else (
                    "2 block tasks per GPU"
                    if device.startswith("cuda")
                    else f"one block task per core ({os.cpu_count()} cores, at most 4)"
                )
            )
            + (
                ""
                if device.startswith("cuda")
                else f", {per_task} intra-op thread(s) each: {os.cpu_count()} // {n}"
            ),
        }

    def resolve_device(self, device: str) -> str:
        """``auto``/``cpu``/``cuda[:i]`` as this process sees it.

        See :func:`geoseg.models.predictor.resolve_device` (this process runs the model).
        """
        return resolve_device(device)

    @property
    def parallelism(self) -> int:
        """Block tasks that run at once on CPU."""
        return self.threads or default_threads("cpu")

    def memory_budget(self, device: str) -> tuple[int | None, int, str]:
        """Memory available here, block tasks that run at once on ``device``, and where."""
        from geoseg.engine.resources import available_memory

        return available_memory(), self.threads or default_threads(device), "this machine"

    def run(
        self,
        job: PredictJob,
        blocks: Iterable[Block],
        on_result: Callable[[BlockResult], None],
    ) -> None:
        """Run every block; call ``on_result`` on this thread as each finishes."""
        predictor = self._predictor
        if predictor is None:
            raise RuntimeError("LocalEngine.run before prepare()")
        n, per_task = self.layout(predictor.device)
        in_flight = n + 1
        # Freed chip-sized buffers stay in glibc's per-thread heaps and resident memory
        # creeps up over a long run; giving them back after each block keeps it flat.
        trim = _malloc_trim()
        pending: set[Future[BlockResult]] = set()
        with torch_threads(per_task), ThreadPoolExecutor(n, thread_name_prefix="geoseg") as pool:
            try:
                for block in blocks:
                    if len(pending) >= in_flight:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            on_result(fut.result())
                        trim()
                    pending.add(pool.submit(run_block, job, block, predictor))
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        on_result(fut.result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
