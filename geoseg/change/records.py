"""Tables and run records written atomically."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoseg.atomic import write_text_atomic


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """Write a text file atomically (tables, records)."""
    return write_text_atomic(path, text, overwrite=overwrite)


def write_record(
    path: str | os.PathLike[str], record: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Write a run record as JSON (strict: NaN and infinities become null), atomically."""
    text = json.dumps(_finite(record), indent=2, default=str, allow_nan=False)
    return write_text(path, text + "\n", overwrite=overwrite)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
