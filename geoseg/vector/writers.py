"""Format writers: GeoPackage, FlatGeobuf, GeoJSON (RFC 7946), GeoParquet, all streamed."""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from numpy.typing import NDArray

from geoseg.atomic import atomic_path, remove_quietly
from geoseg.errors import OutputError, VectorizeError
from geoseg.io.writer import output_error
from geoseg.vector.grid import METRES_PER_DEGREE, Geoms, _Grid

if TYPE_CHECKING:  # pyarrow is imported where it is used: the GeoJSON path never needs it
    import pyarrow as pa

log = logging.getLogger(__name__)

_PARQUET_ROWS = 65_536  # rows per Parquet row group; blocks release far fewer at a time


@dataclass(frozen=True, slots=True)
class _Batch:
    """Finished polygons written together, in output coordinates, with their attributes."""

    geoms: Geoms
    classes: NDArray[np.uint8]
    areas: NDArray[np.float64]  # m²
    perimeters: NDArray[np.float64]  # m
    confidence: NDArray[np.float64]  # mean confidence (NaN: none); empty without a raster


# --- writing ---------------------------------------------------------------------------


def _output_format(driver: str, grid: _Grid) -> str:
    """Pick the writer; GeoJSON crossing the antimeridian goes through GDAL, which cuts it."""
    if driver == "GeoJSON" and _outside_plus_minus_180(grid):
        return "GeoJSON-GDAL"
    return driver


def _outside_plus_minus_180(grid: _Grid) -> bool:
    from rasterio.warp import transform_bounds

    t, (h, w) = grid.transform, grid.shape
    xs = [t.c + t.a * c + t.b * r for r, c in ((0, 0), (0, w), (h, 0), (h, w))]
    ys = [t.f + t.d * c + t.e * r for r, c in ((0, 0), (0, w), (h, 0), (h, w))]
    west, _, east, _ = transform_bounds(
        grid.crs, "EPSG:4326", min(xs), min(ys), max(xs), max(ys), densify_pts=21
    )
    return bool(west > east or west < -180 or east > 180)


def _wgs84(grid: _Grid) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """Map coordinates to lon/lat, rounded to a thousandth of a pixel (RFC 7946 output)."""
    import pyproj

    transformer = pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(grid.crs.to_wkt()), "EPSG:4326", always_xy=True
    )
    digits = _geojson_digits(grid)

    def to_wgs84(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        out = np.round(np.column_stack([lon, lat]), digits)
        if not np.isfinite(out).all():
            raise VectorizeError(
                "some polygons cannot be reprojected to EPSG:4326 for GeoJSON; "
                "write .gpkg, .fgb or .parquet instead"
            )
        return out

    return to_wgs84


def _geojson_digits(grid: _Grid) -> int:
    """Decimals of a degree that resolve a thousandth of a pixel."""
    pixel = grid.pixel_size * (1.0 if grid.geographic else grid.unit_m / METRES_PER_DEGREE)
    return int(min(15, max(6, math.ceil(-math.log10(pixel / 1000)))))


class _Source:
    """Batches for a writer; keeps an error raised while producing or converting them.

    GDAL pulls batches through Arrow's C stream, which turns any Python error
    into a generic one; :func:`_write_atomic` re-raises the original instead.
    """

    def __init__(self, batches: Iterable[_Batch]) -> None:
        self.batches = batches
        self.error: BaseException | None = None

    def each(self, convert: Callable[[_Batch], Any]) -> Iterator[Any]:
        try:
            for batch in self.batches:
                yield convert(batch)
        except BaseException as err:
            self.error = err
            raise


def _write_atomic(
    batches: Iterable[_Batch],
    out: Path,
    *,
    fmt: str,
    layer: str,
    grid: _Grid,
    finish: Callable[[Path], object] | None = None,
    staged: bool = False,
) -> None:
    """Write under a temporary name, rename when complete, delete it on any failure.

    ``finish(tmp)`` runs on the complete temporary file just before the rename
    (the GeoPackage style goes in there, so data and style appear together).
    ``staged``: ``out`` is already a temporary name the caller will rename;
    it is written in place (a temporary of a temporary is a name no later run
    would recognize) and deleted on failure.
    """
    source = _Source(batches)
    writer = {"GeoJSON": _write_geojson, "Parquet": _write_parquet}.get(fmt, _write_ogr)
    try:
        with contextlib.nullcontext(out) if staged else atomic_path(out) as tmp:
            try:
                writer(source, tmp, fmt=fmt, layer=layer, grid=grid)
                if finish is not None:
                    finish(tmp)
            except BaseException:
                if staged:
                    remove_quietly(tmp)
                raise
    except BaseException as err:
        if source.error is not None:
            raise source.error  # noqa: B904 - the producer's own error, cause intact
        if isinstance(err, Exception) and not isinstance(err, OutputError):
            raise output_error(out, err) from err
        raise


def columns(grid: _Grid) -> list[str]:
    """Attribute columns written for this grid, in order (geometry comes last)."""
    names = ["class_id", "class_name", "area_m2", "perimeter_m"]
    names += ["mean_confidence"] if grid.confidence else []
    names += ["source"] if grid.source is not None else []
    names += ["date"] if grid.date is not None else []
    return names


def _schema(grid: _Grid, *, ogr: bool) -> pa.Schema:
    import pyarrow as pa

    wkb = {"ARROW:extension:name": "geoarrow.wkb"} if ogr else None  # how GDAL finds geometry
    types = {
        "class_id": pa.int32(),
        "class_name": pa.string(),
        "area_m2": pa.float64(),
        "perimeter_m": pa.float64(),
        "mean_confidence": pa.float64(),
        "source": pa.string(),
        "date": pa.string(),
    }
    fields = [pa.field(n, types[n], nullable=n == "mean_confidence") for n in columns(grid)]
    schema = pa.schema([*fields, pa.field("geometry", pa.binary(), nullable=False, metadata=wkb)])
    return schema if ogr else schema.with_metadata({"geo": json.dumps(_geo_metadata(grid))})


def _record_batch(
    batch: _Batch, *, schema: pa.Schema, names: pa.Array, grid: _Grid
) -> pa.RecordBatch:
    import pyarrow as pa

    n = len(batch.classes)
    arrays = [
        pa.array(batch.classes.astype(np.int32)),
        names.take(pa.array(batch.classes)),
        pa.array(batch.areas),
        pa.array(batch.perimeters),
    ]
    if grid.confidence:
        arrays.append(pa.array(batch.confidence, mask=np.isnan(batch.confidence)))
    for value in (grid.source, grid.date):
        if value is not None:
            arrays.append(pa.array([value] * n, pa.string()))
    arrays.append(pa.array(shapely.to_wkb(batch.geoms), pa.binary()))
    return pa.record_batch(arrays, schema=schema)


def _geometry_type(grid: _Grid) -> str:
    return "Polygon" if grid.connectivity == 4 else "MultiPolygon"


def _write_ogr(source: _Source, tmp: Path, *, fmt: str, layer: str, grid: _Grid) -> None:
    import pyarrow as pa
    import pyogrio

    options = {
        "GPKG": {"SPATIAL_INDEX": "YES"},
        "FlatGeobuf": {"SPATIAL_INDEX": "YES"},
        "GeoJSON-GDAL": {
            "RFC7946": "YES",  # reprojects to EPSG:4326, cuts at ±180°
            "COORDINATE_PRECISION": str(_geojson_digits(grid)),
        },
    }[fmt]
    schema = _schema(grid, ogr=True)
    convert = partial(
        _record_batch, schema=schema, names=pa.array(grid.names, pa.string()), grid=grid
    )
    reader = pa.RecordBatchReader.from_batches(schema, source.each(convert))
    pyogrio.write_arrow(
        reader,
        str(tmp),
        layer=layer,
        driver=fmt.removesuffix("-GDAL"),
        geometry_name="geometry",
        geometry_type=_geometry_type(grid),
        crs=grid.crs.to_wkt(),
        layer_options=options,
    )


def _write_geojson(source: _Source, tmp: Path, *, fmt: str, layer: str, grid: _Grid) -> None:
    """RFC 7946 FeatureCollection, streamed (GDAL's writer is ~5x slower here).

    Batches come in pixel space; :func:`geoseg.vector.geojson.write_geometries`
    maps, reprojects, orients and prints their coordinates.
    """
    from geoseg.vector.geojson import write_geometries

    names = [json.dumps(n) for n in grid.names]
    write = partial(
        write_geometries,
        transform=grid.transform,
        to_wgs84=_wgs84(grid),
        digits=_geojson_digits(grid),
        multi=grid.connectivity == 8,
    )
    with open(tmp, "wb") as f:
        f.write(
            f'{{"type": "FeatureCollection", "name": {json.dumps(layer)}, "features": [\n'.encode()
        )
        first = True

        def write_batch(batch: _Batch) -> None:  # inside source.each: its errors stay its own
            nonlocal first
            heads = _geojson_heads(batch, names=names, grid=grid)
            if heads:
                f.write(b"" if first else b",\n")
                write(f, batch.geoms, heads)
                first = False

        for _ in source.each(write_batch):
            pass
        f.write(b"\n]}\n")


def _geojson_heads(batch: _Batch, *, names: list[str], grid: _Grid) -> list[bytes]:
    """Each feature's text up to its geometry: type and properties."""
    tail = "".join(
        f", {json.dumps(k)}: {json.dumps(v)}"
        for k, v in (("source", grid.source), ("date", grid.date))
        if v is not None
    )
    rows = zip(batch.classes.tolist(), batch.areas.tolist(), batch.perimeters.tolist(), strict=True)
    if grid.confidence:
        conf = ["null" if c != c else repr(c) for c in batch.confidence.tolist()]
        tails = [f', "mean_confidence": {c}{tail}' for c in conf]
    else:
        tails = [tail] * len(batch.classes)
    return [
        f'{{"type": "Feature", "properties": {{"class_id": {c}, "class_name": {names[c]}, '
        f'"area_m2": {a!r}, "perimeter_m": {p!r}{t}}}, "geometry": '.encode()
        for (c, a, p), t in zip(rows, tails, strict=True)
    ]


def _geo_metadata(grid: _Grid) -> dict[str, Any]:
    """GeoParquet 1.1 ``geo`` metadata (CRS as PROJJSON)."""
    import pyproj

    crs = pyproj.CRS.from_user_input(grid.crs.to_wkt())
    column = {
        "encoding": "WKB",
        "geometry_types": [_geometry_type(grid)],
        "crs": crs.to_json_dict(),
        "orientation": "counterclockwise",
    }
    return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}


def _write_parquet(source: _Source, tmp: Path, *, fmt: str, layer: str, grid: _Grid) -> None:
    """GeoParquet through pyarrow (GDAL's Parquet driver is not in pyogrio's wheels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(grid, ogr=False)
    convert = partial(
        _record_batch, schema=schema, names=pa.array(grid.names, pa.string()), grid=grid
    )
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        held: list[pa.RecordBatch] = []
        for batch in source.each(convert):
            held.append(batch)
            if sum(b.num_rows for b in held) >= _PARQUET_ROWS:
                writer.write_table(pa.Table.from_batches(held, schema=schema))
                held = []
        if held:
            writer.write_table(pa.Table.from_batches(held, schema=schema))
