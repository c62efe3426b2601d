"""The error tree: every error a user can cause is a :class:`GeosegError`.

Each leaf also inherits the builtin it refines (as rasterio does), so callers
that already catch ``ValueError`` or ``OSError`` keep working. The CLI turns a
``GeosegError`` into one line and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

from typing import Any


class GeosegError(Exception):
    """Base of every error geoseg raises on purpose."""


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
