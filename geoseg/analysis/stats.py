"""Area per class (and per zone × class) of a class raster, read block by block.

Areas:

- **projected CRS**: pixel count × ``|det(transform)|`` × (metres per CRS
  unit)², exact in the map plane (which is the ground area for equal-area
  projections; UTM, for one, scales areas by up to ~0.1 % near its zone edges).
- **geographic CRS**: each row's pixel area integrated on the CRS's ellipsoid in
  closed form (:mod:`geoseg.analysis.geodesy`), exact for north-up rasters.

Shares are of the *classified* area: a zone's (or the raster's) pixels that are
not nodata. Zones come from any OGR file, are reprojected to the raster's CRS
and rasterized per block with GDAL's pixel-centre rule (``all_touched=False``:
a pixel belongs to a zone when its centre is inside). Features with the same
zone value form one zone; a pixel inside two zones counts in both. Zones must be
polygons: points and lines have no area (buffer them first). A feature without a
zone value belongs to the zone named ``""`` (an empty cell), never ``"nan"``.

Examples
--------
>>> table = class_areas("data/zion/nlcd2011_8class.tif")
>>> [(r.class_name, r.pixels, round(r.area_km2, 2)) for r in table.rows][:2]
[('Water', 1334, 1.2), ('Developed', 19473, 17.53)]
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geoseg.analysis.geodesy import row_pixel_areas
from geoseg.analysis.zones import read_zones, zone_masks
from geoseg.analysis.zones import zone_name as zone_name  # moved to zones in 0.2
from geoseg.atomic import write_text_atomic
from geoseg.errors import InputError
from geoseg.grid.windows import iter_windows
from geoseg.io.classraster import SchemeSource, open_class_raster
from geoseg.io.classraster import class_names as class_names

COLUMNS = ("class_id", "class_name", "pixels", "area_m2", "area_ha", "area_km2", "share_pct")


@dataclass(frozen=True, slots=True)
class AreaRow:
    """Area of one class (in one zone): pixels, m², and share of the classified area."""

    zone: str | None
    class_id: int
    class_name: str
    pixels: int
    area_m2: float
    share: float  # fraction of the zone's classified area, 0..1

    @property
    def area_ha(self) -> float:
        """Area in hectares."""
        return self.area_m2 / 1e4

    @property
    def area_km2(self) -> float:
        """Area in km²."""
        return self.area_m2 / 1e6

    def values(self) -> tuple[Any, ...]:
        """The row in :data:`COLUMNS` order (zone first when there are zones)."""
        cells = (
            self.class_id,
            self.class_name,
            self.pixels,
            self.area_m2,
            self.area_ha,
            self.area_km2,
            100 * self.share,
        )
        return cells if self.zone is None else (self.zone, *cells)


@dataclass(frozen=True, slots=True)
class AreaTable:
    """All rows of a statistics run and how they were computed."""

    raster: str
    crs: str
    geographic: bool
    zone_field: str | None
    rows: tuple[AreaRow, ...]
    empty_zones: tuple[str, ...] = field(default=())  # zones without a pixel centre inside

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, ``zone`` first when there are zones."""
        return COLUMNS if self.zone_field is None else ("zone", *COLUMNS)

    def to_csv(self) -> str:
        """CSV text, full precision."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(r.values() for r in self.rows)
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A Markdown table (rounded for reading) with a note on how areas were computed."""
        right = {"pixels", "area_m2", "area_ha", "area_km2", "share_pct", "class_id"}
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---:" if c in right else "---" for c in self.columns) + "|"
        body = [
            "| "
            + " | ".join(_fmt(c, v) for c, v in zip(self.columns, r.values(), strict=True))
            + " |"
            for r in self.rows
        ]
        return "\n".join([head, rule, *body, "", self.note(), ""])

    def note(self) -> str:
        """One line: raster, CRS, area method, what the share is of."""
        method = "ellipsoidal (per-row exact)" if self.geographic else "planar, in the CRS"
        zones = f"; zones by '{self.zone_field}', pixel-centre rule" if self.zone_field else ""
        names = [markdown_cell(z) if z else "(no name)" for z in self.empty_zones]
        empty = f"; zones without pixels: {', '.join(names)}" if names else ""
        whole = "zone's" if self.zone_field else "raster's"
        share = f"share_pct: percent of the {whole} classified (non-nodata) area"
        return f"{Path(self.raster).name} ({self.crs}, areas {method}{zones}); {share}{empty}"


def _fmt(column: str, value: Any) -> str:
    if column == "pixels":
        return f"{value:,}"
    if column in ("area_m2", "area_ha"):
        return f"{value:,.2f}"
    if column == "area_km2":
        return f"{value:,.4f}"
    if column == "share_pct":
        return f"{value:.2f}"
    return markdown_cell(value)


def markdown_cell(value: Any) -> str:
    r"""``value`` as the text of one Markdown table cell.

    Names come from data (zone attributes, class names in a raster's tags), so ``\``
    and ``|`` are escaped and line breaks become ``<br>``: the row stays one row.

    >>> markdown_cell("a|b\nc")
    'a\\|b<br>c'
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if text else text


class _Tally:
    """Pixel counts and areas per class value, accumulated block by block."""

    def __init__(self, size: int) -> None:
        self.pixels = np.zeros(size, dtype=np.int64)
        self.area = np.zeros(size, dtype=np.float64)
        self.footprint = 0  # pixels of the zone inside the raster, nodata included

    def add(
        self, values: NDArray[Any], mask: NDArray[np.bool_], row_area: NDArray[np.float64]
    ) -> None:
        rows, cols = np.nonzero(mask)
        v = values[rows, cols]
        size = len(self.pixels)
        self.pixels += np.bincount(v, minlength=size)[:size]
        self.area += np.bincount(v, weights=row_area[rows], minlength=size)[:size]


def class_areas(
    raster: str | os.PathLike[str],
    *,
    zones: str | os.PathLike[str] | None = None,
    zone_field: str | None = None,
    zones_layer: str | None = None,
    block: int = 1024,
    scheme: SchemeSource | None = None,
) -> AreaTable:
    """Pixel count, area and share of every class, for the raster or per zone.

    Parameters
    ----------
    raster
        A single-band integer class raster (such as ``*_classes.tif``).
    zones
        Optional polygons (any OGR format): statistics per zone × class.
    zone_field
        Attribute naming the zones (required with ``zones``).
    zones_layer
        Layer of ``zones`` [the first].
    block
        Block edge in pixels; memory is bounded by one block.
    scheme
        Class scheme (catalog name, YAML path or classes) naming the ids [the
        raster's own tags, see :mod:`geoseg.io.classraster`].

    Returns
    -------
    AreaTable
        Rows per (zone,) class with pixels > 0, zones in file order, classes by id.

    Raises
    ------
    InputError
        Not an integer class raster, no CRS, a missing zone field, zones that do
        not overlap the raster.
    """
    if block < 1:
        raise InputError(f"block must be a positive number of pixels, got {block}")
    ds = open_class_raster(raster, command="stats", crs_reason="so areas are unknown")
    with ds:
        areas = PixelAreas(ds)
        names = class_names(ds, scheme)
        zone_list = read_zones(zones, zone_field, zones_layer, ds) if zones is not None else None
        size = 256 if ds.dtypes[0] == "uint8" else 65536
        keys = [z.name for z in zone_list] if zone_list is not None else [None]
        tallies = {k: _Tally(size) for k in keys}
        for window in iter_windows(ds.shape, block):
            data = ds.read(1, window=window, masked=True)
            valid = ~np.ma.getmaskarray(data)
            values = _check_values(np.ma.getdata(data), valid, raster, size)
            row_area = areas.rows(window)
            if zone_list is None:
                tallies[None].add(values, valid, row_area)
                continue
            for zone, inside in zone_masks(zone_list, ds, window):
                tallies[zone.name].footprint += int(inside.sum())
                tallies[zone.name].add(values, inside & valid, row_area)
    if zone_list is not None and not any(t.footprint for t in tallies.values()):
        raise InputError(
            f"none of the {len(zone_list)} zones in {zones} covers a pixel centre of {raster}; "
            "check that both cover the same place (zones are reprojected to the raster's CRS)"
        )
    rows = [row for k in keys for row in _rows(k, tallies[k], names, areas)]
    empty = tuple(str(k) for k in keys if k is not None and tallies[k].footprint == 0)
    return AreaTable(
        raster=str(raster),
        crs=areas.crs_name,
        geographic=areas.geographic,
        zone_field=zone_field if zones is not None else None,
        rows=tuple(rows),
        empty_zones=empty,
    )


def _rows(
    zone: str | None, tally: _Tally, names: dict[int, str], areas: PixelAreas
) -> Iterator[AreaRow]:
    ids = np.flatnonzero(tally.pixels)
    if areas.geographic:
        area = tally.area
    else:  # count × constant pixel area: exact, no float sum over millions of pixels
        area = tally.pixels.astype(np.float64) * areas.pixel_m2
    total = float(area[ids].sum())
    for i in ids.tolist():
        yield AreaRow(
            zone=zone,
            class_id=i,
            class_name=names.get(i, f"class_{i}"),
            pixels=int(tally.pixels[i]),
            area_m2=float(area[i]),
            share=float(area[i]) / total if total else 0.0,
        )


class PixelAreas:
    """Pixel area in m²: one number for projected CRSs, one per row for geographic ones."""

    def __init__(self, ds: Any) -> None:
        import pyproj

        crs = pyproj.CRS.from_user_input(ds.crs.to_wkt())
        self.crs_name = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
        self.geographic = bool(crs.is_geographic)
        self.transform = ds.transform
        factor = float(crs.axis_info[0].unit_conversion_factor)
        if self.geographic:
            t = ds.transform
            if t.b != 0 or t.d != 0:
                raise InputError(
                    f"{ds.name} is a rotated lon/lat raster; warp it north-up (gdalwarp) "
                    "or to a projected CRS first"
                )
            geod = crs.get_geod() or pyproj.Geod(ellps="WGS84")
            self.ellipsoid = (float(geod.a), float(geod.es))
            self.to_radians = factor
            self.pixel_m2 = math.nan
        else:
            self.pixel_m2 = abs(ds.transform.determinant) * factor**2

    def rows(self, window: Window) -> NDArray[np.float64]:
        """Pixel area of each row of ``window``."""
        idx = np.arange(window.row_off, window.row_off + window.height, dtype=np.int64)
        if not self.geographic:
            return np.full(len(idx), self.pixel_m2)
        a, es = self.ellipsoid
        return row_pixel_areas(self.transform, idx, a=a, es=es, to_radians=self.to_radians)


def _check_values(
    values: NDArray[Any], valid: NDArray[np.bool_], raster: Any, size: int
) -> NDArray[Any]:
    if values.dtype == np.uint8:
        return values
    v = values[valid]
    if v.size and (v.min() < 0 or v.max() >= size):
        raise InputError(
            f"{raster} has class values outside 0..{size - 1} ({v.min()}..{v.max()}); "
            "stats counts class ids, not measurements"
        )
    return np.where(valid, values, 0).astype(np.int64)


def write_table(table: AreaTable, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``table`` as CSV (``.csv``) or Markdown (``.md``), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".md", ".markdown"):
        raise InputError(f"{path}: table files end in .csv or .md")
    text = table.to_csv() if suffix == ".csv" else table.to_markdown()
    return write_text_atomic(path, text, overwrite=overwrite)
