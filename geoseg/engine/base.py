"""What the pipeline asks of an engine: :class:`Engine`, a structural protocol.

An engine runs :func:`geoseg.engine.task.run_block` for every block of a scene
and hands each :class:`~geoseg.engine.task.BlockResult` back on the calling
thread, where the pipeline merges and writes it. Two ship with geoseg:
:class:`~geoseg.engine.local.LocalEngine` (threads of this process) and
:class:`~geoseg.engine.dask.DaskEngine` (the workers of a Dask cluster). Any object
with these members can be passed as ``predict(..., engine=...)``; subclassing is
not needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from geoseg.engine.task import BlockResult, PredictJob
from geoseg.grid.chips import Block
from geoseg.models.bundle import ModelBundle


@runtime_checkable
class Engine(Protocol):
    """Runs block tasks somewhere and returns their results here, in completion order."""

    name: str
    """Recorded in the run record (``parameters.engine``)."""

    reads_chips: bool
    """Whether this process reads the scene's pixels (sizes GDAL's block cache)."""

    @property
    def parallelism(self) -> int:
        """Block tasks that run at once (sizes blocks so the workers stay even)."""
        ...

    def resolve_device(self, device: str) -> str:
        """``auto``/``cpu``/``cuda[:i]`` as a concrete device, decided where the model runs."""
        ...

    def memory_budget(self, device: str) -> tuple[int | None, int, str]:
        """Bytes available (``None``: unknown), block tasks sharing them, and where that is."""
        ...

    def prepare(self, bundle: ModelBundle, device: str, precision: str = "fp32") -> None:
        """Make the model of ``bundle`` ready on ``device`` before :meth:`run`."""
        ...

    def run(
        self,
        job: PredictJob,
        blocks: Iterable[Block],
        on_result: Callable[[BlockResult], None],
    ) -> None:
        """Run every block; call ``on_result`` on the calling thread as each finishes."""
        ...
