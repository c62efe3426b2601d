"""Pieces shared by the CLI commands."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator


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
