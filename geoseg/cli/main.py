"""``geoseg`` command line: one thin click command per verb.

Heavy imports happen inside each command so ``geoseg --help`` is instant. A
:class:`~geoseg.errors.GeosegError` (or a click usage error) becomes one red
line on stderr and exit code 2; anything else is a bug and keeps its traceback.

Warnings (Python's, and GDAL's through rasterio's loggers) are collected while
a command runs: a failed command prints only its error line, a successful one
each distinct warning once, with a count when it repeated (a GDAL warning per
tile would otherwise fill the screen).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import click

from geoseg.errors import GeosegError, cli_wording

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class WarningCounter(logging.Handler):
    """Counts distinct warnings: log records at WARNING and above, and Python warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count a log record by its first line."""
        self.add(record.levelname.lower(), record.getMessage() or record.name)

    def warning(self, message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        """``warnings.showwarning`` replacement: count instead of printing."""
        self.add("warning", f"{category.__name__}: {message}")

    def add(self, level: str, text: str) -> None:
        """Count one message under its gist (see :func:`gist`)."""
        self.counts[f"{level}: {gist(text)}"] += 1

    def report(self) -> None:
        """Print each distinct warning once (with how often it came) to stderr."""
        for text, n in self.counts.items():
            click.echo(text + (f" ({n} times)" if n > 1 else ""), err=True)


_GDAL_PREFIXES = (
    re.compile(r"^\d{4}-\d\d-\d\d[ T][\d:,.]+ - "),  # a timestamp (Dask workers' log lines)
    re.compile(r"^(?:warning|error) \d+: ", re.IGNORECASE),  # GDAL's own stderr lines
    re.compile(r"^CPLE_\w+ in "),  # rasterio's log records of GDAL messages
    re.compile(r"^[^\s:]+\.\w+: (?=\S)"),  # the file GDAL names, when it names one
)


def gist(text: str) -> str:
    """A message's first line without the prefixes that make one GDAL warning look like many.

    GDAL's warning about one file arrives as ``Warning 1: TIFF…`` (printed by
    GDAL), ``CPLE_AppDefined in w.tif: TIFF…`` and ``CPLE_AppDefined in TIFF…``
    (through rasterio): all three are one warning.

    Examples
    --------
    >>> gist("CPLE_AppDefined in w.tif: TIFFReadDirectory:Sum of channels")
    'TIFFReadDirectory:Sum of channels'
    >>> gist("Warning 1: TIFFReadDirectory:Sum of channels")
    'TIFFReadDirectory:Sum of channels'
    >>> gist("2026-12-04 05:30:01,123 - distributed.worker - WARNING - slow")
    'distributed.worker - WARNING - slow'
    """
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    for prefix in _GDAL_PREFIXES:
        line = prefix.sub("", line)
    return line


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno < logging.WARNING


@contextlib.contextmanager
def _native_stderr(counter: WarningCounter) -> Iterator[None]:
    """Count what C libraries print straight to file descriptor 2 while a command runs.

    libtiff inside GDAL prints some messages itself (``_tiffWriteProc: No space
    left on device.``), past every Python handler. In a real process, fd 2 is
    pointed at a temporary file for the duration and ``sys.stderr`` at a copy of
    the real one, so our own lines and progress bars still show; the C lines
    are counted like other warnings. Under a test runner that swapped
    ``sys.stderr`` this does nothing.
    """
    try:
        real = sys.stderr is sys.__stderr__ and sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    import os
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        before = sys.stderr
        sys.stderr = open(  # noqa: SIM115  (closed below, after fd 2 is back)
            os.dup(saved), "w", encoding=before.encoding, errors="backslashreplace", buffering=1
        )
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = before
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    counter.add("warning", line)


@contextlib.contextmanager
def collected_warnings() -> Iterator[WarningCounter]:
    """Hold back warnings while a command runs; log records below WARNING stream as usual."""
    counter = WarningCounter()
    with _native_stderr(counter), _python_warnings(counter):
        yield counter


@contextlib.contextmanager
def _python_warnings(counter: WarningCounter) -> Iterator[None]:
    root = logging.getLogger()
    stream = logging.StreamHandler(sys.stderr)  # the stderr of now: CliRunner swaps it
    stream.setFormatter(logging.Formatter(LOG_FORMAT))
    stream.addFilter(_below_warning)
    root.addHandler(stream)
    root.addHandler(counter)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = counter.warning
            yield
    finally:
        root.removeHandler(stream)
        root.removeHandler(counter)


class GeosegGroup(click.Group):
    """A click group that turns GeosegError and usage errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        with cli_wording(), collected_warnings() as seen:
            try:
                result = super().invoke(ctx)
            except GeosegError as err:
                click.secho(f"error: {_one_line(str(err))}", fg="red", err=True)
                ctx.exit(2)
            except click.UsageError as err:
                command = err.ctx.command_path if err.ctx else "geoseg"
                click.secho(
                    f"error: {_one_line(err.format_message())} (see {command} --help)",
                    fg="red",
                    err=True,
                )
                ctx.exit(2)
        seen.report()
        return result


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


@click.group(cls=GeosegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
@click.version_option(package_name="geoseg")
def cli(verbose: int, quiet: int) -> None:
    """Seamless georeferenced class maps and QGIS-ready polygons from large rasters.

    \b
    Example:
      geoseg predict data/zion/landsat8_2015-08-18_b2345.tif \\
          --model landcover-nlcd8 --out results/
    """
    # handlers: collected_warnings (records below WARNING stream, the rest are counted)
    logging.getLogger().setLevel(max(10, 30 - 10 * verbose + 10 * quiet))


# (module under geoseg.cli, click command attribute): one line per verb.
COMMANDS: list[tuple[str, str]] = [
    ("predict_cmd", "predict"),
    ("stac_cmd", "predict_stac"),
    ("vectorize_cmd", "vectorize"),
    ("bundle_cmd", "bundle"),
    ("quicklook_cmd", "quicklook"),
    ("eval_cmd", "eval_"),
    ("train_cmd", "train"),
    ("stats_cmd", "stats"),
    ("change_cmd", "change"),
    ("sensors_cmd", "sensors"),
    ("run_cmd", "run"),
]


def _register() -> None:
    import importlib

    for module, attr in COMMANDS:
        cli.add_command(getattr(importlib.import_module(f"geoseg.cli.{module}"), attr))


_register()
