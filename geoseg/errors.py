"""The error tree: every error a user can cause is a :class:`GeosegError`.

Each leaf also inherits the builtin it refines (as rasterio does), so callers
that already catch ``ValueError`` or ``OSError`` keep working. The CLI turns a
``GeosegError`` into one line and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_CLI_WORDING: ContextVar[bool] = ContextVar("geoseg_cli_wording", default=False)

#: CLI flags whose API argument is a boolean, as the API spells it
FLAG_ARGUMENTS = {
    "--overwrite": "overwrite=True",
    "--allow-domain-shift": "allow_domain_shift=True",
    "--allow-no-crs": "allow_no_crs=True",
    "--allow-mixed-crs": "allow_mixed_crs=True",
    "--confidence": "confidence=True",
    "--no-vector": "vector=False",
    "--no-pad": "pad=False",
}
_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?: ([^\s()'\"]+))?")
_COMMAND = re.compile(r"\bgeoseg [a-z][a-z-]*[^;)]*")
_WORD_VALUES = frozenset("auto none first all crop smooth cpu cuda nearest mode".split())


def _is_value(token: str) -> bool:
    """Whether the word after a flag is its value (``1,2,3,4``, ``NAME|PATH``, ``auto``)."""
    token = token.rstrip(".,;:")
    return bool(token) and (
        token in _WORD_VALUES or token.isupper() or any(not c.isalpha() for c in token)
    )


@contextlib.contextmanager
def cli_wording() -> Iterator[None]:
    """While the CLI runs a command, errors name its flags (``--overwrite``) as they are."""
    token = _CLI_WORDING.set(True)
    try:
        yield
    finally:
        _CLI_WORDING.reset(token)


def api_wording(text: str) -> str:
    """A message's CLI flags as the Python API's keyword arguments.

    Messages are written once, with the flags a CLI user types; a caller of the
    library reads the arguments it passes instead.

    >>> api_wording("out.gpkg exists; pass --overwrite to replace it")
    'out.gpkg exists; pass overwrite=True to replace it'
    >>> api_wording("pass --bands in the bundle's order (e.g. --bands 1,2,3,4) or --sensor")
    "pass bands=... in the bundle's order (e.g. bands=1,2,3,4) or sensor=..."
    >>> api_wording("use a smaller --chip or a smaller --batch-size")
    'use a smaller chip=... or a smaller batch_size=...'
    >>> api_wording("wrap it with geoseg bundle create --onnx m.onnx; or pass --model")
    'wrap it with geoseg bundle create --onnx m.onnx; or pass model=...'
    """
    commands = [m.span() for m in _COMMAND.finditer(text)]  # a command line stays as typed

    def one(m: re.Match[str]) -> str:
        if any(a <= m.start() < b for a, b in commands):
            return m.group(0)
        flag, value = f"--{m.group(1)}", m.group(2)
        name = m.group(1).replace("-", "_")
        if flag in FLAG_ARGUMENTS:
            return FLAG_ARGUMENTS[flag] + (f" {value}" if value else "")
        if value and _is_value(value):
            return f"{name}={value}"
        return f"{name}=..." + (f" {value}" if value else "")

    return _OPTION.sub(one, text)


_WARNINGS_LOCK = threading.RLock()


@contextlib.contextmanager
def silenced(*categories: type[Warning]) -> Iterator[None]:
    """Ignore ``categories`` (all warnings if none) inside the block, thread-safely.

    ``warnings.catch_warnings`` saves and restores the process-wide filter list,
    so two threads inside it at once can restore each other's filters (and let a
    warning through, or drop one a user asked for). Every geoseg block that
    silences a warning goes through this one lock; keep such blocks rare and short.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        for category in categories or (Warning,):
            warnings.simplefilter("ignore", category)
        yield


class GeosegError(Exception):
    """Base of every error geoseg raises on purpose.

    Messages name CLI flags (``pass --overwrite``); outside the CLI, ``str(err)``
    names the API's arguments instead (``pass overwrite=True``, :func:`api_wording`).
    """

    def __str__(self) -> str:
        text = super().__str__()
        return text if _CLI_WORDING.get() else api_wording(text)


class InputError(GeosegError, ValueError):
    """Bad user input or options; the message says what to do."""


class SceneError(InputError):
    """A scene cannot be used as given (bands, CRS, nodata, size)."""


class ChipGridError(InputError):
    """Chip, overlap or block sizes that do not make a valid grid."""


class RasterReadError(GeosegError, OSError):
    """A raster is missing, unreadable or corrupt."""


class BundleError(GeosegError, ValueError):
    """A model bundle is missing, invalid, tampered with or mismatched."""


class OutputError(GeosegError, OSError):
    """Outputs cannot be written (exists, not writable, disk full)."""


class VectorizeError(InputError):
    """A class raster cannot be vectorized as asked."""


class WorkerLostError(GeosegError, RuntimeError):
    """A block task killed every Dask worker that ran it (out of memory, a crash)."""


class MissingDependencyError(GeosegError, ImportError):
    """An optional dependency is needed for this feature."""


class AlignmentError(InputError):
    """Rasters to compare are not on one grid and cannot (or may not) be put on one."""


class ChangeRuleError(InputError):
    """A change rule names unknown classes, overlaps another rule, or is malformed."""


class SpecError(InputError):
    """A YAML spec is missing, unparsable, or has an unknown key, a wrong type or value."""


class BatchError(GeosegError):
    """Some scenes of a batch failed; the others finished. ``results`` has them all."""

    def __init__(self, message: str, results: list[Any]) -> None:
        super().__init__(message)
        self.results = results


class DomainError(InputError):
    """A scene lies far outside the domain a bundle was trained on."""


class ConfigError(InputError):
    """A training config is missing, unparsable or has a wrong key or value."""


class TrainingDataError(InputError):
    """The training data cannot be used as given (bands, split, empty after filtering)."""


class CheckpointError(InputError):
    """A resume checkpoint is unreadable or belongs to a different configuration."""


class LabelError(InputError):
    """Labels that cannot be used with their image (no overlap, missing attribute, ...)."""
