"""Bad-input rows. Bundles, vectorize and quicklook: create, export, write beside user files."""

from __future__ import annotations

from tests.badinput import Case

CASES: dict[str, Case] = {}
