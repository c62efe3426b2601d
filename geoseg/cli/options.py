"""Pieces shared by the CLI commands.

Cluster start-up (:func:`~geoseg.engine.cluster.dask_client`) moved to
:mod:`geoseg.engine.cluster` in 0.2, so that workflows need not import the CLI;
it is re-exported here for one release.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from geoseg.engine.cluster import dask_client as dask_client

F = TypeVar("F", bound=Callable[..., Any])


def scheme_option(default: str = "the raster's own tags") -> Callable[[F], F]:
    """``--scheme NAME|PATH``: the class scheme naming a class raster's ids (one wording)."""
    import click

    return click.option(
        "--scheme",
        default=None,
        metavar="NAME|PATH",
        help="Class scheme naming the raster's ids: catalog name (nlcd8, esa-worldcover …) "
        f"or YAML file [{default}].",
    )


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
