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


PROGRESS_SECONDS = "GEOSEG_PROGRESS_SECONDS"
"""Environment variable: seconds between progress lines off a terminal [30]."""


def _duration(seconds: float) -> str:
    """``75.0`` -> ``'1 min 15 s'``.

    >>> _duration(3.2), _duration(75.0), _duration(3725.0)
    ('3 s', '1 min 15 s', '1 h 2 min')
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class ProgressLines:
    """``progress(done, total)`` off a terminal: a line on stderr every ``every`` seconds.

    Logs, notebooks and CI consoles get no bar (it would be a mess of carriage
    returns), so a long run says where it is at most every ``every`` seconds, and,
    when it said anything, that it finished. A run shorter than ``every`` prints
    nothing, so short commands and their one-line errors stay one line.

    >>> clock = iter(range(0, 100, 5)).__next__  # 0, 5, 10 ... seconds
    >>> lines = ProgressLines("chips", every=0.0, label="predict", clock=clock, write=print)
    >>> for done in (0, 1, 2, 4):
    ...     lines(done, 4)
    predict: 1/4 chips (25 %), 5 s elapsed, about 15 s left
    predict: 2/4 chips (50 %), 10 s elapsed, about 10 s left
    predict: 4/4 chips (100 %) in 15 s
    """

    def __init__(
        self,
        unit: str,
        *,
        every: float | None = None,
        label: str | None = None,
        clock: Callable[[], float] | None = None,
        write: Callable[[str], None] | None = None,
    ) -> None:
        import os
        import time

        if every is None:
            try:
                every = float(os.environ.get(PROGRESS_SECONDS, "30"))
            except ValueError:
                every = 30.0
        self.unit, self.every, self.label = unit, max(every, 0.0), label
        self.clock = clock or time.monotonic
        self.write = write or self._say
        self.total: int | None = None
        self.start = self.last = 0.0
        self.said = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if total != self.total or done == 0:  # a new scene (or step) starts its own count
            self.total, self.start, self.last, self.said = total, now, now, False
            if done == 0:
                return
        elapsed = now - self.start
        head = f"{self.label}: " if self.label else ""
        counts = f"{done}/{total} {self.unit} ({100 * done // max(total, 1)} %)"
        if done >= total:
            if self.said:
                self.write(f"{head}{counts} in {_duration(elapsed)}")
            self.total = None
            return
        if now - self.last >= self.every:
            left = elapsed * (total - done) / done if done else 0.0
            self.write(
                f"{head}{counts}, {_duration(elapsed)} elapsed, about {_duration(left)} left"
            )
            self.last, self.said = now, True

    @staticmethod
    def _say(line: str) -> None:
        import click

        click.echo(line, err=True)


@contextlib.contextmanager
def progress_bar(unit: str, label: str | None = None) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback: a tqdm bar on a terminal, else :class:`ProgressLines`.

    The bar restarts when ``total`` changes (a new scene).
    """
    from tqdm import tqdm

    state: dict[str, tqdm | None] = {"bar": None}
    tty = sys.stderr.isatty()
    lines = None if tty else ProgressLines(unit, label=label)

    def update(done: int, total: int) -> None:
        if lines is not None:
            lines(done, total)
            return
        bar = state["bar"]
        if bar is None or bar.total != total or done < bar.n:
            if bar is not None:
                bar.close()
            # a terminal that reports a 0×0 size (a pty nobody sized: `script`, `docker
            # exec -t`, some CI consoles) would get an empty bar (0 columns) or none at
            # all (tqdm hides bars below the last of 0 rows): use the size with fallbacks
            size = shutil.get_terminal_size(fallback=(100, 24))
            bar = state["bar"] = tqdm(
                total=total,
                unit=unit,
                ncols=size.columns or 100,
                nrows=size.lines or 24,
                leave=True,
            )
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
        # int8 is a choice so that asking for it gets the measured reason it is not offered
        type=click.Choice(["fp32", "bf16", "fp16", "int8"]),
        default="fp32",
        show_default=True,
        help="Forward passes in float32 or mixed precision (bf16: CPU or GPU; fp16: GPU "
        "only). int8 was measured and is not offered (benchmarks/README.md).",
    )
