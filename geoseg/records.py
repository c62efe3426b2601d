"""JSON run records, manifests and result files: one policy, written atomically.

Every JSON file geoseg writes (``*_run.json``, ``manifest.json``, ``run.json`` of a
workflow, ``geoseg eval --json``, training records, change tables) goes through
:func:`record_text`, so they read the same: strict JSON (NaN and infinities become
``null``, which every JSON reader accepts), two-space indent, values JSON does not
know (paths, dates) written as their text, a final newline.

>>> record_text({"iou": float("nan"), "path": __import__("pathlib").Path("a.tif")})
'{\\n  "iou": null,\\n  "path": "a.tif"\\n}\\n'
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoseg.atomic import write_text_atomic


def record_text(record: Any) -> str:
    """The JSON text of a record under geoseg's one policy."""
    import json

    return json.dumps(finite(record), indent=2, default=str, allow_nan=False) + "\n"


def write_record(path: str | os.PathLike[str], record: Any, *, overwrite: bool = True) -> Path:
    """Write ``record`` as JSON to ``path`` atomically (see :func:`record_text`)."""
    return write_text_atomic(path, record_text(record), overwrite=overwrite)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None``, recursively.

    >>> finite({"a": [1.0, float("inf")], "b": (float("nan"),)})
    {'a': [1.0, None], 'b': [None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
