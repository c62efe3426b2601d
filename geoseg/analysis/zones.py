"""Zones for ``geoseg stats``: polygons read, reprojected and burned block by block.

Zones come from any OGR file, are reprojected to the raster's CRS and
rasterized per block with GDAL's pixel-centre rule (``all_touched=False``). See
:mod:`geoseg.analysis.stats` for how they are counted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geoseg.errors import InputError


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone: its name, its polygons in the raster's CRS and their bounds."""

    name: str
    geoms: tuple[Any, ...]
    bounds: tuple[float, float, float, float]


def read_zones(
    zones: str | os.PathLike[str], zone_field: str | None, layer: str | None, ds: Any
) -> list[Zone]:
    """The zones of ``zones`` by ``zone_field``, in the CRS of the open raster ``ds``.

    Raises
    ------
    InputError
        Unreadable file, missing field or CRS, no polygons, or none overlaps ``ds``.
    """
    import pyogrio
    import shapely

    from geoseg.io.styles import data_layer

    layer = data_layer(zones, layer)
    try:
        info = pyogrio.read_info(zones, layer=layer)
    except Exception as err:  # pyogrio raises its own DataSourceError/DataLayerError
        raise InputError(
            f"cannot read zones {zones}: {err}; pass a polygon file GDAL reads"
        ) from err
    fields = [str(f) for f in info["fields"]]
    if zone_field is None or zone_field not in fields:
        what = f"has no field '{zone_field}'" if zone_field else "needs --zone-field"
        raise InputError(
            f"zones {zones} {what}; pass --zone-field with one of: "
            + (", ".join(fields) or "(it has no fields)")
        )
    if not info.get("crs"):
        raise InputError(
            f"zones {zones} have no CRS; set one (ogr2ogr -a_srs EPSG:…) so they can be placed"
        )
    gdf = pyogrio.read_dataframe(zones, layer=layer, columns=[zone_field])
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    _check_polygons(gdf.geom_type.tolist(), zones)
    gdf = gdf.to_crs(ds.crs.to_wkt())
    left, bottom, right, top = ds.bounds
    out: dict[str, list[Any]] = {}
    for value, geom in zip(gdf[zone_field].tolist(), gdf.geometry.tolist(), strict=True):
        out.setdefault(zone_name(value), []).extend(_polygon_parts(shapely.make_valid(geom)))
    if not out:
        raise InputError(f"zones {zones} have no polygons; pass a file with zone polygons")
    # a zone left without polygons (only collapsed rings) has no bounds and no pixels
    nowhere = (math.nan,) * 4
    zone_list = [
        Zone(k, tuple(g), _bounds(shapely.total_bounds(g)) if g else nowhere)
        for k, g in out.items()
    ]
    if not any(_overlaps(z.bounds, (left, bottom, right, top)) for z in zone_list):
        raise InputError(
            f"none of the {len(zone_list)} zones in {zones} overlaps {ds.name} "
            "(after reprojection to its CRS); check that both cover the same place"
        )
    return zone_list


def _check_polygons(kinds: list[str], zones: Any) -> None:
    """Points and lines have no area: rasterized they burn a pixel path, not a region."""
    polygons = ("Polygon", "MultiPolygon")
    other = [k for k in kinds if k not in polygons]
    if other:
        raise InputError(
            f"zones {zones} hold {len(other)} {'/'.join(sorted(set(other)))} feature(s) and "
            "stats needs polygons (points and lines have no area); buffer them into "
            "polygons first (QGIS: Vector > Geoprocessing Tools > Buffer; GDAL: ogr2ogr with "
            "-dialect sqlite and ST_Buffer)"
        )


def _polygon_parts(geom: Any) -> list[Any]:
    """The polygons of a repaired geometry (repair can leave lines of a collapsed ring)."""
    import shapely

    parts = shapely.get_parts(geom).tolist()
    return [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]


def zone_name(value: Any) -> str:
    """A zone attribute as the zone's name: null is ``""``, a whole float has no ``.0``.

    >>> [zone_name(v) for v in (None, float("nan"), 3.0, 2.5, "Zion")]
    ['', '', '3', '2.5', 'Zion']
    """
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # integer columns with nulls are read as floats
    return str(value)


def _bounds(b: NDArray[np.float64]) -> tuple[float, float, float, float]:
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def zone_masks(
    zones: Sequence[Zone], ds: Any, window: Window
) -> Iterator[tuple[Zone, NDArray[np.bool_]]]:
    """Each zone overlapping ``window`` and its pixels there (pixel-centre rule)."""
    from rasterio.features import rasterize
    from rasterio.windows import bounds as window_bounds

    box = window_bounds(window, ds.transform)
    box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    transform = ds.window_transform(window)
    for zone in zones:
        if not _overlaps(zone.bounds, box):
            continue
        burned = rasterize(
            zone.geoms,
            out_shape=(int(window.height), int(window.width)),
            transform=transform,
            fill=0,
            default_value=1,
            all_touched=False,
            dtype="uint8",
        )
        yield zone, burned.astype(bool)
