"""``geoseg stats``: exact projected areas, ellipsoidal areas, zones, CLI files, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from pyproj import Geod

from geoseg.analysis.stats import class_areas
from geoseg.cli.main import cli
from geoseg.errors import InputError
from tests.common import CLASSES3, UTM

ORIGIN = (300000.0, 4150000.0)
T = Affine(10.0, 0.0, ORIGIN[0], 0.0, -20.0, ORIGIN[1])  # 10 m × 20 m pixels: 200 m²


def _classes(
    path: Path, data: np.ndarray, *, crs: str | None = UTM, transform: Affine = T, tags: bool = True
) -> Path:
    profile = {
        "driver": "GTiff",
        "dtype": str(data.dtype),
        "count": 1,
        "height": data.shape[0],
        "width": data.shape[1],
        "crs": crs,
        "transform": transform,
        "nodata": 255 if data.dtype == np.uint8 else None,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        if tags:
            ds.update_tags(GEOSEG_CLASSES=json.dumps(CLASSES3))
    return path


def _sample(shape: tuple[int, int] = (7, 9), seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.choice(np.array([1, 2, 5], dtype=np.uint8), size=shape)
    data[0, :3] = 255  # nodata: never counted, not in the shares
    data[4, 4] = 255
    return data


@pytest.mark.parametrize("block", [2, 3, 1024])
def test_projected_areas_are_count_times_pixel_area(tmp_path: Path, block: int) -> None:
    data = _sample()
    table = class_areas(_classes(tmp_path / "c.tif", data), block=block)
    valid = (data != 255).sum()
    got = [(r.class_id, r.class_name, r.pixels, r.area_m2, r.share) for r in table.rows]
    want = [
        (
            cid,
            name,
            int((data == cid).sum()),
            (data == cid).sum() * 200.0,
            (data == cid).sum() / valid,
        )
        for cid, name in [(1, "water"), (2, "forest"), (5, "bare")]
    ]
    assert [g[:4] for g in got] == [w[:4] for w in want]  # areas exact: 200 m² per pixel
    assert [g[4] for g in got] == pytest.approx([w[4] for w in want], rel=1e-12)
    row = table.rows[0]
    assert (row.area_ha, row.area_km2) == (row.area_m2 / 1e4, row.area_m2 / 1e6)
    assert not table.geographic and table.crs == "EPSG:32612"


def test_projected_areas_in_us_survey_feet(tmp_path: Path) -> None:
    """A CRS in US survey feet: pixel area × (1200/3937 m per ft)²."""
    data = _sample()
    ft = Affine(10.0, 0.0, 6_000_000.0, 0.0, -10.0, 2_100_000.0)
    table = class_areas(_classes(tmp_path / "ft.tif", data, crs="EPSG:2227", transform=ft))
    per_pixel = 100 * (1200 / 3937) ** 2
    assert table.rows[0].area_m2 == pytest.approx((data == 1).sum() * per_pixel, rel=1e-12)


def _geodesic_pixel_area(geod: Geod, lon0: float, lat0: float, dlon: float, dlat: float) -> float:
    """Reference: pyproj's geodesic polygon area of the pixel, parallels densified.

    A geodesic bows away from a parallel; with 200 points per edge the bowing
    changes a 0.05° pixel's area by far less than 1e-9.
    """
    n = 200
    lons = np.concatenate(
        [
            np.linspace(lon0, lon0 + dlon, n),
            np.full(n, lon0 + dlon),
            np.linspace(lon0 + dlon, lon0, n),
            np.full(n, lon0),
        ]
    )
    lats = np.concatenate(
        [
            np.full(n, lat0),
            np.linspace(lat0, lat0 - dlat, n),
            np.full(n, lat0 - dlat),
            np.linspace(lat0 - dlat, lat0, n),
        ]
    )
    area, _ = geod.polygon_area_perimeter(lons, lats)
    return abs(area)


def test_geographic_areas_match_geodesic_reference(tmp_path: Path) -> None:
    # rows at very different latitudes: 0.05° pixels at 1°, 45° and 80° N
    data = np.array([[1, 2, 2], [5, 5, 1], [2, 255, 5]], dtype=np.uint8)
    geod = Geod(ellps="WGS84")
    dlon = dlat = 0.05
    tops = [1.0, 45.0, 80.0]
    refs = {}
    for r, top in enumerate(tops):
        transform = Affine(dlon, 0.0, 10.0, 0.0, -dlat, top)
        path = _classes(
            tmp_path / f"g{r}.tif", data[r : r + 1], crs="EPSG:4326", transform=transform
        )
        table = class_areas(path)
        assert table.geographic
        ref = _geodesic_pixel_area(geod, 10.0, top, dlon, dlat)
        refs[top] = ref
        for row in table.rows:
            assert row.area_m2 == pytest.approx(row.pixels * ref, rel=1e-9), (top, row)
    # a spherical cos(lat) ratio, within the ellipsoid's ~1.3 % flattening effect
    cos_ratio = math.cos(math.radians(1 - dlat / 2)) / math.cos(math.radians(80 - dlat / 2))
    assert refs[1.0] / refs[80.0] == pytest.approx(cos_ratio, rel=0.02)


def test_geographic_rows_of_one_raster_use_their_own_latitude(tmp_path: Path) -> None:
    data = np.array([[1], [1], [2]], dtype=np.uint8)  # three rows, 20° apart
    transform = Affine(0.05, 0.0, 0.0, 0.0, -20.0, 60.0)
    table = class_areas(
        _classes(tmp_path / "g.tif", data, crs="EPSG:4326", transform=transform), block=1
    )
    geod = Geod(ellps="WGS84")
    want_1 = _geodesic_pixel_area(geod, 0.0, 60.0, 0.05, 20.0) + _geodesic_pixel_area(
        geod, 0.0, 40.0, 0.05, 20.0
    )
    want_2 = _geodesic_pixel_area(geod, 0.0, 20.0, 0.05, 20.0)
    assert [r.area_m2 for r in table.rows] == pytest.approx([want_1, want_2], rel=1e-8)


def _zones_file(path: Path, crs: str = UTM) -> Path:
    """Zone A: columns 0-4, all rows. Zone B: columns 3-8 and beyond the right and bottom edges.

    Boundaries lie on pixel edges, half a pixel from any centre; A and B share
    columns 3-4. B has two features that overlap each other (rows 0-3 and 2-9).
    """
    x0, y0 = ORIGIN
    a = shapely.box(x0, y0 - 7 * 20, x0 + 5 * 10, y0)
    b1 = shapely.box(x0 + 3 * 10, y0 - 4 * 20, x0 + 12 * 10, y0)
    b2 = shapely.box(x0 + 3 * 10, y0 - 10 * 20, x0 + 12 * 10, y0 - 2 * 20)
    gdf = gpd.GeoDataFrame(
        {"name": ["A", "B", "B"], "pop": [1, 2, 3]}, geometry=gpd.GeoSeries([a, b1, b2], crs=UTM)
    )
    if crs != UTM:  # densified first, so the reprojected edges stay between the same centres
        gdf = gdf.set_geometry(gdf.geometry.segmentize(1.0)).to_crs(crs)
    gdf.to_file(path, layer="zones", engine="pyogrio")
    return path


@pytest.mark.parametrize("crs", [UTM, "EPSG:4326"], ids=["same-crs", "reprojected"])
def test_zones_by_pixel_centre(tmp_path: Path, crs: str) -> None:
    data = _sample()
    raster = _classes(tmp_path / "c.tif", data)
    zones = _zones_file(tmp_path / "z.gpkg", crs)
    table = class_areas(raster, zones=zones, zone_field="name", block=4)
    valid = data != 255
    cols = np.arange(data.shape[1])
    masks = {
        "A": np.broadcast_to(cols < 5, data.shape),
        "B": np.broadcast_to(cols >= 3, data.shape),
    }
    for zone, mask in masks.items():
        rows = [r for r in table.rows if r.zone == zone]
        inside = mask & valid
        want = [(c, int((data[inside] == c).sum())) for c in (1, 2, 5)]
        assert [(r.class_id, r.pixels) for r in rows] == want
        assert [r.area_m2 for r in rows] == [n * 200.0 for _, n in want]
        assert sum(r.share for r in rows) == pytest.approx(1.0)
    # columns 3-4 are in both zones and count in both; B's overlapping features count once
    assert sum(r.pixels for r in table.rows) == valid.sum() + (valid[:, 3:5]).sum()
    assert table.columns[0] == "zone" and table.empty_zones == ()


def test_zone_without_pixels_is_reported(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "c.tif", _sample())
    x0, y0 = ORIGIN
    gdf = gpd.GeoDataFrame(
        {"name": ["in", "tiny"]},
        geometry=gpd.GeoSeries(
            [
                shapely.box(x0, y0 - 40, x0 + 40, y0),
                shapely.box(x0 + 51, y0 - 31, x0 + 54, y0 - 29),
            ],
            crs=UTM,
        ),
    )
    gdf.to_file(tmp_path / "z.gpkg", engine="pyogrio")
    table = class_areas(raster, zones=tmp_path / "z.gpkg", zone_field="name")
    assert {r.zone for r in table.rows} == {"in"}
    assert table.empty_zones == ("tiny",)  # no pixel centre inside it
    assert "zones without pixels: tiny" in table.to_markdown()


def test_cli_prints_and_writes_csv_and_markdown_that_agree(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "c.tif", _sample())
    zones = _zones_file(tmp_path / "z.gpkg")
    out, md = tmp_path / "t.csv", tmp_path / "t.md"
    args = [
        "stats",
        str(raster),
        "--zones",
        str(zones),
        "--zone-field",
        "name",
        "--out",
        str(out),
        "--markdown",
        str(md),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    table = class_areas(raster, zones=zones, zone_field="name")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(table.columns)
    assert len(rows) == len(table.rows)
    md_lines = [
        line for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("| ")
    ][1:]
    assert len(md_lines) == len(rows)
    for row, line, want in zip(rows, md_lines, table.rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        md_row = dict(zip(table.columns, cells, strict=True))
        assert (row["zone"], int(row["class_id"]), row["class_name"], int(row["pixels"])) == (
            want.zone,
            want.class_id,
            want.class_name,
            want.pixels,
        )
        assert float(row["area_m2"]) == want.area_m2 and float(row["area_km2"]) == want.area_km2
        assert float(row["share_pct"]) == pytest.approx(100 * want.share)
        assert int(md_row["pixels"].replace(",", "")) == int(row["pixels"])
        assert float(md_row["area_ha"].replace(",", "")) == pytest.approx(
            float(row["area_ha"]), abs=0.005
        )
        assert float(md_row["share_pct"]) == pytest.approx(float(row["share_pct"]), abs=0.005)
    assert "| zone | class_id |" in res.stdout and "pixel-centre rule" in res.stdout
    again = CliRunner().invoke(cli, args)  # files exist: refused without --overwrite
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0


def _one_line_error(args: list[str]) -> str:
    res = CliRunner().invoke(cli, ["stats", *args])
    assert res.exit_code == 2, (res.output, res.exception)
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in res.output
    return err


def test_missing_zone_field_names_it_and_lists_fields(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "c.tif", _sample())
    zones = _zones_file(tmp_path / "z.gpkg")
    with pytest.raises(InputError, match=r"has no field 'NAME'.*one of: name, pop"):
        class_areas(raster, zones=zones, zone_field="NAME")
    err = _one_line_error([str(raster), "--zones", str(zones), "--zone-field", "NAME"])
    assert "'NAME'" in err and "name, pop" in err
    assert "one of: name, pop" in _one_line_error([str(raster), "--zones", str(zones)])


def test_zones_elsewhere_is_a_clear_error(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "c.tif", _sample())
    far = gpd.GeoDataFrame(
        {"name": ["far"]}, geometry=gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs="EPSG:4326")
    )
    far.to_file(tmp_path / "far.gpkg", engine="pyogrio")
    err = _one_line_error(
        [str(raster), "--zones", str(tmp_path / "far.gpkg"), "--zone-field", "name"]
    )
    assert "none of the 1 zones" in err and "overlaps" in err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("float", "single-band integer class raster"),
        ("no-crs", "has no CRS"),
        ("missing", "cannot open class raster"),
        ("zone-field-alone", "--zone-field needs --zones"),
        ("bad-suffix", "should end in .csv"),
    ],
)
def test_bad_input(tmp_path: Path, case: str, expected: str) -> None:
    path = tmp_path / "c.tif"
    args = [str(path)]
    if case == "float":
        _classes(path, np.random.default_rng(0).random((4, 4)).astype("float32"), tags=False)
    elif case == "no-crs":
        _classes(path, _sample(), crs=None)
    elif case == "zone-field-alone":
        args += ["--zone-field", "name"]
    elif case == "bad-suffix":
        _classes(path, _sample())
        args += ["--out", str(tmp_path / "t.txt")]
    assert expected in _one_line_error(args)


def test_help_has_an_example() -> None:
    res = CliRunner().invoke(cli, ["stats", "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and "geoseg stats results/scene_classes.tif" in res.output
