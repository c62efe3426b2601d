"""House style is checked like everything else: ruff (lint + format) and mypy --strict."""

from __future__ import annotations

import subprocess
import sys

from tests.common import REPO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", "geoseg", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run("ruff", "format", "--check", "geoseg", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_strict() -> None:
    res = _run("mypy")
    assert res.returncode == 0, res.stdout[-3000:]
