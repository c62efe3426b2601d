"""Tests for geoseg.vectorize: block-wise polygons equal a whole-raster polygonization."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
from rasterio.transform import Affine
from scipy import ndimage

from geoseg.errors import OutputError, RasterReadError, VectorizeError
from geoseg.schemes import ClassInfo
from geoseg.vector import VectorizeResult, vectorize

UTM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_500_000.0)
CLASSES = [
    {"id": 0, "name": "water", "color": "#1f78b4"},
    {"id": 1, "name": "forest", "color": "#33a02c"},
    {"id": 2, "name": "crop", "color": "#ffff99"},
    {"id": 3, "name": 'built "urban"', "color": "#e31a1c"},  # quotes must survive GeoJSON
    {"id": 4, "name": "bare", "color": "#b15928"},
]
NAMES = {c["id"]: c["name"] for c in CLASSES}


# --- synthetic class rasters ------------------------------------------------------------


def class_map(seed: int, shape: tuple[int, int] = (257, 300)) -> np.ndarray:
    """Blobs of classes 0..4 with salt noise and nodata (a rectangle and scattered pixels)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((5, *shape)), sigma=(0, 2.5, 2.5))
    cls = field.argmax(0).astype(np.uint8)
    noise = rng.random(shape) < 0.04
    cls[noise] = rng.integers(0, 5, int(noise.sum()))
    cls[rng.random(shape) < 0.01] = 255
    cls[20:45, 90:140] = 255
    return cls


def write_raster(
    path: Path,
    cls: np.ndarray,
    *,
    crs: str = "EPSG:32612",
    transform: Affine = UTM,
    nodata: int | None = 255,
    tags: bool = True,
    count: int = 1,
) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cls.shape[1],
        height=cls.shape[0],
        count=count,
        dtype="uint8",
        nodata=nodata,
        crs=crs,
        transform=transform,
    ) as ds:
        for band in range(1, count + 1):
            ds.write(cls, band)
        if tags:
            ds.update_tags(GEOSEG_CLASSES=json.dumps(CLASSES))
    return path


@pytest.fixture(scope="module")
def utm_reference(rasters) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    _, cls = rasters["utm"]
    return {c: whole_raster(cls, UTM, c) for c in (4, 8)}


@pytest.fixture(scope="module")
def rasters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    d = tmp_path_factory.mktemp("rasters")
    cls = class_map(7)
    geo = class_map(11, (150, 170))
    rotated = Affine(
        30 * np.cos(0.5),
        -30 * np.sin(0.5),
        500_000.0,
        -30 * np.sin(0.5),
        -30 * np.cos(0.5),
        4_500_000.0,
    )
    return {
        "utm": (write_raster(d / "utm.tif", cls), cls),
        "geo": (
            write_raster(
                d / "geo.tif",
                geo,
                crs="EPSG:4326",
                transform=Affine(0.001, 0.0, -111.2, 0.0, -0.001, 46.3),
            ),
            geo,
        ),
        "rotated": (
            write_raster(d / "rotated.tif", cls[:120, :140], transform=rotated),
            cls[:120, :140],
        ),
    }


# --- helpers ------------------------------------------------------------------------------


def whole_raster(
    cls: np.ndarray, transform: Affine, connectivity: int, nodata: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one rasterio.features.shapes call on the whole raster."""
    found = list(
        rasterio.features.shapes(
            cls, mask=cls != nodata, connectivity=connectivity, transform=transform
        )
    )
    geoms = np.array([shapely.geometry.shape(g) for g, _ in found], dtype=object)
    if connectivity == 8:  # GDAL's 8-connected rings touch themselves: make them valid
        geoms = shapely.make_valid(geoms)
    return geoms, np.array([int(v) for _, v in found])


def by_class_area_centroid(geoms: np.ndarray, classes: np.ndarray) -> np.ndarray:
    c = shapely.centroid(geoms)
    return np.lexsort(
        (
            shapely.get_y(c).round(6),
            shapely.get_x(c).round(6),
            shapely.area(geoms).round(6),
            classes,
        )
    )


def assert_same_polygons(
    ours: gpd.GeoDataFrame, ref_geoms: np.ndarray, ref_classes: np.ndarray
) -> None:
    geoms, classes = np.asarray(ours.geometry.values), ours["class_id"].to_numpy()
    assert np.array_equal(np.bincount(classes, minlength=5), np.bincount(ref_classes, minlength=5))
    a, b = by_class_area_centroid(geoms, classes), by_class_area_centroid(ref_geoms, ref_classes)
    assert np.array_equal(classes[a], ref_classes[b])
    assert shapely.equals(geoms[a], ref_geoms[b]).all()


def pixel_counts(cls: np.ndarray) -> np.ndarray:
    return np.bincount(cls[cls != 255], minlength=5)


# --- the invariant: same polygons as a whole-raster polygonization ----------------------


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("block", [32, 50, 64, 4096])
def test_blocks_give_the_whole_raster_polygons(
    rasters, utm_reference, tmp_path, block, connectivity
):
    path, cls = rasters["utm"]
    r = vectorize(path, tmp_path / "out.gpkg", block=block, connectivity=connectivity)
    gdf = gpd.read_file(r.path)
    ref_geoms, ref_classes = utm_reference[connectivity]

    assert_same_polygons(gdf, ref_geoms, ref_classes)
    assert shapely.is_valid(gdf.geometry.values).all()
    assert set(gdf["class_id"]) <= set(range(5))  # never nodata
    expected_type = "Polygon" if connectivity == 4 else "MultiPolygon"
    assert set(gdf.geom_type) == {expected_type}
    area = gdf.groupby("class_id")["area_m2"].sum().to_numpy()
    np.testing.assert_allclose(area, pixel_counts(cls) * 900.0, rtol=1e-9)
    np.testing.assert_allclose(gdf.area.to_numpy(), gdf["area_m2"].to_numpy(), rtol=1e-9)
    assert r.features == len(gdf) == len(ref_geoms)
    assert r.per_class_count == {c: int(n) for c, n in enumerate(np.bincount(ref_classes))}
    assert r.per_class_area_m2 == pytest.approx(
        {c: float(n) * 900.0 for c, n in enumerate(pixel_counts(cls))}, rel=1e-9
    )
    assert gdf["class_name"].tolist() == [NAMES[c] for c in gdf["class_id"]]
    assert r.layer == "utm"


@pytest.mark.parametrize("connectivity", [4, 8])
def test_tiny_blocks_on_a_checkerboard_join_corners_and_diagonals(tmp_path, connectivity):
    rng = np.random.default_rng(3)
    cls = rng.integers(0, 2, (23, 29)).astype(np.uint8)  # many corner-only contacts
    cls[rng.random(cls.shape) < 0.1] = 255
    path = write_raster(tmp_path / "checker.tif", cls)
    for block in (1, 3, 7):
        r = vectorize(path, tmp_path / f"b{block}.fgb", block=block, connectivity=connectivity)
        gdf = gpd.read_file(r.path)
        assert_same_polygons(gdf, *whole_raster(cls, UTM, connectivity))
        assert shapely.is_valid(gdf.geometry.values).all()


@pytest.mark.parametrize("connectivity", [4, 8])
def test_hole_across_a_block_corner_is_kept(tmp_path, connectivity):
    cls = np.zeros((40, 40), dtype=np.uint8)
    cls[12:29, 12:29] = 1  # a ring of class 1 around class 2, centred on the corner (20, 20)
    cls[15:26, 15:26] = 2
    path = write_raster(tmp_path / "ring.tif", cls)
    gdf = gpd.read_file(
        vectorize(path, tmp_path / "ring.gpkg", block=20, connectivity=connectivity).path
    )
    assert gdf["class_id"].value_counts().to_dict() == {0: 1, 1: 1, 2: 1}
    ring = shapely.get_parts(gdf.geometry[gdf["class_id"] == 1].iloc[0])
    assert len(ring) == 1 and shapely.get_num_interior_rings(ring[0]) == 1
    hole = shapely.Polygon(ring[0].interiors[0])
    assert shapely.equals(hole, gdf.geometry[gdf["class_id"] == 2].iloc[0])
    assert ring[0].area == pytest.approx((17 * 17 - 11 * 11) * 900.0, rel=1e-12)
    outer = shapely.get_parts(gdf.geometry[gdf["class_id"] == 0].iloc[0])[0]
    assert shapely.get_num_interior_rings(outer) == 1


def test_rotated_transform(rasters, tmp_path):
    path, cls = rasters["rotated"]
    with rasterio.open(path) as ds:
        transform = ds.transform
    r = vectorize(path, tmp_path / "rot.gpkg", block=50)
    gdf = gpd.read_file(r.path)
    ref_geoms, ref_classes = whole_raster(cls, transform, 4)
    assert np.array_equal(
        np.bincount(gdf["class_id"], minlength=5), np.bincount(ref_classes, minlength=5)
    )
    for c in range(5):
        ours = shapely.union_all(gdf.geometry.values[gdf["class_id"] == c])
        ref = shapely.union_all(ref_geoms[ref_classes == c])
        assert shapely.symmetric_difference(ours, ref).area < 1e-6 * ref.area
    np.testing.assert_allclose(
        gdf.groupby("class_id")["area_m2"].sum(), pixel_counts(cls) * 900.0, rtol=1e-9
    )
    assert shapely.is_valid(gdf.geometry.values).all()


# --- geographic rasters: areas on the ellipsoid -------------------------------------------


def test_geographic_area_is_geodesic(rasters, tmp_path):
    path, cls = rasters["geo"]
    r = vectorize(path, tmp_path / "geo.gpkg", block=64)
    gdf = gpd.read_file(r.path)
    assert gdf.crs.to_epsg() == 4326
    geod = pyproj.Geod(ellps="WGS84")
    # pixel-exact: each row's cell area (Geod on one cell) times its pixels of each class
    lats = 46.3 - 0.001 * np.arange(cls.shape[0] + 1)
    cell = [
        abs(geod.polygon_area_perimeter([0, 0.001, 0.001, 0], [a, a, b, b])[0])
        for a, b in zip(lats[:-1], lats[1:], strict=True)
    ]
    expected = [
        sum(cell[i] * np.count_nonzero(cls[i] == c) for i in range(len(cell))) for c in range(5)
    ]
    np.testing.assert_allclose(gdf.groupby("class_id")["area_m2"].sum(), expected, rtol=1e-6)
    # per polygon, pyproj's geodesic polygon area agrees
    big = gdf.nlargest(5, "area_m2")
    geodesic = [abs(geod.geometry_area_perimeter(g)[0]) for g in big.geometry]
    np.testing.assert_allclose(big["area_m2"], geodesic, rtol=1e-3)
    # and an equal-area projection centred on the raster agrees
    laea = gdf.to_crs("+proj=laea +lat_0=46.2 +lon_0=-111.1 +datum=WGS84")
    np.testing.assert_allclose(laea.area.sum(), gdf["area_m2"].sum(), rtol=1e-4)


def test_geographic_simplify_converts_metres_to_degrees(rasters, tmp_path):
    path, _ = rasters["geo"]
    plain = gpd.read_file(vectorize(path, tmp_path / "p.gpkg").path)
    simple = gpd.read_file(vectorize(path, tmp_path / "s.gpkg", simplify=150.0).path)
    assert shapely.coverage_is_valid(simple.geometry.values)
    assert (
        shapely.get_num_coordinates(simple.geometry.values).sum()
        < 0.8 * shapely.get_num_coordinates(plain.geometry.values).sum()
    )
    assert simple["area_m2"].sum() == pytest.approx(plain["area_m2"].sum(), rel=1e-6)


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".json", ".fgb", ".parquet"])
def test_formats_round_trip(rasters, tmp_path, ext):
    path, _ = rasters["utm"]
    r = vectorize(path, tmp_path / f"out{ext}", block=64, layer="landcover")
    reference = gpd.read_file(vectorize(path, tmp_path / "ref.gpkg", block=64).path)
    gdf = gpd.read_parquet(r.path) if ext == ".parquet" else gpd.read_file(r.path)

    assert len(gdf) == r.features == len(reference)
    assert list(gdf.columns) == ["class_id", "class_name", "area_m2", "perimeter_m", "geometry"]
    for column in ("class_id", "class_name", "area_m2"):
        assert sorted(gdf[column]) == sorted(reference[column])
    assert shapely.is_valid(gdf.geometry.values).all()
    exteriors = shapely.get_exterior_ring(gdf.geometry.values)
    assert shapely.is_ccw(exteriors).all()  # right-hand rule everywhere
    if ext in (".geojson", ".json"):
        assert gdf.crs.to_epsg() == 4326
        back = gdf.to_crs(32612)
        np.testing.assert_allclose(back.area.sum(), reference.area.sum(), rtol=1e-6)
        doc = json.loads(r.path.read_text(encoding="utf-8"))
        assert doc["type"] == "FeatureCollection" and doc["name"] == "landcover"
        assert "crs" not in doc  # RFC 7946 drops it
    else:
        assert gdf.crs.to_epsg() == 32612
        np.testing.assert_allclose(np.sort(gdf.area), np.sort(reference.area), rtol=1e-12)
    if ext == ".gpkg":
        import pyogrio

        assert pyogrio.list_layers(r.path)[0][0] == "landcover"


def test_geoparquet_metadata(rasters, tmp_path):
    path, _ = rasters["utm"]
    r = vectorize(path, tmp_path / "out.parquet", connectivity=8)
    geo = json.loads(pq.read_schema(r.path).metadata[b"geo"])
    column = geo["columns"]["geometry"]
    assert geo["version"].startswith("1.") and geo["primary_column"] == "geometry"
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["MultiPolygon"]
    assert pyproj.CRS.from_json_dict(column["crs"]).to_epsg() == 32612
    assert column["orientation"] == "counterclockwise"


def test_geojson_crossing_the_antimeridian_is_cut(tmp_path):
    cls = class_map(5, (60, 80))  # UTM 60N at ~45°N, 730–732 km east: straddles 180°
    transform = Affine(30.0, 0.0, 735_300.0, 0.0, -30.0, 5_000_000.0)
    path = write_raster(tmp_path / "dateline.tif", cls, crs="EPSG:32660", transform=transform)
    r = vectorize(path, tmp_path / "dateline.geojson")
    gdf = gpd.read_file(r.path)
    assert len(gdf) == r.features
    lon = shapely.get_coordinates(gdf.geometry.values)[:, 0]
    assert lon.min() < -179.9 and lon.max() > 179.9 and np.abs(lon).max() <= 180
    parts = shapely.bounds(shapely.get_parts(gdf.geometry.values))
    assert (parts[:, 2] - parts[:, 0]).max() < 1  # cut at ±180°, no part spans the globe
    assert (gdf.geom_type == "MultiPolygon").any()


# --- simplification -------------------------------------------------------------------------


@pytest.mark.parametrize("connectivity", [4, 8])
def test_simplify_keeps_a_valid_coverage(rasters, tmp_path, connectivity):
    path, _ = rasters["utm"]
    plain = gpd.read_file(
        vectorize(path, tmp_path / "p.gpkg", block=64, connectivity=connectivity).path
    )
    r = vectorize(path, tmp_path / "s.gpkg", block=64, simplify=45.0, connectivity=connectivity)
    simple = gpd.read_file(r.path)
    geoms = simple.geometry.values
    assert len(simple) == len(plain)
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)  # no gaps or overlaps, edges shared exactly
    assert (
        shapely.get_num_coordinates(geoms).sum()
        < 0.8 * shapely.get_num_coordinates(plain.geometry.values).sum()
    )
    # a vertex at every pixel corner makes the unsimplified polygons a strict coverage too
    before = shapely.coverage_union_all(shapely.segmentize(plain.geometry.values, 30.0))
    after = shapely.coverage_union_all(geoms)
    assert shapely.symmetric_difference(before, after).area < 1e-9 * before.area
    assert simple["area_m2"].sum() == pytest.approx(plain["area_m2"].sum(), rel=1e-9)
    np.testing.assert_allclose(simple.area, simple["area_m2"], rtol=1e-9)
    per_class = (
        simple.groupby("class_id")["area_m2"].sum() / plain.groupby("class_id")["area_m2"].sum()
    )
    assert np.abs(per_class - 1).max() < 0.05


def test_simplify_in_bands_keeps_a_valid_coverage(rasters, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module("geoseg.vector.geometry")
    monkeypatch.setattr(module, "_SIMPLIFY_BATCH", 700)  # forces bands and early batches
    path, cls = rasters["utm"]
    r = vectorize(path, tmp_path / "s.fgb", block=128, simplify=45.0)
    geoms = gpd.read_file(r.path).geometry.values
    assert shapely.is_valid(geoms).all() and shapely.coverage_is_valid(geoms)
    assert shapely.area(geoms).sum() == pytest.approx(pixel_counts(cls).sum() * 900.0, rel=1e-9)


# --- options --------------------------------------------------------------------------------


def test_class_ids(rasters, utm_reference, tmp_path):
    path, _ = rasters["utm"]
    _, ref_classes = utm_reference[4]
    r = vectorize(path, tmp_path / "some.gpkg", block=50, class_ids=[1, 3])
    assert set(r.per_class_count) == {1, 3}
    assert r.per_class_count == {c: int(np.count_nonzero(ref_classes == c)) for c in (1, 3)}


def test_class_names_from_argument_or_fallback(tmp_path):
    cls = class_map(2, (30, 30))
    bare = write_raster(tmp_path / "bare.tif", cls, tags=False)
    gdf = gpd.read_file(vectorize(bare, tmp_path / "a.gpkg").path)
    assert set(gdf["class_name"]) == {f"class_{c}" for c in range(5)}
    scheme = [ClassInfo(id=1, name="trees", color="#00ff00")]
    gdf = gpd.read_file(vectorize(bare, tmp_path / "b.gpkg", classes=scheme).path)
    assert set(gdf.loc[gdf["class_id"] == 1, "class_name"]) == {"trees"}
    assert set(gdf.loc[gdf["class_id"] == 2, "class_name"]) == {"class_2"}


def test_declared_nodata_is_never_a_polygon(tmp_path):
    cls = class_map(4, (40, 50))
    path = write_raster(tmp_path / "nd0.tif", cls, nodata=0)
    r = vectorize(path, tmp_path / "nd0.gpkg", block=16)
    assert 0 not in r.per_class_count and 255 not in r.per_class_count
    assert sum(r.per_class_area_m2.values()) == pytest.approx(
        np.count_nonzero((cls != 0) & (cls != 255)) * 900.0, rel=1e-12
    )


def test_areas_are_square_metres_in_a_feet_crs(tmp_path):
    cls = class_map(6, (40, 50))
    path = write_raster(
        tmp_path / "ft.tif",
        cls,
        crs="EPSG:2227",  # US survey feet
        transform=Affine(100.0, 0.0, 6_000_000.0, 0.0, -100.0, 2_000_000.0),
    )
    r = vectorize(path, tmp_path / "ft.gpkg", block=16)
    pixel_m2 = (100.0 * 1200 / 3937) ** 2
    assert r.per_class_area_m2 == pytest.approx(
        {c: float(n) * pixel_m2 for c, n in enumerate(pixel_counts(cls))}, rel=1e-9
    )


def test_empty_result_writes_an_empty_layer(tmp_path):
    path = write_raster(tmp_path / "empty.tif", np.full((20, 20), 255, dtype=np.uint8))
    for ext in (".gpkg", ".geojson", ".fgb", ".parquet"):
        r = vectorize(path, tmp_path / f"empty{ext}", connectivity=8, block=8)
        assert r.features == 0 and r.per_class_count == {} and r.path.exists()
        read = gpd.read_parquet if ext == ".parquet" else gpd.read_file
        assert len(read(r.path)) == 0


def test_progress_and_result(rasters, tmp_path):
    path, _ = rasters["utm"]
    calls: list[tuple[int, int]] = []
    r = vectorize(path, tmp_path / "p.gpkg", block=100, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 9) for i in range(1, 10)]
    assert isinstance(r, VectorizeResult) and r.seconds > 0 and r.path == tmp_path / "p.gpkg"
    with pytest.raises(AttributeError):
        r.features = 0  # type: ignore[misc]


# --- errors and atomic output ---------------------------------------------------------------


def test_existing_output_is_kept_without_overwrite(rasters, tmp_path):
    path, _ = rasters["utm"]
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="overwrite"):
        vectorize(path, out)
    assert out.read_bytes() == b"precious"
    vectorize(path, out, overwrite=True)
    assert len(gpd.read_file(out)) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"connectivity": 6}, "connectivity"),
        ({"block": 0}, "block"),
        ({"simplify": -1.0}, "simplify"),
        ({"min_area": float("nan")}, "min_area"),
        ({"class_ids": [255]}, "class_ids"),
        ({"layer": " "}, "layer"),
    ],
)
def test_bad_options(rasters, tmp_path, kwargs, match):
    path, _ = rasters["utm"]
    with pytest.raises(VectorizeError, match=match):
        vectorize(path, tmp_path / "out.gpkg", **kwargs)
    assert not list(tmp_path.iterdir())


def test_bad_inputs(tmp_path):
    cls = class_map(1, (10, 10))
    with pytest.raises(VectorizeError, match=r"\.gpkg, \.geojson"):
        vectorize(tmp_path / "x.tif", tmp_path / "out.kml")
    with pytest.raises(RasterReadError, match="missing.tif"):
        vectorize(tmp_path / "missing.tif", tmp_path / "out.gpkg")
    two = write_raster(tmp_path / "two.tif", cls, count=2)
    with pytest.raises(VectorizeError, match="single-band"):
        vectorize(two, tmp_path / "out.gpkg")
    with rasterio.open(
        tmp_path / "nocrs.tif",
        "w",
        driver="GTiff",
        width=10,
        height=10,
        count=1,
        dtype="uint8",
        transform=UTM,
    ) as ds:
        ds.write(cls, 1)
    with pytest.raises(VectorizeError, match="no CRS"):
        vectorize(tmp_path / "nocrs.tif", tmp_path / "out.gpkg")


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".fgb", ".parquet"])
def test_interrupted_run_leaves_no_file(rasters, tmp_path, ext):
    path, _ = rasters["utm"]

    def stop(done: int, total: int) -> None:
        if done == 4:
            raise Interrupted("stop here")

    with pytest.raises(Interrupted, match="stop here"):
        vectorize(path, tmp_path / f"out{ext}", block=64, progress=stop)
    assert not [p.name for p in tmp_path.iterdir()]


def test_temporaries_of_a_killed_run_are_removed(rasters, tmp_path):
    path, _ = rasters["utm"]
    stale = tmp_path / ".out.geoseg-tmp-123-abcdef.gpkg"
    stale.write_bytes(b"half written")
    vectorize(path, tmp_path / "out.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gpkg"]


def test_disk_full_is_an_output_error(rasters, tmp_path, monkeypatch):
    import pyogrio

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pyogrio, "write_arrow", full)
    path, _ = rasters["utm"]
    with pytest.raises(OutputError, match="disk space"):
        vectorize(path, tmp_path / "out.gpkg")
    assert not list(tmp_path.iterdir())


def test_unwritable_folder_is_an_output_error(rasters, tmp_path):
    path, _ = rasters["utm"]
    with pytest.raises(OutputError, match="cannot write"):
        vectorize(path, tmp_path / "no" / "such" / "out.fgb")
