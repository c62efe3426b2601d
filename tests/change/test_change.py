"""geoseg.change: transitions, rules, MMU, co-registration, flood, first-change date, CLI."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from scipy import ndimage

from geoseg.change import (
    ChangeRule,
    as_rules,
    change_map,
    first_change_year,
    flood_extent,
    parse_rule,
    transition_matrix,
)
from geoseg.cli.main import cli
from geoseg.errors import AlignmentError, ChangeRuleError, InputError, OutputError
from tests.common import DATA, DEFAULT_TRANSFORM, UTM, read, write_raster

WATER = [
    {"id": 0, "name": "land", "color": "#d9d0c1"},
    {"id": 1, "name": "water", "color": "#1f78b4"},
]
FOREST = [
    {"id": 0, "name": "non-forest", "color": "#e6d8a8"},
    {"id": 1, "name": "forest", "color": "#1b7837"},
]
LC = [
    {"id": 1, "name": "water", "color": "#1f78b4"},
    {"id": 2, "name": "forest", "color": "#33a02c"},
    {"id": 5, "name": "bare", "color": "#b15928"},
]


def classes(
    path: Path,
    data: np.ndarray,
    scheme: list[dict] | None = LC,
    *,
    crs: str = UTM,
    transform: Affine = DEFAULT_TRANSFORM,
) -> Path:
    """A uint8 class raster (nodata 255) with a GEOSEG_CLASSES tag like predict writes."""
    write_raster(path, data[None].astype("uint8"), crs=crs, transform=transform, nodata=255)
    if scheme is not None:
        with rasterio.open(path, "r+") as ds:
            ds.update_tags(GEOSEG_CLASSES=json.dumps(scheme))
    return path


# --- transition matrix -----------------------------------------------------------------

T0 = np.array([[1, 1, 2, 2], [2, 2, 5, 255], [5, 5, 1, 2]])
T1 = np.array([[1, 2, 2, 5], [2, 255, 5, 1], [2, 5, 1, 1]])
# by hand, pixel by pixel (row-major), nodata (255) in either left out:
# (1,1) (1,2) (2,2) (2,5) | (2,2) (2,--) (5,5) (--,1) | (5,2) (5,5) (1,1) (2,1)
BY_HAND = {(1, 1): 2, (1, 2): 1, (2, 2): 2, (2, 5): 1, (5, 5): 2, (5, 2): 1, (2, 1): 1}


def test_transition_matrix_counts_and_planar_areas(tmp_path: Path) -> None:
    table = transition_matrix(classes(tmp_path / "a.tif", T0), classes(tmp_path / "b.tif", T1))
    got = {(r.from_id, r.to_id): r.pixels for r in table.rows}
    assert got == BY_HAND
    assert table.nodata_pixels == 2
    for r in table.rows:
        assert r.area_m2 == BY_HAND[(r.from_id, r.to_id)] * 900.0  # 30 m pixels
        assert r.area_ha == pytest.approx(r.area_m2 / 1e4)
    names = {(r.from_name, r.to_name) for r in table.rows}
    assert ("forest", "bare") in names and ("bare", "forest") in names
    froms, tos, m = table.matrix("pixels")
    assert froms == ["water", "forest", "bare"] and tos == ["water", "forest", "bare"]
    assert m.tolist() == [[2, 1, 0], [1, 2, 1], [0, 1, 2]]
    csv_lines = table.to_csv().splitlines()
    assert csv_lines[0] == "from_id,from_name,to_id,to_name,pixels,area_m2,area_ha"
    assert "2,forest,5,bare,1,900.0,0.09" in csv_lines
    md = table.to_markdown()
    assert "| from \\ to (ha) | water | forest | bare | total |" in md
    assert "| forest | 0.09 | 0.18 | 0.09 | 0.36 |" in md
    assert "| total | 0.27 | 0.36 | 0.27 | 0.90 |" in md


def test_transition_areas_on_the_ellipsoid(tmp_path: Path) -> None:
    pyproj = pytest.importorskip("pyproj")
    t = Affine(0.01, 0, 10.0, 0, -0.01, 60.0)  # 0.01° pixels from 60°N down to 59.97°N
    table = transition_matrix(
        classes(tmp_path / "a.tif", T0, crs="EPSG:4326", transform=t),
        classes(tmp_path / "b.tif", T1, crs="EPSG:4326", transform=t),
    )
    geod = pyproj.Geod(ellps="WGS84")

    def pixel_area(row: int) -> float:
        top, bottom = 60.0 - 0.01 * row, 60.0 - 0.01 * (row + 1)
        area, _ = geod.polygon_area_perimeter([10, 10.01, 10.01, 10], [top, top, bottom, bottom])
        return abs(area)

    expected: dict[tuple[int, int], float] = {}
    for (r, c), a in np.ndenumerate(T0):
        b = T1[r, c]
        if a != 255 and b != 255:
            expected[(a, b)] = expected.get((a, b), 0.0) + pixel_area(r)
    assert table.geographic
    for row in table.rows:  # geodesic vs parallel edges differ by ~1e-5 on 1 km
        assert row.area_m2 == pytest.approx(expected[(row.from_id, row.to_id)], rel=1e-4)
    assert "ellipsoidal" in table.note()


def test_schemes_may_differ_between_dates(tmp_path: Path) -> None:
    a = classes(tmp_path / "w.tif", np.array([[0, 1], [1, 0]]), WATER)
    b = classes(tmp_path / "f.tif", np.array([[1, 1], [0, 0]]), FOREST)
    table = transition_matrix(a, b)
    assert {(r.from_name, r.to_name): r.pixels for r in table.rows} == {
        ("land", "forest"): 1,
        ("water", "forest"): 1,
        ("water", "non-forest"): 1,
        ("land", "non-forest"): 1,
    }


# --- rules and change rasters ----------------------------------------------------------


def test_rules_make_a_styled_change_raster(tmp_path: Path) -> None:
    out = tmp_path / "change.tif"
    res = change_map(
        classes(tmp_path / "a.tif", T0),
        classes(tmp_path / "b.tif", T1),
        out=out,
        rules={
            "loss": {"from": ["forest"], "to": ["bare", "water"]},
            "gain": {"from": ["bare", 1], "to": ["FOREST"], "color": "#00ff00"},
            "other": {"from": ["*"], "to": ["water"]},  # after loss: forest→water stays loss
        },
    )
    expected = np.array([[3, 2, 0, 1], [0, 255, 0, 255], [2, 0, 3, 1]])
    assert np.array_equal(read(out), expected)
    assert [(c.id, c.name) for c in res.classes] == [
        (0, "no change"),
        (1, "loss"),
        (2, "gain"),
        (3, "other"),
    ]
    assert res.classes[2].color == "#00ff00" and res.classes[1].color == "#E31A1C"
    with rasterio.open(out) as ds:
        assert ds.nodata == 255 and ds.crs.to_string() == UTM
        assert ds.transform == DEFAULT_TRANSFORM
        assert ds.colormap(1)[2][:3] == (0, 255, 0)
        assert [c["name"] for c in json.loads(ds.tags()["GEOSEG_CLASSES"])][1] == "loss"
    assert "<Category>loss</Category>" in Path(f"{out}.aux.xml").read_text()
    assert 'type="paletted"' in out.with_suffix(".qml").read_text()
    assert {r.class_name: r.pixels for r in res.areas.rows} == {
        "no change": 4,
        "loss": 2,
        "gain": 2,
        "other": 2,
    }
    assert res.area_of("loss") == 2 * 900.0
    assert not list(tmp_path.glob("*geoseg-tmp*"))


def test_rule_parsing_and_errors(tmp_path: Path) -> None:
    assert parse_rule("loss=forest,shrub:non-forest:#aa0000") == ChangeRule(
        "loss", ("forest", "shrub"), ("non-forest",), "#aa0000"
    )
    for bad in ("loss", "loss=forest", "=a:b", "x=a:b:red"):
        with pytest.raises(ChangeRuleError):
            parse_rule(bad)
    with pytest.raises(ChangeRuleError, match="unique"):
        as_rules(["a=1:2", "A=2:1"])
    a, b = classes(tmp_path / "a.tif", T0), classes(tmp_path / "b.tif", T1)
    with pytest.raises(ChangeRuleError, match=r"has no class 'shrub'; its classes are 1 water"):
        change_map(a, b, out=tmp_path / "c.tif", rules=["loss=shrub:bare"])
    assert not (tmp_path / "c.tif").exists()
    change_map(a, b, out=tmp_path / "c.tif", rules=["loss=2:5"])
    with pytest.raises(OutputError, match="exists"):
        change_map(a, b, out=tmp_path / "c.tif", rules=["loss=2:5"])


# --- minimum mapping unit --------------------------------------------------------------


def _blobby_pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(3)
    shape = (150, 170)
    t0 = np.where(rng.random(shape) < 0.8, 1, 0)
    coarse = rng.random((shape[0] // 6 + 1, shape[1] // 6 + 1)) < 0.35
    blobs = np.kron(coarse, np.ones((6, 6), dtype=bool))[: shape[0], : shape[1]]
    t1 = np.where(blobs | (rng.random(shape) < 0.05), 0, 1)  # big clearings + speckle
    t0[:3, :3] = 255
    a = classes(tmp_path / "t0.tif", t0, FOREST)
    b = classes(tmp_path / "t1.tif", t1, FOREST)
    change = np.where((t0 == 1) & (t1 == 0), 1, np.where((t0 == 0) & (t1 == 1), 2, 0))
    change[t0 == 255] = 255
    return a, b, change


def _reference_mmu(change: np.ndarray, min_pixels: float, connectivity: int) -> np.ndarray:
    """Whole-raster reference: drop 1- and 2-patches with fewer than min_pixels pixels."""
    out = change.copy()
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    for value in (1, 2):
        labels, _ = ndimage.label(change == value, structure=structure)
        sizes = np.bincount(labels.ravel())
        small = sizes < min_pixels
        small[0] = False
        out[small[labels]] = 0
    return out


@pytest.mark.parametrize("connectivity", [4, 8])
def test_mmu_is_exact_and_independent_of_the_block_size(tmp_path: Path, connectivity: int) -> None:
    a, b, change = _blobby_pair(tmp_path)
    rules = ["loss=forest:non-forest", "gain=non-forest:forest"]
    mmu = 7 * 900.0 + 1  # patches of 7 pixels or fewer go
    outs = []
    for block in (23, 64, 1024):
        out = tmp_path / f"c{block}.tif"
        res = change_map(
            a, b, out=out, rules=rules, mmu_m2=mmu, connectivity=connectivity, block=block
        )
        outs.append(read(out))
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    expected = _reference_mmu(change, 8, connectivity)
    assert np.array_equal(outs[0], expected)
    dropped = int(np.count_nonzero(expected != change))
    assert dropped > 100 and res.mmu_pixels == dropped  # the MMU did real work
    assert np.count_nonzero(expected == 1) > 1000  # and kept the big clearings
    # the transition table describes the data before the MMU
    loss_pixels = {(r.from_name, r.to_name): r.pixels for r in res.transitions.rows}
    assert loss_pixels[("forest", "non-forest")] == np.count_nonzero(change == 1)


def test_mmu_applies_only_to_the_named_classes(tmp_path: Path) -> None:
    a, b, change = _blobby_pair(tmp_path)
    res = change_map(
        a,
        b,
        out=tmp_path / "c.tif",
        rules=["loss=forest:non-forest", "gain=non-forest:forest"],
        mmu_m2=7 * 900.0 + 1,
        mmu_classes=["loss"],
        block=50,
    )
    got = read(res.path)
    assert np.array_equal(got == 2, change == 2)
    assert np.array_equal(got == 1, _reference_mmu(change, 8, 4) == 1)
    with pytest.raises(ChangeRuleError, match="not a change class"):
        change_map(a, b, out=tmp_path / "d.tif", rules=["loss=1:0"], mmu_m2=10, mmu_classes=["x"])


# --- co-registration -------------------------------------------------------------------


def _grid_case(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    t0 = rng.integers(0, 2, (12, 14))
    return classes(tmp_path / "t0.tif", t0, FOREST), t0


def test_fraction_of_a_pixel_shift_is_reprojected_nearest(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    t1 = np.random.default_rng(6).integers(0, 2, t0.shape)
    shifted = DEFAULT_TRANSFORM * Affine.translation(0.7, 0)  # 0.7 pixel east
    b = classes(tmp_path / "t1.tif", t1, FOREST, transform=shifted)
    res = change_map(a, b, out=tmp_path / "c.tif", rules=["loss=forest:non-forest"])
    # a reference pixel centre at column c + 0.5 falls in t1's column c - 1 (c - 0.2),
    # and column 0 lies outside t1: nodata
    t1_on_ref = np.full(t0.shape, 255)
    t1_on_ref[:, 1:] = t1[:, :-1]
    expected = np.where((t0 == 1) & (t1_on_ref == 0), 1, 0)
    expected[:, 0] = 255
    assert np.array_equal(read(res.path), expected)
    assert [i["reprojected"] for i in res.inputs] == [False, True]


def test_coarser_raster_is_reprojected_onto_the_first_grid(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    t1 = np.random.default_rng(7).integers(0, 2, (6, 7))
    coarse = DEFAULT_TRANSFORM * Affine.scale(2)  # 60 m pixels, same origin
    b = classes(tmp_path / "t1.tif", t1, FOREST, transform=coarse)
    table = transition_matrix(a, b)
    t1_on_ref = np.kron(t1, np.ones((2, 2), dtype=int))
    by_hand = {
        (i, j): int(np.count_nonzero((t0 == i) & (t1_on_ref == j))) for i in (0, 1) for j in (0, 1)
    }
    assert {(r.from_id, r.to_id): r.pixels for r in table.rows} == {
        k: v for k, v in by_hand.items() if v
    }


def test_other_crs_is_reprojected_pixel_centre_by_pixel_centre(tmp_path: Path) -> None:
    pyproj = pytest.importorskip("pyproj")
    a, t0 = _grid_case(tmp_path)
    # t1 in Web Mercator with 13 m pixels around the same place
    to_merc = pyproj.Transformer.from_crs(UTM, "EPSG:3857", always_xy=True)
    x0, y0 = to_merc.transform(DEFAULT_TRANSFORM.c - 100, DEFAULT_TRANSFORM.f + 100)
    merc = Affine(13.0, 0, round(x0), 0, -13.0, round(y0))
    t1 = np.random.default_rng(8).integers(0, 2, (60, 60))
    b = classes(tmp_path / "t1.tif", t1, FOREST, crs="EPSG:3857", transform=merc)
    res = change_map(a, b, out=tmp_path / "c.tif", rules=["loss=forest:non-forest"], block=5)
    rows, cols = np.indices(t0.shape)
    xs, ys = DEFAULT_TRANSFORM * (cols + 0.5, rows + 0.5)
    mx, my = to_merc.transform(xs, ys)
    ci, ri = ~merc * (mx, my)
    t1_on_ref = t1[np.floor(ri).astype(int), np.floor(ci).astype(int)]
    expected = np.where((t0 == 1) & (t1_on_ref == 0), 1, 0)
    assert np.array_equal(read(res.path), expected)


def test_rasters_that_do_not_overlap_are_refused(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    far = DEFAULT_TRANSFORM * Affine.translation(1000, 0)
    b = classes(tmp_path / "far.tif", t0, FOREST, transform=far)
    with pytest.raises(AlignmentError, match=r"does not overlap .*t0.tif \(EPSG:32612, 30×30"):
        transition_matrix(a, b)


def test_align_none_refuses_other_grids_and_names_both(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    b = classes(
        tmp_path / "t1.tif", t0, FOREST, transform=DEFAULT_TRANSFORM * Affine.translation(0.5, 0)
    )
    with pytest.raises(AlignmentError) as err:
        change_map(a, b, out=tmp_path / "c.tif", rules=["x=1:0"], align="none")
    text = str(err.value)
    assert "t1.tif (EPSG:32612" in text and "t0.tif (EPSG:32612" in text
    assert "pass align=first to reproject" in text  # the API names its argument
    assert not (tmp_path / "c.tif").exists()
    same = classes(tmp_path / "same.tif", t0, FOREST)
    assert transition_matrix(a, same, align="none").rows  # the same grid is fine


def test_bad_inputs(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    rgb = write_raster(tmp_path / "rgb.tif", np.zeros((3, 4, 4), dtype="uint8"))
    with pytest.raises(InputError, match="single-band integer"):
        transition_matrix(a, rgb)
    with pytest.raises(InputError, match="at least two"):
        first_change_year([a], out=tmp_path / "y.tif", from_classes=[1], to_classes=[0])
    with pytest.raises(InputError, match="must increase"):
        first_change_year(
            [a, a], out=tmp_path / "y.tif", from_classes=[1], to_classes=[0], dates=[2000, 1990]
        )


# --- flood -----------------------------------------------------------------------------


def test_flood_extent_classes_by_hand(tmp_path: Path) -> None:
    pre = np.array([[0, 0, 1, 1], [0, 1, 1, 255], [0, 0, 0, 0]])
    post = np.array([[0, 1, 1, 0], [1, 1, 0, 1], [0, 1, 1, 255]])
    a = classes(tmp_path / "pre.tif", pre, WATER)
    b = classes(tmp_path / "post.tif", post, WATER)
    res = flood_extent(a, b, out=tmp_path / "flood.tif")
    # 0 dry, 1 permanent water, 2 flood, 3 receded
    assert read(res.path).tolist() == [[0, 2, 1, 3], [2, 1, 3, 255], [0, 2, 2, 255]]
    assert [c.name for c in res.classes] == ["dry", "permanent water", "flood", "receded"]
    assert res.area_of("flood") == 4 * 900.0 and res.area_of("permanent water") == 2 * 900.0
    res2 = flood_extent(a, b, out=tmp_path / "flood2.tif", receded=False)
    assert read(res2.path).tolist() == [[0, 2, 1, 0], [2, 1, 0, 255], [0, 2, 2, 255]]
    # with an MMU of 2 pixels (4-connected) the 1-pixel flood and receded patches go;
    # the 1-pixel permanent-water patches (diagonal neighbours) stay: the MMU skips them
    res3 = flood_extent(a, b, out=tmp_path / "flood3.tif", mmu_m2=2 * 900.0)
    assert read(res3.path).tolist() == [[0, 0, 1, 0], [0, 1, 0, 255], [0, 2, 2, 255]]


# --- first change date -----------------------------------------------------------------


def test_first_change_year_by_hand(tmp_path: Path) -> None:
    y1985 = np.array([[1, 1, 1, 1, 0, 1, 1, 255]])
    y2000 = np.array([[0, 1, 0, 255, 0, 1, 0, 1]])
    y2020 = np.array([[0, 0, 1, 0, 1, 1, 0, 0]])
    paths = [
        classes(tmp_path / f"{y}.tif", arr, FOREST)
        for y, arr in ((1985, y1985), (2000, y2000), (2020, y2020))
    ]
    loss = first_change_year(
        paths,
        out=tmp_path / "loss.tif",
        from_classes=["forest"],
        to_classes=["non-forest"],
        dates=["1985", "2000", "2020"],
    )
    # lost by 2000 and stayed | lost by 2020 | lost, then back: never | 2000 unobserved,
    # lost by 2020 | never forest | always forest | lost by 2000 | first seen 2000, lost 2020
    assert read(loss.path).tolist() == [[2000, 2020, 0, 2020, 0, 0, 2000, 2020]]
    assert loss.pixels == {2000: 2, 2020: 3} and loss.area_m2[2020] == 3 * 900.0
    gain = first_change_year(
        paths, out=tmp_path / "gain.tif", from_classes=["non-forest"], to_classes=["forest"]
    )
    assert read(gain.path).tolist() == [[0, 0, 2, 0, 2, 0, 0, 0]]  # date index without dates
    with rasterio.open(gain.path) as ds:
        assert ds.dtypes[0] == "uint16" and ds.nodata == 0
    with pytest.raises(ChangeRuleError, match="cannot be both"):
        first_change_year(paths, out=tmp_path / "x.tif", from_classes=["*"], to_classes=[0])


def _three_dates(tmp_path: Path) -> list[Path]:
    arrays = ([[1, 1, 1, 0]], [[0, 1, 1, 0]], [[0, 0, 1, 1]])
    return [classes(tmp_path / f"d{k}.tif", np.array(a), FOREST) for k, a in enumerate(arrays)]


@pytest.mark.parametrize(
    "dates",
    [
        ["2021-06-03", "2021-08-15", "2021-10-01"],
        [datetime.date(2021, 6, 3), datetime.date(2021, 8, 15), datetime.date(2021, 10, 1)],
    ],
    ids=["iso-text", "yaml-dates"],
)
def test_full_dates_within_one_year_are_stored_as_days(tmp_path: Path, dates: list[object]) -> None:
    loss = first_change_year(
        _three_dates(tmp_path),
        out=tmp_path / "loss.tif",
        from_classes=["forest"],
        to_classes=["non-forest"],
        dates=dates,
    )
    epoch = datetime.date(1970, 1, 1)
    aug, oct_ = (datetime.date(2021, 8, 15) - epoch).days, (datetime.date(2021, 10, 1) - epoch).days
    assert read(loss.path).tolist() == [[aug, oct_, 0, 0]]
    assert [epoch + datetime.timedelta(days=d) for d in loss.pixels] == [
        datetime.date(2021, 8, 15),
        datetime.date(2021, 10, 1),
    ]
    record = loss.record()
    assert record["date_unit"] == "days since 1970-01-01"
    assert record["by_date"][0]["label"] == "2021-08-15"
    with rasterio.open(loss.path) as ds:
        assert ds.tags()["GEOSEG_DATE_UNIT"] == "days since 1970-01-01"
        assert json.loads(ds.tags()["GEOSEG_DATE_LABELS"])[2] == "2021-10-01"


@pytest.mark.parametrize(
    ("dates", "match"),
    [
        (["2021", "2021-06-03", "2022"], "mix years and full dates"),
        (["2021-06-03", "2021-06-03", "2021-07-01"], "must increase"),
        (["1965-01-01", "1970-06-01", "1975-01-01"], "between 1970-01-02 and 2149-06-06"),
        (["2021-02-30", "2021-06-03", "2022-01-01"], "not a year or an ISO date"),
        (["1985", "2000"], "2 dates for 3 rasters"),
    ],
)
def test_bad_dates(tmp_path: Path, dates: list[str], match: str) -> None:
    with pytest.raises(InputError, match=match):
        first_change_year(
            _three_dates(tmp_path),
            out=tmp_path / "x.tif",
            from_classes=["forest"],
            to_classes=["non-forest"],
            dates=dates,
        )
    assert not (tmp_path / "x.tif").exists()


def test_cli_with_two_dates_in_one_year(tmp_path: Path) -> None:
    out = tmp_path / "change"
    paths = _three_dates(tmp_path)
    args = ["change", *map(str, paths), "--out", str(out), "--rule", "loss=forest:non-forest"]
    result = CliRunner().invoke(cli, [*args, "--dates", "2021-06-03,2021-08-15,2021-10-01"])
    assert result.exit_code == 0, result.output
    assert (out / "change_2021-06-03_2021-08-15.tif").exists()
    record = json.loads((out / "change_run.json").read_text())
    assert record["date_labels"] == ["2021-06-03", "2021-08-15", "2021-10-01"]
    assert record["first_change"][0]["by_date"][0]["label"] == "2021-08-15"


# --- CLI on real Pucallpa rasters ------------------------------------------------------

NDVI_FOREST_THRESHOLD = 0.7
"""Fixed NDVI threshold for the test's forest maps (the composites are stretched uint8)."""


def _pucallpa_forest_by_fixed_ndvi(tmp_path: Path) -> list[Path]:
    """Forest (1) / non-forest (0) rasters of the real Pucallpa composites: NDVI > 0.7."""
    out = []
    for year in (1985, 2000, 2020):
        with rasterio.open(DATA / "pucallpa" / f"{year}.tif") as ds:
            nir, red = ds.read(2).astype(float), ds.read(3).astype(float)
            valid = ds.read_masks(1) > 0
            crs, transform = ds.crs.to_string(), ds.transform
        ndvi = (nir - red) / np.maximum(nir + red, 1)
        forest = np.where(valid, ndvi > NDVI_FOREST_THRESHOLD, 255)
        out.append(
            classes(
                tmp_path / f"forest_ndvi_{year}.tif", forest, FOREST, crs=crs, transform=transform
            )
        )
    return out


def test_cli_on_the_pucallpa_time_series(tmp_path: Path) -> None:
    paths = _pucallpa_forest_by_fixed_ndvi(tmp_path)
    out = tmp_path / "change"
    args = ["change", *map(str, paths), "--out", str(out), "--dates", "1985,2000,2020"]
    args += ["--rule", "loss=forest:non-forest", "--rule", "gain=non-forest:forest"]
    result = CliRunner().invoke(cli, [*args, "--mmu", "20000"])
    assert result.exit_code == 0, result.output
    assert "| from \\ to (ha) | non-forest | forest | total |" in result.output
    stacks = [read(p) for p in paths]
    f85, f00, f20 = stacks
    ok = (f85 != 255) & (f00 != 255) & (f20 != 255)
    for name in ("change_1985_2000.tif", "change_2000_2020.tif", "loss_first_date.tif"):
        assert (out / name).exists()
    # the loss-date raster agrees with a direct reading of the three maps (MMU 20000 m²
    # is ~3 pixels of ~0.8 ha here: dropped pixels must have been small patches)
    year = read(out / "loss_first_date.tif")
    by2000 = ok & (f85 == 1) & (f00 == 0) & (f20 == 0)
    by2020 = ok & (f00 == 1) & (f20 == 0)
    assert set(np.unique(year)) <= {0, 2000, 2020}
    assert np.all(by2000[(year == 2000) & ok]) and np.all(by2020[(year == 2020) & ok])
    # exactly: away from nodata, 2000 losses are the by2000 patches (4-connected) of 3+
    # pixels (one pixel is ~0.8 ha: 2 pixels < 20000 m² < 3 pixels)
    labels, _ = ndimage.label(by2000)
    kept = np.bincount(labels.ravel()) >= 3
    kept[0] = False
    far = ~ndimage.binary_dilation(~ok, iterations=4)
    assert np.array_equal((year == 2000)[far], kept[labels][far])
    assert np.count_nonzero(year[far] == 2000) > 1000
    record = json.loads((out / "change_run.json").read_text())
    assert record["dates"] == [1985, 2000, 2020] and record["mmu_m2"] == 20000
    period = record["periods"][0]
    assert [i["sha256"] for i in period["inputs"]][0] and period["rules"][0]["name"] == "loss"
    loss_area = {a["class_name"]: a["area_ha"] for a in period["areas"]}["loss"]
    assert loss_area > 0
    assert record["first_change"][0]["by_date"][0]["date"] == 2000
    # without --overwrite a second run refuses, writing nothing
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    a, t0 = _grid_case(tmp_path)
    b = classes(
        tmp_path / "t1.tif", t0, FOREST, transform=DEFAULT_TRANSFORM * Affine.translation(0.5, 0)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "geoseg", "change", str(a), str(b), "--out", str(tmp_path / "o")]
        + ["--align", "none"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is not on the grid of" in proc.stderr


def test_cli_two_dates_without_rules_writes_the_transition_table(tmp_path: Path) -> None:
    a, b = classes(tmp_path / "a.tif", T0), classes(tmp_path / "b.tif", T1)
    result = CliRunner().invoke(cli, ["change", str(a), str(b), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "| forest | 0.09 | 0.18 | 0.09 | 0.36 |" in result.output
    files = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert files == ["change_run.json", "transitions_t0_t1.csv", "transitions_t0_t1.md"]
    help_text = CliRunner().invoke(cli, ["change", "--help"]).output
    assert "geoseg change forest_2000.tif forest_2020.tif --out change/" in help_text
