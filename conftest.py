"""Root pytest configuration: what ``--doctest-modules`` leaves out, and a cache for the run.

Exports of torch bundles to ONNX (``--backend auto`` on CPU) go to a temporary cache
for the whole session (doctests and tests alike), never into ``~/.cache``; it is set
at import, before any Dask worker starts, so workers inherit it.

The old module paths kept for one release (``geoseg/scene.py`` and the other shims
that call :func:`geoseg._moved.alias`) only warn and alias; importing them for
doctest collection would turn that warning into an error. ``tests/test_layout.py``
imports each of them on purpose.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("GEOSEG_CACHE_DIR", tempfile.mkdtemp(prefix="geoseg-test-cache-"))

_HERE = Path(__file__).parent
collect_ignore = [
    str(p.relative_to(_HERE))
    for p in sorted((_HERE / "geoseg").glob("*.py"))
    if "alias(__name__" in p.read_text(encoding="utf-8")
]
