"""Root pytest configuration: what ``--doctest-modules`` leaves out.

The old module paths kept for one release (``geoseg/scene.py`` and the other shims
that call :func:`geoseg._moved.alias`) only warn and alias; importing them for
doctest collection would turn that warning into an error. ``tests/test_layout.py``
imports each of them on purpose.
"""

from pathlib import Path

_HERE = Path(__file__).parent
collect_ignore = [
    str(p.relative_to(_HERE))
    for p in sorted((_HERE / "geoseg").glob("*.py"))
    if "alias(__name__" in p.read_text(encoding="utf-8")
]
