"""Tables and run records written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoseg.atomic import write_text_atomic
from geoseg.records import record_text


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """Write a text file atomically (tables, records)."""
    return write_text_atomic(path, text, overwrite=overwrite)


def write_record(
    path: str | os.PathLike[str], record: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Write a run record as JSON under :mod:`geoseg.records`' policy, atomically."""
    return write_text(path, record_text(record), overwrite=overwrite)
