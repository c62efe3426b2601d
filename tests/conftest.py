from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _doctest_cwd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Doctests use repo-relative paths (data/...)."""
    if isinstance(request.node, pytest.DoctestItem):
        from tests.common import REPO

        monkeypatch.chdir(REPO)
