"""Pieces shared by the CLI commands."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def progress_bar(unit: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a tqdm bar on a TTY, silent otherwise.

    The bar restarts when ``total`` changes (a new scene).
    """
    from tqdm import tqdm

    state: dict[str, tqdm | None] = {"bar": None}
    tty = sys.stderr.isatty()

    def update(done: int, total: int) -> None:
        if not tty:
            return
        bar = state["bar"]
        if bar is None or bar.total != total or done < bar.n:
            if bar is not None:
                bar.close()
            # a terminal that reports 0 columns (some ptys, CI consoles) would get an
            # empty bar from dynamic_ncols; use the queried width with a fallback
            width = shutil.get_terminal_size(fallback=(100, 24)).columns or 100
            bar = state["bar"] = tqdm(total=total, unit=unit, ncols=width, leave=True)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].close()


def parse_gpus(value: str | None, opts: dict[str, Any]) -> list[int] | None:
    """``--gpus 0,1`` as a list of indexes (``None`` when not given).

    With GPUs and ``--device auto``, ``opts["device"]`` becomes ``cuda``: each
    GPU worker sees its own GPU as ``cuda``.
    """
    from geoseg.errors import InputError

    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or not all(v.isdigit() for v in items):
        raise InputError(f"--gpus takes GPU indexes such as 0,1; got '{value}'")
    if opts.get("device") == "auto":
        opts["device"] = "cuda"
    return [int(v) for v in items]


@contextlib.contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, gpus: list[int] | None = None
) -> Iterator[Any]:
    """A Dask client for ``--scheduler``/``--workers``/``--gpus``, or ``None`` (local engine)."""
    from geoseg.errors import InputError

    if sum(bool(x) for x in (scheduler, workers, gpus)) > 1:
        raise InputError(
            "pass one of --scheduler (an existing cluster), --workers (a new CPU cluster) "
            "or --gpus (a new cluster, one worker per GPU)"
        )
    if workers is not None and workers < 1:
        raise InputError(
            f"--workers must be at least 1, got {workers}; omit --workers to run in this process"
        )
    if not scheduler and not workers and not gpus:
        yield None
        return
    if gpus:
        from geoseg.engine.dask import gpu_cluster, require_distributed

        distributed = require_distributed()
        # results come straight from the workers, as with --workers (see local_cluster)
        with (
            gpu_cluster(gpus) as cluster,
            distributed.Client(cluster, direct_to_workers=True) as client,
        ):
            yield client
        return
    from geoseg.engine.dask import require_distributed

    distributed = require_distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except OSError as err:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({err}); is it running?"
            ) from err
        with client:
            yield client
        return
    from geoseg.engine.dask import local_cluster

    with local_cluster(workers) as client:
        yield client


def out_folder(help: str = "Output folder (created if missing).") -> Callable[[F], F]:
    """The ``--out/-o`` option of commands that write a folder of outputs (required)."""
    import click

    return click.option(
        "--out", "-o", "out", required=True, type=click.Path(file_okay=False), help=help
    )


def precision_option() -> Callable[[F], F]:
    """The ``--precision`` option of commands that run a model."""
    import click

    return click.option(
        "--precision",
        type=click.Choice(["fp32", "bf16", "fp16"]),
        default="fp32",
        show_default=True,
        help="Forward passes in float32 or mixed precision (bf16: CPU or GPU; fp16: GPU only).",
    )
