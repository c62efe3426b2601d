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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from geoseg.engine.cluster import dask_client
from geoseg.errors import OutputError
from geoseg.records import write_record
from geoseg.versions import WORKFLOW, versions
from geoseg.workflows import batch, deforestation, flood, landcover
from geoseg.workflows.context import Progress as Progress
from geoseg.workflows.context import RunContext as RunContext
from geoseg.workflows.context import StepRecord as StepRecord
from geoseg.workflows.sections import EngineSpec
from geoseg.workflows.spec import Workflow, load_workflow

RECORD = "workflow_run.json"
REPORT = "report.html"

KindRunner = Callable[[RunContext], Exception | None]
"""Runs a kind's steps; returns a batch's failed scenes as the error to raise last."""

#: the runner of each workflow kind (:data:`~geoseg.workflows.spec.KINDS`)
RUNNERS: dict[str, KindRunner] = {
    "landcover": landcover.run,
    "flood": flood.run,
    "deforestation": deforestation.run,
    "batch": batch.run,
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
    ``tests/workflows/test_workflows.py`` runs every shipped workflow this way, e.g.
    ``run_workflow("workflows/flood.yaml", out="results/flood")``.
    """
    wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
    if out is not None:
        wf = replace(wf, out=Path(out))
    if engine is not None:
        wf = replace(wf, spec=replace(wf.spec, engine=engine))
    folder = _prepare_out(wf, overwrite)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    start = time.perf_counter()
    eng = wf.spec.engine
    with dask_client(eng.scheduler, eng.workers) as client:
        ctx = RunContext(wf, folder, overwrite=overwrite, progress=progress, client=client)
        error = RUNNERS[wf.kind](ctx)
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
