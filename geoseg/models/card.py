"""What ``geoseg bundle info`` prints about a bundle: a summary, then the model card."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from geoseg.models.kinds import kind_of

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle


def card_text(bundle: ModelBundle) -> str:
    """A human-readable summary of ``bundle`` plus its model card.

    Text from the bundle (names, card) is someone else's: characters that are
    not printable become ``?``, so no terminal escape reaches the terminal.

    Examples
    --------
    >>> from geoseg.models.bundle import load_bundle
    >>> print(card_text(load_bundle("ndwi")).splitlines()[0])
    bundle      ndwi  (index: ndwi > 0)
    """
    m = bundle.meta
    text = kind_of(m).detail(m)
    detail = f": {text}" if text else ""
    lines = [
        f"bundle      {m['name']}  ({m['kind']}{detail})",
        f"sha256      {bundle.sha256}",
        f"bands       {', '.join(bundle.bands)}"
        + (f"  [{m['input_units']}]" if m.get("input_units") else ""),
        f"normalize   {json.dumps(m['normalization'])}",
        f"chip        {m['chip']} px, overlap {m['overlap']} px"
        + (f", trained at {m['resolution_m']} m" if m.get("resolution_m") else ""),
        "classes     " + ", ".join(f"{c.id}={c.name}" for c in bundle.classes),
    ]
    if isinstance(m.get("domain"), Mapping):
        lines.append(f"domain      {domain_text(m['domain'])}")
    if m.get("description"):
        lines.append(f"about       {m['description']}")
    if m.get("card"):
        lines += ["", str(m["card"]).rstrip()]
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in "\n".join(lines))


def domain_text(d: Mapping[str, Any]) -> str:
    """One line of what a bundle was trained on (its recorded input domain)."""
    parts = [str(d.get("quantity", "unknown"))]
    if d.get("dtype"):
        parts.append(str(d["dtype"]))
    if d.get("sensors"):
        parts.append("sensors " + ", ".join(map(str, d["sensors"])))
    if d.get("resolution_m"):
        lo, hi = d["resolution_m"]
        parts.append(f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m")
    if d.get("p01") and d.get("p99"):
        ranges = zip(d.get("bands", []), d["p01"], d["p99"], strict=False)
        parts.append("1st-99th pct " + ", ".join(f"{b} {lo:g}-{hi:g}" for b, lo, hi in ranges))
    return "; ".join(parts)
