"""Named change classes: rules, the change scheme and the (from, to) lookup."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import ChangeRuleError
from geoseg.schemes import NODATA_CLASS, ClassInfo

ClassSpec = str | int
"""A class by name (case-insensitive), by id, or ``"*"`` for any class."""

NO_CHANGE_COLOR = "#E8E8E8"
DEFAULT_COLORS = {"loss": "#E31A1C", "gain": "#33A02C", "flood": "#1F78B4"}
PALETTE = ("#E31A1C", "#33A02C", "#1F78B4", "#FF7F00", "#6A3D9A", "#B15928", "#FB9A99", "#A6CEE3")


@dataclass(frozen=True, slots=True)
class ChangeRule:
    """A named change class: pixels that were one of ``from_classes`` and are one of ``to_classes``.

    Classes are names (case-insensitive) or ids of the earlier and the later
    raster's schemes; ``"*"`` is any class.
    """

    name: str
    from_classes: tuple[ClassSpec, ...]
    to_classes: tuple[ClassSpec, ...]
    color: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ChangeRuleError(f"a change rule needs a non-empty name, got {self.name!r}")
        for side, classes in (("from", self.from_classes), ("to", self.to_classes)):
            if not classes:
                raise ChangeRuleError(f"rule '{self.name}' needs at least one '{side}' class")
        if self.color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", self.color):
            raise ChangeRuleError(
                f"rule '{self.name}' color {self.color!r} must look like '#e31a1c'"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "name": self.name,
            "from": list(self.from_classes),
            "to": list(self.to_classes),
            "color": self.color,
        }


def parse_rule(text: str) -> ChangeRule:
    """A rule from ``NAME=FROM[,FROM…]:TO[,TO…][:#rrggbb]`` (the CLI's ``--rule``).

    Examples
    --------
    >>> parse_rule("loss=forest:non-forest")
    ChangeRule(name='loss', from_classes=('forest',), to_classes=('non-forest',), color=None)
    >>> parse_rule("flood=*:1:#1f78b4").to_classes
    (1,)
    """
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or len(parts) not in (2, 3):
        raise ChangeRuleError(
            f"cannot read rule {text!r}; write NAME=FROM:TO, e.g. loss=forest:non-forest "
            "(several classes with commas, an optional :#rrggbb color)"
        )
    return ChangeRule(
        name.strip(),
        _specs(parts[0]),
        _specs(parts[1]),
        parts[2].strip() if len(parts) == 3 else None,
    )


def _specs(text: str) -> tuple[ClassSpec, ...]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    return tuple(int(s) if s.isdigit() else s for s in items)


def as_rules(
    rules: Mapping[str, Mapping[str, Any]] | Iterable[ChangeRule | str],
) -> tuple[ChangeRule, ...]:
    """Rules from a mapping ``{name: {"from": [...], "to": [...], "color": …}}`` or a list.

    Raises
    ------
    ChangeRuleError
        A malformed rule, or two rules with one name.
    """
    out: list[ChangeRule] = []
    if isinstance(rules, Mapping):
        for name, spec in rules.items():
            if not isinstance(spec, Mapping) or "from" not in spec or "to" not in spec:
                raise ChangeRuleError(
                    f"rule '{name}' needs 'from' and 'to' class lists, got {spec!r}"
                )
            out.append(
                ChangeRule(str(name), _listed(spec["from"]), _listed(spec["to"]), spec.get("color"))
            )
    else:
        out = [r if isinstance(r, ChangeRule) else parse_rule(r) for r in rules]
    names = [r.name.lower() for r in out]
    if len(set(names)) != len(names):
        raise ChangeRuleError(f"change rule names must be unique, got {[r.name for r in out]}")
    return tuple(out)


def _listed(value: Any) -> tuple[ClassSpec, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(v if isinstance(v, int) else str(v) for v in items)


def change_scheme(
    rules: Sequence[ChangeRule], *, no_change: str = "no change"
) -> tuple[ClassInfo, ...]:
    """The change raster's classes: 0 = ``no_change``, then the rules in order (1, 2, …).

    Colors: the rule's own, else a default for a few usual names (loss red,
    gain green, flood blue), else the next color of a qualitative palette.

    Examples
    --------
    >>> [(c.id, c.name, c.color) for c in change_scheme(as_rules(["loss=1:0", "gain=0:1"]))]
    [(0, 'no change', '#E8E8E8'), (1, 'loss', '#E31A1C'), (2, 'gain', '#33A02C')]
    """
    if len(rules) > 254:
        raise ChangeRuleError(f"at most 254 change rules fit a uint8 raster, got {len(rules)}")
    used = {r.color.upper() for r in rules if r.color}
    used |= {DEFAULT_COLORS[r.name.lower()] for r in rules if r.name.lower() in DEFAULT_COLORS}
    spare = iter([c for c in PALETTE if c not in used] + list(PALETTE) * 32)
    classes = [ClassInfo(0, no_change, NO_CHANGE_COLOR, "no change between the dates")]
    for i, r in enumerate(rules, 1):
        color = r.color or DEFAULT_COLORS.get(r.name.lower()) or next(spare)
        what = f"{_show(r.from_classes)} → {_show(r.to_classes)}"
        if r.name == no_change:
            raise ChangeRuleError(f"rule name '{r.name}' is the no-change class; rename the rule")
        classes.append(ClassInfo(i, r.name, color, what))
    return tuple(classes)


def _show(specs: Sequence[ClassSpec]) -> str:
    return ", ".join(str(s) for s in specs)


def resolve_classes(
    specs: Sequence[ClassSpec], names: Mapping[int, str], *, raster: str
) -> NDArray[np.bool_]:
    """``(256,)`` True for the class ids ``specs`` name in a raster's scheme (``*``: all)."""
    out = np.zeros(256, dtype=bool)
    by_name = {n.lower(): i for i, n in names.items()}
    for spec in specs:
        if spec == "*":
            out[:NODATA_CLASS] = True
        elif isinstance(spec, int) or str(spec).isdigit():
            i = int(spec)
            if not 0 <= i < NODATA_CLASS:
                raise ChangeRuleError(f"class id {i} must be in 0..254 (255 is nodata)")
            out[i] = True
        elif str(spec).lower() in by_name:
            out[by_name[str(spec).lower()]] = True
        else:
            known = ", ".join(f"{i} {n}" for i, n in sorted(names.items())) or "none: use ids"
            raise ChangeRuleError(f"{raster} has no class '{spec}'; its classes are {known}")
    return out


def rule_table(
    rules: Sequence[ChangeRule],
    *,
    names0: Mapping[int, str],
    names1: Mapping[int, str],
    raster0: str = "t0",
    raster1: str = "t1",
) -> NDArray[np.uint8]:
    """``(65536,)`` change class for each ``from_id * 256 + to_id``: first matching rule, else 0."""
    lut = np.zeros(65536, dtype=np.uint8)
    taken = np.zeros(65536, dtype=bool)
    for k, rule in enumerate(rules, 1):
        f = resolve_classes(rule.from_classes, names0, raster=raster0)
        t = resolve_classes(rule.to_classes, names1, raster=raster1)
        hit = (f[:, None] & t[None, :]).ravel() & ~taken
        lut[hit] = k
        taken |= hit
    lut[NODATA_CLASS * 256 :] = NODATA_CLASS
    lut[NODATA_CLASS::256] = NODATA_CLASS
    return lut
