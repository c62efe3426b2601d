"""Bad-input rows. Untrusted files and names: STAC catalogs, workflow and train YAML, zones."""

from __future__ import annotations

from tests.badinput import Case

CASES: dict[str, Case] = {}
