"""Class schemes: ids, names and colors of the classes a model predicts.

Schemes live as YAML in ``catalogs/`` (read with ``geoseg.yamlspec.safe_load``) and are
embedded in every bundle, so a bundle never depends on a catalog file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoseg.errors import InputError

NODATA_CLASS = 255
"""Class id written where there is no prediction (nodata in, or no valid pixel)."""

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """One class: ``id`` (0..254), ``name`` and ``color`` as ``#rrggbb``."""

    id: int
    name: str
    color: str
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, int) or not 0 <= self.id < NODATA_CLASS:
            raise InputError(f"class id {self.id!r} must be an integer in 0..254 (255 is nodata)")
        if not self.name or not isinstance(self.name, str):
            raise InputError(f"class {self.id} needs a non-empty name")
        if not isinstance(self.color, str) or not _HEX.match(self.color):
            raise InputError(f"class '{self.name}' color {self.color!r} must look like '#1f78b4'")

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Color as an ``(r, g, b)`` tuple of 0..255."""
        c = self.color
        return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        d: dict[str, Any] = {"id": self.id, "name": self.name, "color": self.color}
        if self.description:
            d["description"] = self.description
        return d


def parse_classes(items: Iterable[Mapping[str, Any]]) -> tuple[ClassInfo, ...]:
    """Validate a list of class mappings (``id``, ``name``, ``color``)."""
    out = []
    for item in items:
        try:
            out.append(
                ClassInfo(
                    id=item["id"],
                    name=item["name"],
                    color=item["color"],
                    description=str(item.get("description", "")),
                )
            )
        except (KeyError, TypeError) as err:
            raise InputError(
                f"class entry {dict(item) if isinstance(item, Mapping) else item!r} needs "
                "'id', 'name' and 'color'"
            ) from err
    if not out:
        raise InputError("a class scheme needs at least one class")
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise InputError(f"class ids must be unique, got {ids}")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise InputError(f"class names must be unique, got {names}")
    return tuple(out)


def catalogs_dir() -> Path:
    """Folder of the class-scheme YAML files (``GEOSEG_CATALOGS`` overrides)."""
    env = os.environ.get("GEOSEG_CATALOGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "catalogs"


def load_scheme(name_or_path: str | os.PathLike[str]) -> tuple[ClassInfo, ...]:
    """Load a class scheme by catalog name (``nlcd8``) or YAML path.

    Examples
    --------
    >>> [c.name for c in load_scheme("water")]
    ['land', 'water']
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = catalogs_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in catalogs_dir().glob("*.yaml"))
        raise InputError(
            f"no class scheme '{name_or_path}'; known schemes: {', '.join(known)} "
            "(or pass a YAML file path)"
        )
    from geoseg.yamlsafe import safe_load

    doc = safe_load(path.read_text(encoding="utf-8"), f"class scheme {path}")
    if not isinstance(doc, dict) or "classes" not in doc:
        raise InputError(f"{path} is not a class scheme: it needs a top-level 'classes' list")
    return parse_classes(doc["classes"])
