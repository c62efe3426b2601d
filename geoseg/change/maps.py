"""Change rasters of named change classes, and the flood helper built on them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.analysis.stats import AreaTable, class_areas
from geoseg.change.grid import Align, AlignedStack, _align
from geoseg.change.mmu import _apply_mmu, _grow, _mmu
from geoseg.change.rules import ChangeRule, ClassSpec, as_rules, change_scheme, rule_table
from geoseg.change.transitions import TransitionTable, _codes, _Tally
from geoseg.errors import ChangeRuleError, InputError, OutputError
from geoseg.grid.windows import PixelWindow, iter_windows
from geoseg.io.classraster import SchemeSource
from geoseg.io.writer import RasterSink
from geoseg.schemes import ClassInfo, load_scheme


@dataclass(frozen=True)
class ChangeResult:
    """A written change raster, its class areas and the transitions behind it."""

    path: Path
    classes: tuple[ClassInfo, ...]
    rules: tuple[ChangeRule, ...]
    areas: AreaTable
    transitions: TransitionTable
    mmu_m2: float
    mmu_pixels: int  # pixels set to no change by the MMU
    inputs: list[dict[str, Any]] = field(default_factory=list)
    grid: dict[str, Any] = field(default_factory=dict)

    def area_of(self, name: str) -> float:
        """Area in m² of the change class ``name`` (0 if it has no pixels)."""
        return sum(r.area_m2 for r in self.areas.rows if r.class_name == name)

    def record(self) -> dict[str, Any]:
        """JSON-ready run record: inputs with hashes and grids, rules, MMU, areas."""
        return {
            "output": str(self.path),
            "grid": self.grid,
            "inputs": self.inputs,
            "rules": [r.to_dict() for r in self.rules],
            "classes": [c.to_dict() for c in self.classes],
            "mmu_m2": self.mmu_m2,
            "mmu_pixels_dropped": self.mmu_pixels,
            "areas": [
                {
                    "class_id": r.class_id,
                    "class_name": r.class_name,
                    "pixels": r.pixels,
                    "area_m2": r.area_m2,
                    "area_ha": r.area_ha,
                }
                for r in self.areas.rows
            ],
            "transitions": [
                {
                    "from": r.from_name,
                    "to": r.to_name,
                    "from_id": r.from_id,
                    "to_id": r.to_id,
                    "pixels": r.pixels,
                    "area_m2": r.area_m2,
                }
                for r in self.transitions.rows
            ],
        }


def _check_out(out: Path, overwrite: bool) -> Path:
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{out}: change rasters are GeoTIFFs; name it *.tif")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist; create it first")
    return out


def change_map(
    t0: str | os.PathLike[str],
    t1: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    rules: Mapping[str, Mapping[str, Any]] | Iterable[ChangeRule | str],
    mmu_m2: float = 0.0,
    mmu_classes: Sequence[str] | None = None,
    connectivity: int = 4,
    no_change: str = "no change",
    align: Align = "first",
    block: int = 1024,
    scheme: SchemeSource | None = None,
    overwrite: bool = False,
) -> ChangeResult:
    """Write a change raster of named change classes between two class rasters.

    Parameters
    ----------
    t0, t1
        Class rasters of the earlier and the later date.
    out
        The change raster (``.tif``; a COG with palette, categories and ``.qml``).
    rules
        ``{name: {"from": [...], "to": [...], "color": "#rrggbb"}}`` or a list
        of :class:`ChangeRule` / ``"name=from:to"`` strings; first match wins.
    mmu_m2
        Minimum mapping unit in m²: smaller patches of a change class become
        0 (no change). 0 keeps everything.
    mmu_classes
        Change classes (names) the MMU applies to [all].
    connectivity
        4 or 8: which pixels make one patch for the MMU.
    no_change
        Name of class 0.
    align
        ``"first"`` or ``"none"`` (see the module notes).
    block
        Block edge in pixels.
    scheme
        Class scheme (catalog name, YAML path or classes) naming the rasters' ids [their
        own tags, see :mod:`geoseg.io.classraster`].
    overwrite
        Replace an existing ``out``.

    Returns
    -------
    ChangeResult
        The path, the change scheme, per-class areas (after the MMU) and the
        transition table (before it).

    Raises
    ------
    ChangeRuleError
        Unknown class names, malformed rules.
    AlignmentError
        Grids that differ with ``align="none"``, or no overlap.

    Examples
    --------
    >>> import tempfile
    >>> res = change_map(
    ...     "data/water/pucallpa_1985_water_mndwi_otsu.tif",
    ...     "data/water/pucallpa_2020_water_mndwi_otsu.tif",
    ...     out=Path(tempfile.mkdtemp()) / "water_change.tif",
    ...     rules={"new water": {"from": ["land"], "to": ["water"]}},
    ... )
    >>> [(r.class_name, r.pixels) for r in res.areas.rows]
    [('no change', 255559), ('new water', 7139)]
    """
    rule_list = as_rules(rules)
    classes = change_scheme(rule_list, no_change=no_change)
    path = _check_out(Path(out), overwrite)
    with _align([t0, t1], how=align, scheme=scheme) as stack:
        lut = rule_table(
            rule_list,
            names0=stack.names[0],
            names1=stack.names[1],
            raster0=stack.paths[0],
            raster1=stack.paths[1],
        )
        selected = _mmu_selection(classes, mmu_classes)
        mmu = _mmu(stack, mmu_m2, selected, connectivity=connectivity, fill=0)
        tally, dropped = _Tally(), 0
        sink = _sink(
            path,
            stack,
            classes,
            "change",
            {"GEOSEG_CHANGE_RULES": json.dumps([r.to_dict() for r in rule_list])},
        )
        try:
            for window in iter_windows(stack.grid.shape, block):
                grown, inner = _grow(window, mmu.halo if mmu else 0, stack.grid.shape)
                values, valid = stack.read(grown)
                codes, both = _codes(values, valid, 0, 1)
                tally.add(codes[inner], both[inner], stack.areas.rows(window))
                change = _apply_mmu(lut[codes], window, grown, stack, mmu)[inner]
                dropped += int(np.count_nonzero(change != lut[codes[inner]]))
                sink.write(PixelWindow.from_rasterio(window), change)
            staged = sink.finish()
        except BaseException:
            sink.abort()
            raise
        sink.publish(staged)
        transitions = tally.table(stack, 0, 1)
        inputs, grid = stack.describe(), stack.grid.to_dict()
    return ChangeResult(
        path,
        classes,
        rule_list,
        class_areas(path, block=block),
        transitions,
        float(mmu_m2),
        dropped,
        inputs,
        grid,
    )


def _mmu_selection(classes: Sequence[ClassInfo], names: Sequence[str] | None) -> NDArray[np.bool_]:
    selected = np.zeros(65536, dtype=bool)
    by_name = {c.name.lower(): c.id for c in classes if c.id != 0}
    if names is None:
        selected[list(by_name.values())] = True
        return selected
    for name in names:
        if name.lower() not in by_name:
            raise ChangeRuleError(
                f"mmu class '{name}' is not a change class; use one of {', '.join(by_name)}"
            )
        selected[by_name[name.lower()]] = True
    return selected


def _sink(
    path: Path,
    stack: AlignedStack,
    classes: tuple[ClassInfo, ...],
    description: str,
    tags: dict[str, str],
) -> RasterSink:
    g = stack.grid
    return RasterSink(
        path,
        shape=g.shape,
        crs=g.crs,
        transform=g.transform,
        classes=classes,
        description=description,
        tags=tags,
    )


def flood_extent(
    pre_water: str | os.PathLike[str],
    post_water: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    water: Sequence[ClassSpec] = ("water",),
    receded: bool = True,
    mmu_m2: float = 0.0,
    connectivity: int = 4,
    align: Align = "first",
    block: int = 1024,
    scheme: SchemeSource | None = None,
    overwrite: bool = False,
) -> ChangeResult:
    """Flood extent from a pre-event and a post-event water raster.

    Classes (``catalogs/flood.yaml``): 0 ``dry``, 1 ``permanent water`` (water
    at both dates), 2 ``flood`` (water after only), 3 ``receded`` (water before
    only; left out with ``receded=False``, those pixels are then ``dry``). The
    MMU applies to ``flood`` and ``receded`` patches, never to permanent water.
    Total water after the event is ``permanent water`` + ``flood``. The post
    raster is warped onto the pre raster's grid when they differ. ``scheme``
    names the rasters' class ids when their tags do not (see :func:`change_map`).

    Examples
    --------
    >>> import tempfile
    >>> res = flood_extent(
    ...     "data/water/pucallpa_2000_water_mndwi_otsu.tif",
    ...     "data/water/pucallpa_2020_water_mndwi_otsu.tif",
    ...     out=Path(tempfile.mkdtemp()) / "flood.tif",
    ... )
    >>> [c.name for c in res.classes]
    ['dry', 'permanent water', 'flood', 'receded']
    >>> res.area_of("permanent water") + res.area_of("flood") > 0
    True
    """
    flood = {c.name: c for c in load_scheme("flood")}
    rules = [
        ChangeRule("permanent water", tuple(water), tuple(water), flood["permanent water"].color),
        ChangeRule("flood", ("*",), tuple(water), flood["flood"].color),
    ]
    if receded:
        rules.append(ChangeRule("receded", tuple(water), ("*",), flood["receded"].color))
    return change_map(
        pre_water,
        post_water,
        out=out,
        rules=rules,
        mmu_m2=mmu_m2,
        mmu_classes=["flood", "receded"] if receded else ["flood"],
        connectivity=connectivity,
        no_change="dry",
        align=align,
        block=block,
        scheme=scheme,
        overwrite=overwrite,
    )
