"""Raster grid and options shared by every vectorize step."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.transform import Affine

from geoseg.errors import RasterReadError, VectorizeError
from geoseg.io.classraster import SchemeSource, class_names, open_class_raster
from geoseg.schemes import NODATA_CLASS

log = logging.getLogger(__name__)

SOURCE_TAG = "GEOSEG_SOURCE"
"""Class raster tag (dataset or band 1) naming the scene it came from (``source``)."""

DATE_TAG = "GEOSEG_DATE"
"""Class raster tag (dataset or band 1): the scene's acquisition date, ISO 8601 (``date``)."""

DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".parquet": "Parquet",
}
"""Output formats by file extension."""

METRES_PER_DEGREE = 111_320.0
"""Length of one degree at the equator, to turn a tolerance in metres into degrees."""

Geoms = NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class _Grid:
    """What every block needs to know about the raster and the options."""

    shape: tuple[int, int]
    block: int
    transform: Affine
    crs: Any
    selected: NDArray[np.bool_]  # (256,) True for class values to polygonize
    names: tuple[str, ...]  # (255,) class name by id
    geographic: bool
    unit_m: float  # metres per CRS unit (projected CRSs)
    ellipsoid: tuple[float, float]  # semi-major axis (m), first eccentricity squared
    connectivity: int
    nodata: int | None = None  # declared nodata class value, if any (255 is never a class)
    confidence: bool = False  # a confidence raster gives mean_confidence
    source: str | None = None  # the scene the class raster came from, when known
    date: str | None = None  # the scene's acquisition date (ISO 8601), when known

    @property
    def blocks(self) -> tuple[int, int]:
        """Number of block rows and block columns."""
        return -(-self.shape[0] // self.block), -(-self.shape[1] // self.block)

    @property
    def pixel_size(self) -> float:
        """Side of a square with a pixel's area, in CRS units."""
        return math.sqrt(abs(self.transform.determinant))


# --- options and raster ----------------------------------------------------------------


SHAPEFILE_REFUSED = (
    "geoseg does not write ESRI Shapefiles: field names stop at 10 characters "
    "(perimeter_m, mean_confidence would be cut), each file stops at 2 GB, and a "
    "Shapefile is five files that cannot be replaced as one; write {gpkg} (QGIS, ArcGIS "
    "Pro and GDAL read it) and convert it if you must: ogr2ogr -f 'ESRI Shapefile' "
    "{shp} {gpkg}"
)
"""Why ``.shp`` is refused, with the way to get one (issue 16: refuse with the reason)."""


def _driver_for(out: Path) -> str:
    if out.suffix.lower() == ".shp":
        gpkg = out.with_suffix(".gpkg")
        raise VectorizeError(SHAPEFILE_REFUSED.format(gpkg=gpkg, shp=out))
    driver = DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise VectorizeError(
            f"cannot tell the vector format of {out}: use one of the extensions "
            f"{', '.join(DRIVERS)} (GeoPackage, GeoJSON, FlatGeobuf, GeoParquet)"
        )
    return driver


def _check_options(
    *,
    connectivity: int,
    block: int,
    min_area: float | None,
    simplify: float | None,
    class_ids: Sequence[int] | None,
    layer: str | None,
) -> None:
    if connectivity not in (4, 8):
        raise VectorizeError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if not isinstance(block, int) or block < 1:
        raise VectorizeError(f"block must be a positive number of pixels, got {block!r}")
    for name, value in (("min_area", min_area), ("simplify", simplify)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise VectorizeError(f"{name} must be a number ≥ 0 (metres), got {value!r}")
    bad = [
        i
        for i in class_ids or ()
        if not isinstance(i, int | np.integer) or not 0 <= i < NODATA_CLASS
    ]
    if bad:
        raise VectorizeError(f"class_ids must be integers in 0..254, got {bad}")
    if layer is not None and not layer.strip():
        raise VectorizeError("layer must be a non-empty name; leave it out to use the raster stem")


def _open_raster(raster: str | os.PathLike[str]) -> Any:
    return open_class_raster(
        raster,
        command="vectorize",
        crs_reason="so polygons cannot be placed",
        uint8=True,
        error=VectorizeError,
    )


def _grid_for(
    ds: Any,
    *,
    classes: SchemeSource | None,
    class_ids: Sequence[int] | None,
    block: int,
    connectivity: int,
    confidence: bool = False,
    source: str | None = None,
    date: str | None = None,
) -> _Grid:
    import pyproj

    selected = np.zeros(256, dtype=bool)
    selected[list(class_ids) if class_ids is not None else slice(0, NODATA_CLASS)] = True
    nodata = None
    if ds.nodata is not None and float(ds.nodata).is_integer() and 0 <= ds.nodata < 256:
        nodata = int(ds.nodata)
        selected[nodata] = False
    tags = {**ds.tags(1), **ds.tags()}  # the writer puts geoseg's own tags on band 1
    crs = pyproj.CRS.from_user_input(ds.crs.to_wkt())
    geod = crs.get_geod() or pyproj.Geod(ellps="WGS84")
    return _Grid(
        shape=(ds.height, ds.width),
        block=block,
        transform=ds.transform,
        crs=ds.crs,
        selected=selected,
        names=_class_names(ds, classes),
        geographic=crs.is_geographic,
        unit_m=1.0 if crs.is_geographic else crs.axis_info[0].unit_conversion_factor,
        ellipsoid=(geod.a, geod.es),
        connectivity=connectivity,
        nodata=nodata,
        confidence=confidence,
        source=source if source is not None else tags.get(SOURCE_TAG),
        date=_check_date(date if date is not None else tags.get(DATE_TAG), ds.name),
    )


def _check_date(date: str | None, raster: str) -> str | None:
    """An ISO 8601 date or date-time, as given; None if unknown."""
    if date is None or not str(date).strip():
        return None
    try:
        datetime.fromisoformat(str(date))
    except ValueError as err:
        raise VectorizeError(
            f"date {date!r} (for {raster}) is not an ISO 8601 date; give it as YYYY-MM-DD"
        ) from err
    return str(date)


def _open_confidence(path: str | os.PathLike[str], ds: Any) -> Any:
    """Open a confidence raster that lies on the class raster's grid."""
    try:
        conf = rasterio.open(path)
    except RasterioError as err:
        raise RasterReadError(
            f"cannot open confidence raster {path}: {err}; check the path"
        ) from err
    same = (conf.width, conf.height, conf.transform, conf.crs) == (
        ds.width,
        ds.height,
        ds.transform,
        ds.crs,
    )
    if conf.count != 1 or not same:
        conf.close()
        raise VectorizeError(
            f"confidence raster {path} must be one band on the class raster's grid "
            f"({ds.width}×{ds.height}, same transform and CRS): pass the *_confidence.tif "
            "that predict wrote beside the class raster"
        )
    return conf


def _class_names(ds: Any, classes: SchemeSource | None) -> tuple[str, ...]:
    names = class_names(ds, classes)
    return tuple(names.get(i, f"class_{i}") for i in range(NODATA_CLASS))
