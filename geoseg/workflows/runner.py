"""Run a validated workflow: its steps in order, a run record, a report.

:func:`run_workflow` loads (or takes) a :class:`~geoseg.workflows.spec.Workflow`,
opens the engine it names (a Dask client for ``workers``/``scheduler``), and
hands it to the runner of its kind (:mod:`~geoseg.workflows.landcover`,
:mod:`~geoseg.workflows.flood`, :mod:`~geoseg.workflows.deforestation`,
:mod:`~geoseg.workflows.batch`). Every step's timing and outputs go into
``<out>/workflow_run.json`` with the inputs (SHA-256), the spec and the
versions; it is written last, after ``report.html``, so a record always
vouches for the files beside it. An old record is removed before anything
runs.

Re-running into a folder that holds outputs needs ``overwrite=True``, except
for ``batch`` workflows, which resume: scenes whose inputs, model and options
are unchanged are skipped (see :mod:`geoseg.pipeline.batch`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from geoseg.errors import OutputError
from geoseg.records import write_record
from geoseg.versions import WORKFLOW, versions
from geoseg.workflows.spec import EngineSpec, Workflow, load_workflow

log = logging.getLogger(__name__)

RECORD = "workflow_run.json"
REPORT = "report.html"

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


@dataclass
class WorkflowResult:
    """What a workflow run wrote: every output by name, the steps, the record and report."""

    kind: str
    out: Path
    outputs: dict[str, str]
    steps: list[StepRecord]
    record_path: Path
    report: Path | None
    summary: list[str] = field(default_factory=list)
    """A few lines for people: areas found, scenes done, …"""

    @property
    def record(self) -> dict[str, Any]:
        """The run record (``workflow_run.json``)."""
        loaded: dict[str, Any] = json.loads(self.record_path.read_text(encoding="utf-8"))
        return loaded


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


def run_workflow(
    workflow: Workflow | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    engine: EngineSpec | None = None,
    progress: Progress | None = None,
) -> WorkflowResult:
    """Run a workflow file (or a loaded :class:`Workflow`) and write its outputs and report.

    Parameters
    ----------
    workflow
        Path of a workflow YAML file, or a workflow from
        :func:`~geoseg.workflows.spec.load_workflow`.
    out
        Output folder, replacing the file's ``out``.
    overwrite
        Replace the outputs of an earlier run in ``out``. A batch resumes
        without it; with it, it still skips scenes whose key (input hash,
        model, options) is unchanged, but replaces outputs made otherwise and
        remakes every scene's polygons.
    engine
        Replaces the file's ``engine`` (the CLI's ``--workers``/``--scheduler``).
    progress
        ``progress(step, done, total)`` for long steps (predict, vectorize).

    Returns
    -------
    WorkflowResult
        Outputs by name, the steps, the record and the report.

    Raises
    ------
    GeosegError
        A bad spec (with its line), unreadable inputs, outputs in the way.

    Notes
    -----
    ``tests/test_workflows.py`` runs every shipped workflow this way, e.g.
    ``run_workflow("workflows/flood.yaml", out="results/flood")``.
    """
    wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
    if out is not None:
        wf = replace(wf, out=Path(out))
    if engine is not None:
        wf = replace(wf, spec=replace(wf.spec, engine=engine))
    folder = _prepare_out(wf, overwrite)
    from geoseg.cli.options import dask_client

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    start = time.perf_counter()
    eng = wf.spec.engine
    with dask_client(eng.scheduler, eng.workers) as client:
        ctx = RunContext(wf, folder, overwrite=overwrite, progress=progress, client=client)
        error = _run_kind(ctx)
    if wf.spec.report and ctx.report is not None:
        with ctx.step("report") as rec:
            ctx.report.add_record(
                "Workflow run record", _record(ctx, started, time.perf_counter() - start, error)
            )
            rec.outputs["report"] = str(ctx.report.write(folder / REPORT))
    record = _record(ctx, started, time.perf_counter() - start, error)
    record_path = folder / RECORD
    write_record(record_path, record)
    if error is not None:
        raise error
    report = folder / REPORT if (folder / REPORT).exists() and wf.spec.report else None
    return WorkflowResult(
        wf.kind, folder, dict(ctx.outputs), ctx.steps, record_path, report, ctx.summary
    )


def _run_kind(ctx: RunContext) -> Exception | None:
    """Run the kind's steps; a batch's failed scenes come back as the error to raise last."""
    from geoseg.workflows.batch import run as run_batch
    from geoseg.workflows.deforestation import run as run_deforestation
    from geoseg.workflows.flood import run as run_flood
    from geoseg.workflows.landcover import run as run_landcover

    runners: dict[str, Callable[[RunContext], Exception | None]] = {
        "landcover": run_landcover,
        "flood": run_flood,
        "deforestation": run_deforestation,
        "batch": run_batch,
    }
    return runners[ctx.workflow.kind](ctx)


def _prepare_out(wf: Workflow, overwrite: bool) -> Path:
    folder = wf.out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create output folder {folder} ({err.strerror or err}); choose another out"
        ) from err
    record = folder / RECORD
    busy = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if busy and not overwrite and wf.kind != "batch":
        raise OutputError(
            f"{folder} already holds outputs ({busy[0].name}); pass --overwrite "
            "(overwrite=True) to replace them, or choose another out"
        )
    with contextlib.suppress(FileNotFoundError):
        record.unlink()  # a record must never vouch for files of an unfinished run
    return folder


def _record(
    ctx: RunContext, started: str, seconds: float, error: Exception | None
) -> dict[str, Any]:
    wf = ctx.workflow
    bundle = ctx.bundle
    return {
        "geoseg_workflow_run": 1,
        "workflow": wf.source.name,
        "kind": wf.kind,
        "title": wf.spec.title,
        "started": started,
        "seconds": round(seconds, 3),
        "state": "failed" if error is not None else "done",
        "error": str(error) if error is not None else None,
        "engine": wf.spec.engine.describe(),
        "model": {"name": bundle.name, "path": wf.model, "sha256": bundle.sha256},
        "inputs": ctx.inputs,
        "spec": wf.spec.to_dict(),
        "steps": [s.to_dict() for s in ctx.steps],
        "outputs": ctx.outputs,
        "summary": ctx.summary,
        "versions": versions(WORKFLOW),
    }
