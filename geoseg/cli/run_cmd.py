"""``geoseg run``: run a declarative workflow file."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import click


@contextlib.contextmanager
def _step_bars() -> Iterator[Callable[[str, int, int], None]]:
    """``progress(step, done, total)``: a bar per step on a TTY, else progress lines.

    Off a terminal the lines name the step (:class:`~geoseg.cli.options.ProgressLines`).

    A step's bar is closed when the next step starts, so bars never stack.
    """
    import sys

    from geoseg.cli.options import progress_bar

    tty = sys.stderr.isatty()
    state: dict[str, Any] = {"step": None, "stack": None, "bar": None}

    def update(step: str, done: int, total: int) -> None:
        if step != state["step"]:
            if state["stack"] is not None:
                state["stack"].close()
            if tty:
                click.echo(step, err=True)
            stack = contextlib.ExitStack()
            unit = "chips" if step.startswith("predict") else "blocks"
            bar = stack.enter_context(progress_bar(unit, label=None if tty else step))
            state.update(step=step, stack=stack, bar=bar)
        state["bar"](done, total)

    try:
        yield update
    finally:
        if state["stack"] is not None:
            state["stack"].close()


@click.command("run")
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "-o",
    default=None,
    type=click.Path(file_okay=False),
    help="Output folder [the file's 'out'].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace outputs of an earlier run (a batch resumes without it).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Start a local Dask cluster of N workers (replaces the file's engine).",
)
@click.option(
    "--scheduler",
    default=None,
    help="Run on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (replaces the file's).",
)
@click.option("--check", is_flag=True, help="Only validate the file; run nothing.")
def run(
    workflow: str,
    out: str | None,
    overwrite: bool,
    workers: int | None,
    scheduler: str | None,
    check: bool,
) -> None:
    """Run a workflow file: landcover, flood, deforestation or batch.

    The file names its inputs, model, predict options, engine, post-processing
    and output folder (see workflows/README.md); it is validated first, and
    any mistake is reported with its line. Outputs include report.html (opens
    offline) and workflow_run.json (inputs with hashes, spec, steps).

    \b
    Examples:
      geoseg run workflows/flood.yaml
      geoseg run workflows/landcover.yaml --out results/zion --overwrite
      geoseg run workflows/batch-archive.yaml --workers 4
      geoseg run workflows/deforestation.yaml --check
    """
    from geoseg.errors import InputError
    from geoseg.workflows import EngineSpec, load_workflow, run_workflow

    if workers is not None and scheduler is not None:
        raise InputError("pass --workers or --scheduler, not both")
    wf = load_workflow(workflow, out=out)
    if check:
        click.echo(f"{workflow}: a valid {wf.kind} workflow; outputs would go to {wf.out}")
        return
    engine = None
    if workers is not None or scheduler is not None:
        try:
            engine = EngineSpec(workers=workers, scheduler=scheduler)
        except InputError as err:
            raise InputError(f"--workers/--scheduler: {err}") from err
    with _step_bars() as progress:
        res = run_workflow(wf, out=out, overwrite=overwrite, engine=engine, progress=progress)
    click.echo(f"{wf.kind} workflow done in {res.out}")
    for line in res.summary:
        click.echo(f"  {line}")
    width = max((len(k) for k in res.outputs), default=0)
    for key, path in sorted(res.outputs.items()):
        click.echo(f"  {key:<{width}}  {path}")
    if res.report is not None:
        click.echo(f"report: {res.report}")
    click.echo(f"record: {res.record_path}")
