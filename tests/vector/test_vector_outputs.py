"""Tests for what the vectorizer writes: attributes, smoothing, RFC 7946, round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
from click.testing import CliRunner
from rasterio.transform import Affine

from geoseg.errors import VectorizeError
from geoseg.vector import vectorize
from geoseg.vector.grid import _grid_for
from geoseg.vector.writers import _geojson_digits
from tests.vector.test_vectorize import UTM, class_map, whole_raster, write_raster

ZION = Path(__file__).parents[2] / "data" / "zion" / "nlcd2011_8class.tif"
GEO = Affine(0.001, 0.0, -111.2, 0.0, -0.001, 46.3)


@pytest.fixture(scope="module")
def utm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    cls = class_map(9, (120, 140))
    return write_raster(tmp_path_factory.mktemp("out") / "utm.tif", cls), cls


@pytest.fixture(scope="module")
def zion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 500×600 crop of the real NLCD class raster (nodata 0, 30 m, UTM 12N)."""
    with rasterio.open(ZION) as ds:
        window = rasterio.windows.Window(300, 400, 600, 500)
        cls = ds.read(1, window=window)
        transform = ds.window_transform(window)
    path = tmp_path_factory.mktemp("zion") / "zion.tif"
    return write_raster(path, cls, crs="EPSG:32612", transform=transform, nodata=0, tags=False), cls


def edge_count(cls: np.ndarray, nodata: int) -> int:
    """Pixel edges on region boundaries, summed over regions: the total perimeter in pixels."""
    valid = np.pad(cls != nodata, 1)
    padded = np.pad(cls.astype(np.int32), 1, constant_values=-1)
    total = 0
    for a, b, va, vb in (
        (padded[:, :-1], padded[:, 1:], valid[:, :-1], valid[:, 1:]),
        (padded[:-1, :], padded[1:, :], valid[:-1, :], valid[1:, :]),
    ):
        differ = a != b
        total += int(np.count_nonzero(differ & va)) + int(np.count_nonzero(differ & vb))
    return total


# --- must hold: areas, counts and perimeters of the real NLCD raster ----------------------


@pytest.mark.parametrize("connectivity", [4, 8])
def test_real_raster_counts_areas_perimeters(zion, tmp_path, connectivity):
    path, cls = zion
    r = vectorize(path, tmp_path / "z.gpkg", block=128, connectivity=connectivity)
    gdf = pyogrio.read_dataframe(r.path)
    found = list(rasterio.features.shapes(cls, mask=cls != 0, connectivity=connectivity))
    per_class = np.bincount([int(v) for _, v in found], minlength=9)
    assert len(gdf) == len(found)  # polygon count == one shapes() call on the whole raster
    assert np.array_equal(np.bincount(gdf["class_id"], minlength=9), per_class)
    pixels = np.bincount(cls[cls != 0], minlength=9)
    area = gdf.groupby("class_id")["area_m2"].sum()
    np.testing.assert_allclose(area.to_numpy(), pixels[area.index] * 900.0, rtol=1e-9)
    assert gdf["perimeter_m"].sum() == pytest.approx(edge_count(cls, 0) * 30.0, rel=1e-12)
    np.testing.assert_allclose(gdf["perimeter_m"], gdf.length, rtol=1e-12)
    assert shapely.is_valid(gdf.geometry.values).all()


def test_geographic_perimeter_is_measured_on_the_ellipsoid(tmp_path):
    cls = class_map(11, (80, 90))
    path = write_raster(tmp_path / "geo.tif", cls, crs="EPSG:4326", transform=GEO)
    gdf = gpd.read_file(vectorize(path, tmp_path / "geo.gpkg", block=32).path)
    geod = pyproj.Geod(ellps="WGS84")
    # pyproj's geodesic length of the same rings (holes too) with a vertex at every pixel
    # corner: a one-pixel parallel and its geodesic differ by ~1e-12 relative
    dense = shapely.boundary(shapely.segmentize(gdf.geometry.values, 0.001))
    expected = [geod.geometry_length(g) for g in dense]
    np.testing.assert_allclose(gdf["perimeter_m"], expected, rtol=1e-9)
    simple = gpd.read_file(vectorize(path, tmp_path / "s.gpkg", simplify=200.0).path)
    dense = shapely.boundary(shapely.segmentize(simple.geometry.values, 0.0005))
    expected = [geod.geometry_length(g) for g in dense]
    np.testing.assert_allclose(simple["perimeter_m"], expected, rtol=1e-6)


# --- attributes: confidence, source, date ---------------------------------------------------


def write_confidence(path: Path, conf: np.ndarray, transform: Affine = UTM) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=conf.shape[1],
        height=conf.shape[0],
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:32612",
        transform=transform,
    ) as ds:
        ds.write(conf, 1)
    return path


@pytest.mark.parametrize("connectivity", [4, 8])
def test_mean_confidence_per_polygon(utm, tmp_path, connectivity):
    path, cls = utm
    rng = np.random.default_rng(1)
    conf = rng.integers(30, 101, cls.shape).astype(np.uint8)
    conf[rng.random(cls.shape) < 0.05] = 255  # pixels without a confidence
    conf[:, :3] = 255
    cls = cls.copy()
    cls[50:52, :3] = 4  # a polygon with no confidence at all
    path = write_raster(tmp_path / "c.tif", cls)
    conf_path = write_confidence(tmp_path / "c_confidence.tif", conf)
    r = vectorize(
        path, tmp_path / "c.gpkg", block=37, connectivity=connectivity, confidence=conf_path
    )
    gdf = gpd.read_file(r.path)
    assert "mean_confidence" in gdf.columns
    for geom, mean in zip(gdf.geometry, gdf["mean_confidence"], strict=True):
        mask = rasterio.features.geometry_mask([geom], cls.shape, UTM, invert=True)
        values = conf[mask & (conf != 255)]
        if len(values):
            assert mean == pytest.approx(values.mean(), rel=1e-12)
        else:
            assert np.isnan(mean)
    assert gdf["mean_confidence"].isna().any()


def test_confidence_on_another_grid_is_refused(utm, tmp_path):
    path, cls = utm
    other = write_confidence(tmp_path / "o.tif", np.zeros((10, 10), np.uint8))
    with pytest.raises(VectorizeError, match="grid"):
        vectorize(path, tmp_path / "o.gpkg", confidence=other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif"]


def test_source_and_date_from_tags_or_arguments(tmp_path):
    cls = class_map(2, (30, 40))
    path = write_raster(tmp_path / "t.tif", cls)
    gdf = gpd.read_file(vectorize(path, tmp_path / "none.gpkg").path)
    assert "source" not in gdf.columns and "date" not in gdf.columns  # unknown: left out
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(1, GEOSEG_SOURCE="scenes/LC08_038034.tif")  # band tags, as predict's
        ds.update_tags(GEOSEG_DATE="2015-08-18")
    for ext in (".gpkg", ".geojson", ".fgb", ".parquet"):
        out = vectorize(path, tmp_path / f"tags{ext}").path
        gdf = gpd.read_parquet(out) if ext == ".parquet" else gpd.read_file(out)
        assert set(gdf["source"]) == {"scenes/LC08_038034.tif"}, ext
        assert {str(d)[:10] for d in gdf["date"]} == {"2015-08-18"}, ext
    gdf = gpd.read_file(
        vectorize(path, tmp_path / "args.gpkg", source="other.tif", date="2020-01-02").path
    )
    assert set(gdf["source"]) == {"other.tif"} and set(gdf["date"]) == {"2020-01-02"}
    with pytest.raises(VectorizeError, match="ISO 8601"):
        vectorize(path, tmp_path / "bad.gpkg", date="18/08/2015")


# --- smoothing: a valid coverage with the same union ----------------------------------------


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("simplify", [None, 40.0])
def test_smooth_keeps_a_valid_coverage(utm, tmp_path, connectivity, simplify):
    path, cls = utm
    plain = gpd.read_file(vectorize(path, tmp_path / "p.gpkg", connectivity=connectivity).path)
    r = vectorize(
        path,
        tmp_path / "s.gpkg",
        block=50,
        connectivity=connectivity,
        smooth=True,
        simplify=simplify,
    )
    smooth = gpd.read_file(r.path)
    geoms = smooth.geometry.values
    assert len(smooth) == len(plain)
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    assert shapely.is_empty(shapely.coverage_invalid_edges(geoms)).all()
    before = shapely.union_all(plain.geometry.values)
    after = shapely.union_all(geoms)
    assert after.area == pytest.approx(before.area, rel=1e-9)
    assert shapely.symmetric_difference(before, after).area < 1e-9 * before.area
    np.testing.assert_allclose(smooth.area, smooth["area_m2"], rtol=1e-9)
    # diagonal chords: edges that are neither horizontal nor vertical
    xy = shapely.get_coordinates(shapely.get_exterior_ring(shapely.get_parts(geoms)))
    step = np.diff(xy, axis=0)
    assert (np.abs(step).min(axis=1) > 1e-6).sum() > 100


def test_smooth_turns_a_staircase_into_a_diagonal(tmp_path):
    cls = np.triu(np.ones((20, 20), dtype=np.uint8))  # 1 above the diagonal, 0 below
    path = write_raster(tmp_path / "stairs.tif", cls)
    for block in (20, 7):
        gdf = gpd.read_file(
            vectorize(path, tmp_path / f"s{block}.gpkg", smooth=True, block=block).path
        )
        assert shapely.coverage_is_valid(gdf.geometry.values)
        upper = gdf.geometry[gdf["class_id"] == 1].iloc[0]
        lower = gdf.geometry[gdf["class_id"] == 0].iloc[0]
        shared = shapely.intersection(upper, lower)
        assert shared.length > 0
        if block == 20:  # one batch: the whole staircase is one straight diagonal
            line = shapely.simplify(shapely.line_merge(shared), 1e-6)
            # half a pixel stays straight at each end, where the boundary meets the border
            xy = shapely.get_coordinates(line)
            assert len(xy) == 4
            dx, dy = np.abs(np.diff(xy, axis=0)).T
            assert dx[1] == pytest.approx(dy[1]) and dx[1] == pytest.approx(18.5 * 30)
            assert upper.area == pytest.approx(gdf["area_m2"][gdf["class_id"] == 1].iloc[0])


def test_smooth_in_bands_keeps_a_valid_coverage(utm, tmp_path, monkeypatch):
    import geoseg.vector.geometry

    monkeypatch.setattr(geoseg.vector.geometry, "_SIMPLIFY_BATCH", 300)
    path, cls = utm
    geoms = gpd.read_file(vectorize(path, tmp_path / "b.fgb", smooth=True).path).geometry.values
    assert shapely.is_valid(geoms).all() and shapely.coverage_is_valid(geoms)
    assert shapely.area(geoms).sum() == pytest.approx(np.count_nonzero(cls != 255) * 900.0)


# --- GeoJSON: RFC 7946 and precision sized to the pixel -------------------------------------


def signed_area(ring: list[list[float]]) -> float:
    x, y = np.array(ring).T
    return float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) / 2)


def assert_rfc7946(doc: dict) -> None:
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        assert geometry["type"] in ("Polygon", "MultiPolygon")
        for rings in polygons:
            for i, ring in enumerate(rings):
                assert len(ring) >= 4 and ring[0] == ring[-1]
                lon, lat = np.array(ring).T
                assert (np.abs(lon) <= 180).all() and (np.abs(lat) <= 90).all()
                area = signed_area(ring)
                assert area > 0 if i == 0 else area < 0  # shells CCW, holes CW (§3.1.6)
        shape = shapely.geometry.shape(geometry)
        assert shape.is_valid, shapely.is_valid_reason(shape)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("options", [{}, {"simplify": 45.0, "smooth": True}])
def test_geojson_is_rfc7946(utm, tmp_path, connectivity, options):
    path, _ = utm
    r = vectorize(path, tmp_path / "o.geojson", connectivity=connectivity, block=64, **options)
    doc = json.loads(r.path.read_text(encoding="utf-8"))
    assert len(doc["features"]) == r.features
    assert_rfc7946(doc)
    gdf = gpd.read_file(r.path)
    assert gdf.crs.to_epsg() == 4326
    assert shapely.get_coordinates(gdf.geometry.values)[:, 0].max() < -110  # lon first (CRS84)


def test_geojson_across_the_antimeridian_is_rfc7946(tmp_path):
    cls = class_map(5, (40, 60))
    transform = Affine(30.0, 0.0, 735_300.0, 0.0, -30.0, 5_000_000.0)
    path = write_raster(tmp_path / "dl.tif", cls, crs="EPSG:32660", transform=transform)
    r = vectorize(path, tmp_path / "dl.geojson")
    assert_rfc7946(json.loads(r.path.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "crs, transform, digits",
    [
        ("EPSG:32612", UTM, 7),  # 30 m: a thousandth of a pixel is 2.7e-7°
        ("EPSG:4326", GEO, 6),  # 0.001°: 1e-6° (and never fewer than 6)
        ("EPSG:32612", Affine(0.5, 0, 500_000.0, 0, -0.5, 4_500_000.0), 9),  # 0.5 m
    ],
)
def test_geojson_precision_is_sized_to_the_pixel(tmp_path, crs, transform, digits):
    cls = class_map(3, (30, 40))
    path = write_raster(tmp_path / "p.tif", cls, crs=crs, transform=transform)
    with rasterio.open(path) as ds:
        assert (
            _geojson_digits(_grid_for(ds, classes=None, class_ids=None, block=64, connectivity=4))
            == digits
        )
    text = vectorize(path, tmp_path / "p.geojson").path.read_text(encoding="utf-8")
    coordinates = re.findall(r'"coordinates": ?(\[[-\d.,\[\]]*\])', text)
    assert len(coordinates) == text.count('"type": "Feature"')
    decimals = [len(d) for c in coordinates for d in re.findall(r"\d\.(\d+)", c)]
    # as many decimals as the pixel needs, never noise digits (a 0.001° grid needs only 3)
    assert max(decimals) == (3 if crs == "EPSG:4326" else digits)
    # the rounding moves no vertex by more than a thousandth of a pixel
    ours = gpd.read_file(tmp_path / "p.geojson").to_crs(crs)
    exact = gpd.read_file(vectorize(path, tmp_path / "p.gpkg").path)
    pixel = abs(transform.a)
    a = np.sort(shapely.get_coordinates(ours.geometry.values), axis=0)
    b = np.sort(shapely.get_coordinates(exact.geometry.values), axis=0)
    assert np.abs(a - b).max() < pixel / 1000


# --- every format round-trips through pyogrio with the same features -------------------------


@pytest.mark.parametrize("connectivity", [4, 8])
def test_formats_round_trip_with_the_same_features(utm, tmp_path, connectivity):
    path, cls = utm
    conf_path = write_confidence(tmp_path / "conf.tif", np.full(cls.shape, 80, np.uint8))
    kwargs = {
        "connectivity": connectivity,
        "block": 45,
        "confidence": conf_path,
        "source": "scene.tif",
        "date": "2015-08-18",
    }
    ref_geoms, ref_classes = whole_raster(cls, UTM, connectivity)
    frames = {}
    for ext in (".gpkg", ".fgb", ".geojson", ".parquet"):
        r = vectorize(path, tmp_path / f"f{ext}", **kwargs)
        if ext == ".parquet":  # pyogrio's wheels lack GDAL's Parquet driver
            gdf = gpd.read_parquet(r.path)
        else:
            gdf = pyogrio.read_dataframe(r.path)
        assert len(gdf) == r.features == len(ref_geoms), ext
        columns = [
            "class_id",
            "class_name",
            "area_m2",
            "perimeter_m",
            "mean_confidence",
            "source",
            "date",
        ]
        assert list(gdf.columns) == [*columns, "geometry"], ext
        frames[ext] = gdf
    base = frames[".gpkg"]
    geoms = shapely.normalize(base.geometry.values)
    # GeoPackage: the same polygons as one shapes() call on the whole raster, exactly
    match = _match(shapely.normalize(ref_geoms), geoms, tolerance=None)
    assert np.array_equal(base["class_id"].to_numpy()[match], ref_classes)
    for ext in (".fgb", ".parquet", ".geojson"):
        gdf = frames[ext]
        if ext == ".geojson":
            gdf = gdf.to_crs(32612)
        other = shapely.normalize(gdf.geometry.values)
        match = _match(geoms, other, tolerance=0.0 if ext != ".geojson" else 0.03)
        for column in (
            "class_id",
            "class_name",
            "area_m2",
            "perimeter_m",
            "mean_confidence",
            "source",
        ):
            assert np.array_equal(base[column].to_numpy(), gdf[column].to_numpy()[match]), (
                ext,
                column,
            )
        assert {str(d)[:10] for d in gdf["date"]} == {"2015-08-18"}


def _match(a: np.ndarray, b: np.ndarray, *, tolerance: float | None) -> np.ndarray:
    """For each geometry of ``a``, the index of the one in ``b`` equal to it.

    Equal: as point sets if ``tolerance`` is None, vertex by vertex if 0, else with as
    many vertices, none further than ``tolerance``.
    """
    tree = shapely.STRtree(b)
    pairs = tree.query(shapely.point_on_surface(a), predicate="intersects")
    match = np.full(len(a), -1)
    for i, j in zip(*pairs, strict=True):
        if tolerance is None:
            same = shapely.equals(a[i], b[j])
        elif tolerance == 0:
            same = shapely.equals_exact(a[i], b[j], 0)
        else:  # rounded coordinates: the same vertices, each moved less than tolerance
            same = shapely.get_num_coordinates(a[i]) == shapely.get_num_coordinates(b[j])
            same &= shapely.hausdorff_distance(a[i], b[j]) < tolerance
        if same:
            match[i] = j
    assert (match >= 0).all() and len(set(match.tolist())) == len(a)
    return match


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_exposes_the_options(utm, tmp_path):
    from geoseg.cli.main import cli

    path, cls = utm
    conf = write_confidence(tmp_path / "k.tif", np.full(cls.shape, 90, np.uint8))
    out = tmp_path / "cli.gpkg"
    res = CliRunner().invoke(
        cli,
        [
            "vectorize",
            str(path),
            "-o",
            str(out),
            "--classes",
            "1,3",
            "--min-area",
            "2700",
            "--smooth",
            "--confidence",
            str(conf),
            "--source",
            "s.tif",
            "--date",
            "2015-08-18",
        ],
    )
    assert res.exit_code == 0, res.output
    gdf = gpd.read_file(out)
    assert set(gdf["class_id"]) == {1, 3} and (gdf["mean_confidence"] == 90).all()
    assert set(gdf["source"]) == {"s.tif"} and shapely.coverage_is_valid(gdf.geometry.values)
    res = CliRunner().invoke(cli, ["vectorize", str(path), "-o", str(out), "--classes", "x"])
    assert res.exit_code == 2 and "--classes" in res.output


def test_shapefile_is_refused_with_the_reason_and_the_way_to_get_one(tmp_path: Path) -> None:
    """``.shp``: one line says why (10-character fields, 2 GB, five files) and how to convert."""
    from geoseg.cli.main import cli

    out = tmp_path / "classes.shp"
    res = CliRunner().invoke(cli, ["vectorize", str(ZION), "-o", str(out)])
    assert res.exit_code == 2, res.output
    [line] = res.output.strip().splitlines()
    assert "does not write ESRI Shapefiles" in line and "10 characters" in line
    assert f"ogr2ogr -f 'ESRI Shapefile' {out} {out.with_suffix('.gpkg')}" in line
    assert list(tmp_path.iterdir()) == []
