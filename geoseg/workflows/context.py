"""What a workflow kind's steps share: the run's context and each step's record.

:class:`RunContext` is what :mod:`~geoseg.workflows.runner` hands to the runner
of a kind (:mod:`~geoseg.workflows.landcover`, :mod:`~geoseg.workflows.flood`,
:mod:`~geoseg.workflows.deforestation`, :mod:`~geoseg.workflows.batch`); the
kinds and :mod:`~geoseg.workflows.steps` import it from here, and the runner
imports the kinds, so the imports run one way.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoseg.workflows.spec import Workflow

# the runner's logger, as before RunContext moved here
log = logging.getLogger("geoseg.workflows.runner")

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called as a long step advances."""


@dataclass
class StepRecord:
    """One step of a run: its name, timing, outputs and what it found."""

    name: str
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "outputs": self.outputs,
            "details": self.details,
        }


class RunContext:
    """What a kind's runner gets: the workflow, the output folder, steps and engine."""

    def __init__(
        self,
        workflow: Workflow,
        out: Path,
        *,
        overwrite: bool,
        progress: Progress | None,
        client: Any,
    ) -> None:
        self.workflow = workflow
        self.spec: Any = workflow.spec
        self.out = out
        self.overwrite = overwrite
        self.progress = progress
        self.client = client
        self.steps: list[StepRecord] = []
        self.outputs: dict[str, str] = {}
        self.inputs: list[dict[str, Any]] = []
        self.summary: list[str] = []
        self.report: Any = None
        """A :class:`geoseg.report.Report` the kind's runner filled; written at the end."""
        self._bundle: Any = None

    @property
    def bundle(self) -> Any:
        """The workflow's model bundle (loaded once)."""
        if self._bundle is None:
            from geoseg.models.bundle import load_bundle

            self._bundle = load_bundle(self.workflow.model)
        return self._bundle

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        """Time a step and keep its record; its outputs are added to the run's."""
        rec = StepRecord(name)
        log.info("workflow step %s", name)
        start = time.perf_counter()
        yield rec
        rec.seconds = time.perf_counter() - start
        self.steps.append(rec)
        self.outputs.update(rec.outputs)

    def progress_for(self, step: str) -> Callable[[int, int], None] | None:
        """A ``progress(done, total)`` callback for one step, or ``None``."""
        report = self.progress
        if report is None:
            return None

        def update(done: int, total: int) -> None:
            report(step, done, total)

        return update

    def add_input(self, role: str, path: str) -> None:
        """Record an input with its hash (size and mtime reuse an earlier hash)."""
        from geoseg.pipeline.batch import file_fingerprint

        self.inputs.append({"role": role, "path": path, **file_fingerprint(path)})

    def predict_options(self, **extra: Any) -> dict[str, Any]:
        """The spec's predict options as keyword arguments of :func:`geoseg.predict`."""
        import dataclasses

        opts = dataclasses.asdict(self.spec.predict)
        opts.update(vector=False, overwrite=self.overwrite, **extra)
        return opts
