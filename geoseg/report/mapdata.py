"""Polygons made ready for a small offline web map: capped, simplified, in EPSG:4326.

A scene can have hundreds of thousands of polygons; a report should open in a
second. So the map keeps the ``max_features`` largest polygons and, when the
kept ones still have more than ``max_vertices`` vertices, simplifies them as
one coverage (neighbours keep sharing their edges: no slivers, no overlaps).
Both are said under the map; the polygon file itself holds the exact shapes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from geoseg.errors import InputError, RasterReadError
from geoseg.report.images import MAX_WIDTH, Image, auto_color, class_colors, fit_shape
from geoseg.schemes import NODATA_CLASS, ClassInfo

MAX_FEATURES = 5000
"""Default cap on the polygons drawn on a report map (the largest are kept)."""

MAX_VERTICES = 200_000
"""Above this many vertices the drawn polygons are simplified (when not told how)."""

_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class LegendEntry:
    """One class on the map: its scheme entry, polygon count and area (all polygons)."""

    cls: ClassInfo
    features: int
    area_m2: float


@dataclass(frozen=True)
class Overlay:
    """The class raster as a paletted PNG in Web Mercator, and its corners in lon/lat."""

    image: Image
    bounds: tuple[float, float, float, float]  # west, south, east, north (degrees)


@dataclass(frozen=True)
class MapData:
    """Everything a report map draws."""

    geojson: str  # FeatureCollection, EPSG:4326
    features: int  # drawn
    source_features: int  # in the file
    bounds: tuple[float, float, float, float]  # west, south, east, north (degrees)
    legend: tuple[LegendEntry, ...]
    notes: tuple[str, ...] = field(default=())
    footprint: dict[str, Any] | None = None  # GeoJSON Polygon, EPSG:4326
    overlay: Overlay | None = None


def build_map_data(
    vectors: str | os.PathLike[str],
    *,
    layer: str | None = None,
    scheme: Sequence[ClassInfo] | None = None,
    classes_raster: str | os.PathLike[str] | None = None,
    overlay: bool = True,
    max_features: int = MAX_FEATURES,
    simplify_m: float | None = None,
    max_vertices: int = MAX_VERTICES,
) -> MapData:
    """Read, cap, simplify and reproject polygons for a report map.

    Parameters
    ----------
    vectors
        Polygons with a ``class_id`` column (GPKG, GeoJSON, FlatGeobuf, GeoParquet
        or any other OGR format), such as ``geoseg vectorize`` writes.
    layer
        Layer to read [the first].
    scheme
        Class names and colors; default: the ``classes_raster``'s, else the
        ``class_name`` column with generated colors.
    classes_raster
        The class raster the polygons came from: its footprint is drawn, and
        with ``overlay`` it is drawn under the polygons.
    overlay
        Draw ``classes_raster`` as an image under the polygons.
    max_features
        Draw at most this many polygons, the largest by area.
    simplify_m
        Simplification tolerance in metres; ``None``: simplify only when the
        drawn polygons have more than ``max_vertices`` vertices; ``0``: never.

    Raises
    ------
    InputError
        The file cannot be read, has no CRS or no ``class_id`` column, or a limit is not positive.
    """
    if max_features < 1 or max_vertices < 1:
        raise InputError(
            f"max_features and max_vertices must be positive, got {max_features}, {max_vertices}"
        )
    gdf = _read(vectors, layer)
    if scheme is None and classes_raster is not None:
        scheme = _raster_scheme(classes_raster) or None
    legend = _legend(gdf, scheme)
    source_features = len(gdf)
    notes: list[str] = []
    gdf = _cap(gdf, max_features, notes)
    gdf = _simplify(gdf, simplify_m, max_vertices, notes)
    wgs = gdf.to_crs("EPSG:4326")
    geojson = _feature_collection(wgs, {e.cls.id: e.cls.name for e in legend})
    bounds = tuple(float(v) for v in wgs.total_bounds) if len(wgs) else None
    footprint = ov = None
    if classes_raster is not None:
        footprint, fp_bounds = raster_footprint(classes_raster)
        bounds = _union(bounds, fp_bounds)
        if overlay:
            # every class of the raster gets its color, not only those the polygons show
            colors = {c.id: c for c in _raster_scheme(classes_raster) or ()}
            colors.update({c.id: c for c in scheme or ()})
            colors.update({e.cls.id: e.cls for e in legend})
            ov = class_overlay(classes_raster, list(colors.values()))
    if bounds is None:
        raise InputError(
            f"{vectors} has no polygons and no classes_raster was given, so there is "
            "nothing to put on a map; pass classes_raster to show the footprint"
        )
    return MapData(
        geojson=geojson,
        features=len(wgs),
        source_features=source_features,
        bounds=(bounds[0], bounds[1], bounds[2], bounds[3]),
        legend=legend,
        notes=tuple(notes),
        footprint=footprint,
        overlay=ov,
    )


def _read(vectors: str | os.PathLike[str], layer: str | None) -> Any:
    import pyogrio

    path = os.fspath(vectors)
    try:
        if path.lower().endswith(".parquet"):  # GeoParquet: GDAL's Parquet driver is optional
            import geopandas

            gdf = geopandas.read_parquet(path)
        else:
            from geoseg.io.styles import data_layer

            gdf = pyogrio.read_dataframe(path, layer=data_layer(path, layer))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as err:
        raise InputError(f"cannot read polygons from {path}: {err}; check the path") from err
    except ValueError as err:  # geopandas: not a GeoParquet file
        raise InputError(
            f"cannot read polygons from {path}: {err}; pass a GeoParquet file"
        ) from err
    if "class_id" not in gdf.columns:
        raise InputError(
            f"{path} has no 'class_id' column (columns: {', '.join(map(str, gdf.columns))}); "
            "pass polygons written by geoseg vectorize"
        )
    if gdf.crs is None:
        raise InputError(f"{path} has no CRS; assign one (ogr2ogr -a_srs EPSG:…) first")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    gdf["class_id"] = gdf["class_id"].astype(np.int64)
    if "area_m2" not in gdf.columns:
        if gdf.crs.is_geographic:
            gdf["area_m2"] = gdf.geometry.to_crs(gdf.estimate_utm_crs()).area
        else:
            gdf["area_m2"] = gdf.geometry.area * float(gdf.crs.axis_info[0].unit_conversion_factor)
    return gdf.reset_index(drop=True)


def _raster_scheme(path: str | os.PathLike[str]) -> tuple[ClassInfo, ...]:
    from geoseg.io.classraster import read_scheme

    return read_scheme(os.fspath(path))


def _legend(gdf: Any, scheme: Sequence[ClassInfo] | None) -> tuple[LegendEntry, ...]:
    known = {c.id: c for c in scheme or ()}
    names: dict[int, str] = {}
    if "class_name" in gdf.columns:
        first = gdf.drop_duplicates("class_id")
        names = {
            int(i): str(n) for i, n in zip(first["class_id"], first["class_name"], strict=True)
        }
    out = []
    for cid, group in gdf.groupby("class_id", sort=True):
        cls = known.get(int(cid)) or ClassInfo(
            int(cid), names.get(int(cid)) or f"class_{cid}", auto_color(int(cid))
        )
        out.append(LegendEntry(cls, len(group), float(group["area_m2"].sum())))
    return tuple(out)


def _cap(gdf: Any, max_features: int, notes: list[str]) -> Any:
    if len(gdf) <= max_features:
        return gdf
    keep = gdf.sort_values("area_m2", ascending=False, kind="stable").iloc[:max_features]
    left = 1 - keep["area_m2"].sum() / max(gdf["area_m2"].sum(), 1e-300)
    notes.append(
        f"Showing the {max_features:,} largest of {len(gdf):,} polygons; the "
        f"{len(gdf) - max_features:,} left out cover {100 * left:.2f} % of the polygon area."
    )
    return keep.sort_index()


def _simplify(gdf: Any, simplify_m: float | None, max_vertices: int, notes: list[str]) -> Any:
    if not len(gdf) or simplify_m == 0:
        return gdf
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    vertices = int(shapely.get_num_coordinates(geoms).sum())
    geographic = bool(gdf.crs.is_geographic)
    unit = _METRES_PER_DEGREE if geographic else float(gdf.crs.axis_info[0].unit_conversion_factor)
    if simplify_m is None:
        if vertices <= max_vertices:
            return gdf
        b = gdf.total_bounds
        simplify_m = max(b[2] - b[0], b[3] - b[1]) * unit / 1000  # ~ a screen pixel at full view
    if simplify_m < 0 or not math.isfinite(simplify_m):
        raise InputError(f"simplify_m must be a non-negative number of metres, got {simplify_m}")
    simple = coverage_simplify(geoms, simplify_m / unit)
    after = int(shapely.get_num_coordinates(simple).sum())
    notes.append(
        f"Polygons simplified for display with a {simplify_m:,.0f} m tolerance, keeping shared "
        f"edges shared ({vertices:,} → {after:,} vertices); the polygon file has the exact shapes."
    )
    out = gdf.copy()
    out.geometry = simple
    return out


def coverage_simplify(geoms: NDArray[np.object_], tolerance: float) -> NDArray[np.object_]:
    """Simplify polygons as one coverage, so neighbours keep sharing their edges.

    Polygons traced from a raster have their vertices on a grid, but GDAL drops
    the vertices on straight runs, so a long edge on one side can meet several
    short ones on the other. A coverage needs the same vertices on both sides:
    when the vertices do lie on a grid, every edge is first cut at each grid step.

    Examples
    --------
    >>> import shapely
    >>> a = shapely.box(0, 0, 2, 2)
    >>> b = shapely.Polygon([(2, 0), (3, 0), (3, 1), (4, 1), (4, 2), (2, 2), (2, 1)])
    >>> out = coverage_simplify(np.array([a, b], dtype=object), 1.5)
    >>> bool(shapely.coverage_is_valid(out)), [round(g.area, 3) > 0 for g in out]
    (True, [True, True])
    """
    step = grid_step(geoms)
    dense = shapely.segmentize(geoms, step) if step else geoms
    out = np.asarray(shapely.coverage_simplify(dense, tolerance), dtype=object)
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad], method="structure", keep_collapsed=False)
    return out


def grid_step(geoms: NDArray[np.object_]) -> float | None:
    """The pixel size when every vertex lies on a common square grid, else ``None``.

    The grid step is the smallest vertex step, or a fraction of it down to 1/6.

    Examples
    --------
    >>> import shapely
    >>> grid_step(np.array([shapely.box(30, 60, 90, 150)], dtype=object))
    30.0
    >>> grid_step(np.array([shapely.box(0, 0, 1.3, 2.9)], dtype=object)) is None
    True
    """
    xy = shapely.get_coordinates(geoms)
    if len(xy) < 2:
        return None
    steps = np.abs(np.diff(xy, axis=0))
    steps = steps[steps > 0]
    if not steps.size:
        return None
    rel0 = xy - xy[0]
    for k in range(1, 7):  # the smallest step may span a few pixels: try its fractions
        step = float(steps.min()) / k
        rel = rel0 / step
        if np.abs(rel - np.round(rel)).max() <= 1e-6:
            return step
    return None


def _feature_collection(wgs: Any, names: dict[int, str]) -> str:
    geoms = shapely.transform(np.asarray(wgs.geometry.values, dtype=object), _round6)
    texts = shapely.to_geojson(geoms)
    parts = []
    for cid, area, text in zip(wgs["class_id"], wgs["area_m2"], texts, strict=True):
        props = {
            "class_id": int(cid),
            "class_name": names.get(int(cid), f"class_{cid}"),
            "area_m2": round(float(area), 2),
        }
        parts.append(f'{{"type":"Feature","properties":{json.dumps(props)},"geometry":{text}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


def _round6(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.round(xy, 6)  # ~0.1 m: plenty for a screen, a third of the bytes


def _union(
    a: tuple[float, ...] | None, b: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    if a is None:
        return b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def raster_footprint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], tuple[float, float, float, float]]:
    """A raster's outline as a GeoJSON polygon in EPSG:4326, and its lon/lat bounds."""
    from pyproj import Transformer

    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise InputError(f"{path} has no CRS, so it cannot be placed on a map")
            h, w, t, crs = ds.height, ds.width, ds.transform, ds.crs
    except RasterioError as err:
        raise RasterReadError(f"cannot read raster {path}: {err}; check the path") from err
    n = 16  # points per side: edges curve in lon/lat
    s = np.linspace(0, 1, n, endpoint=False)
    cols = np.concatenate([s * w, np.full(n, w), w - s * w, np.zeros(n), [0.0]])
    rows = np.concatenate([np.zeros(n), s * h, np.full(n, h), h - s * h, [0.0]])
    xs, ys = t * (cols, rows)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    ring = [[round(float(x), 6), round(float(y), 6)] for x, y in zip(lon, lat, strict=True)]
    bounds = (float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat)))
    return {"type": "Polygon", "coordinates": [ring]}, bounds


def class_overlay(
    path: str | os.PathLike[str], scheme: Sequence[ClassInfo], *, max_width: int = MAX_WIDTH
) -> Overlay:
    """The class raster warped to Web Mercator (nearest) as a PNG, nodata transparent.

    Leaflet stretches an image overlay linearly between its corners in Web
    Mercator, so warping to EPSG:3857 first puts every pixel where it belongs.
    """
    from pyproj import Transformer
    from rasterio.warp import calculate_default_transform, reproject

    try:
        with rasterio.open(path) as ds:
            shape = fit_shape((ds.height, ds.width), 2 * max_width)
            ids = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
            nodata = ds.nodata
            src_t = ds.transform * ds.transform.scale(ds.width / shape[1], ds.height / shape[0])
            src_crs, bounds = ds.crs, ds.bounds
    except RasterioError as err:
        raise RasterReadError(f"cannot read class raster {path}: {err}; check the path") from err
    ids = np.where(ids == nodata, NODATA_CLASS, ids) if nodata is not None else ids
    ids = ids.astype(np.uint8)
    dst_t, w, h = calculate_default_transform(src_crs, "EPSG:3857", shape[1], shape[0], *bounds)
    rows, cols = fit_shape((int(h), int(w)), max_width)
    dst_t = dst_t * dst_t.scale(int(w) / cols, int(h) / rows)
    out = np.full((rows, cols), NODATA_CLASS, dtype=np.uint8)
    reproject(
        ids, out, src_transform=src_t, src_crs=src_crs, dst_transform=dst_t,
        dst_crs="EPSG:3857", resampling=Resampling.nearest, src_nodata=NODATA_CLASS,
        dst_nodata=NODATA_CLASS,
    )  # fmt: skip
    image = _png_with_transparency(out, class_colors(scheme))
    west, north = dst_t * (0, 0)
    east, south = dst_t * (cols, rows)
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform([west, east], [south, north])
    return Overlay(image, (float(lon0), float(lat0), float(lon1), float(lat1)))


def _png_with_transparency(ids: NDArray[np.uint8], palette: bytes) -> Image:
    import io

    from PIL import Image as PILImage

    img = PILImage.frombytes("P", (ids.shape[1], ids.shape[0]), np.ascontiguousarray(ids).tobytes())
    img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, transparency=NODATA_CLASS)
    return Image(buf.getvalue(), "image/png", img.width, img.height)
