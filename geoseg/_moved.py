"""Old import paths of modules that moved into packages in 0.2 (issue 17).

``geoseg/scene.py`` and its siblings are one-line shims that call :func:`alias`:
the old name becomes the very module object at the new path (private names and
``monkeypatch`` included) and a :class:`DeprecationWarning` says where to import
from. The shims go in 0.3.
"""

from __future__ import annotations

import importlib
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Make ``import old`` return the module ``new``, with a deprecation warning."""
    warnings.warn(
        f"{old} moved to {new} in geoseg 0.2; import it from there (the old path goes in 0.3)",
        DeprecationWarning,
        stacklevel=3,
    )
    sys.modules[old] = importlib.import_module(new)
