"""Bad-input rows: The predict pipeline: options, resources, outputs and what they may overwrite."""

from __future__ import annotations

from tests.badinput import Case

CASES: dict[str, Case] = {}
