"""Class rasters: one way to open them, one order of scheme sources, one policy on a bad tag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.errors import InputError, RasterReadError, VectorizeError
from geoseg.io.classraster import (
    SCHEME_TAG,
    class_names,
    open_class_raster,
    read_scheme,
    select_classes,
)
from geoseg.schemes import ClassInfo, load_scheme
from tests.common import CLASSES3, UTM

T = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4500000.0)
IDS = np.array([[1, 2, 5, 5], [1, 1, 2, 255], [5, 5, 2, 1]], dtype=np.uint8)


def _raster(
    path: Path,
    data: np.ndarray = IDS,
    *,
    tags: dict[str, str] | None = None,
    band_tags: dict[str, str] | None = None,
    count: int = 1,
    crs: str | None = UTM,
) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        dtype=str(data.dtype),
        count=count,
        height=data.shape[0],
        width=data.shape[1],
        crs=crs,
        transform=T,
        nodata=255 if data.dtype == np.uint8 else None,
    ) as ds:
        for band in range(1, count + 1):
            ds.write(data, band)
        ds.update_tags(**(tags or {}))
        ds.update_tags(1, **(band_tags or {}))
    return path


def test_the_tag_gives_the_scheme_and_an_explicit_scheme_wins(tmp_path: Path) -> None:
    path = _raster(tmp_path / "c.tif", tags={SCHEME_TAG: json.dumps(CLASSES3)})
    assert [c.name for c in read_scheme(path)] == [c["name"] for c in CLASSES3]
    with rasterio.open(path) as ds:  # an open dataset works the same
        assert read_scheme(ds) == read_scheme(path)
    assert read_scheme(path, "water") == load_scheme("water")
    mine = (ClassInfo(1, "trees", "#00ff00"),)
    assert read_scheme(path, mine) == mine
    assert class_names(path, "water") == {0: "land", 1: "water"}


def test_names_without_a_scheme_come_from_class_tags(tmp_path: Path) -> None:
    bare = _raster(tmp_path / "bare.tif")
    assert read_scheme(bare) == () and class_names(bare) == {}
    tagged = _raster(
        tmp_path / "t.tif",
        tags={"CLASS_1": "old", "CLASS_2": "grass"},
        band_tags={"CLASS_1": "wet"},
    )
    assert read_scheme(tagged) == ()  # names, but no colors
    assert class_names(tagged) == {1: "wet", 2: "grass"}  # band tags win
    foreign = _raster(tmp_path / "f.tif", tags={"classes": json.dumps({"1": "a", "5": "b"})})
    assert class_names(foreign) == {1: "a", 5: "b"}
    other = _raster(tmp_path / "o.tif", tags={"classes": "a,b,c"})  # another meaning: ignored
    assert class_names(other) == {}


@pytest.mark.parametrize(
    "tag",
    [
        "{not json",
        json.dumps({"id": 1}),
        json.dumps([{"id": 1, "name": "x"}]),
        json.dumps([{"id": 300, "name": "x", "color": "#000000"}]),
        "[]",
    ],
)
def test_an_unreadable_tag_is_one_line_that_says_what_to_do(tmp_path: Path, tag: str) -> None:
    path = _raster(tmp_path / "bad.tif", tags={SCHEME_TAG: tag})
    for read in (read_scheme, class_names):
        with pytest.raises(InputError) as info:
            read(path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg
        assert "unreadable GEOSEG_CLASSES tag" in msg and "pass scheme=NAME|PATH" in msg
        assert "fix or remove the tag" in msg
    assert class_names(path, "water") == {0: "land", 1: "water"}  # --scheme gets past it


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_every_command_has_the_same_policy_on_a_bad_tag(tmp_path: Path) -> None:
    bad = _raster(tmp_path / "bad.tif", tags={SCHEME_TAG: "{not json"})
    other = _raster(tmp_path / "other.tif", tags={SCHEME_TAG: json.dumps(CLASSES3)})
    runs = {
        "stats": ("stats", str(bad)),
        "vectorize": ("vectorize", str(bad), "-o", str(tmp_path / "v.gpkg")),
        "quicklook": ("quicklook", str(bad), "-o", str(tmp_path / "q.png")),
        "change": ("change", str(bad), str(other), "-o", str(tmp_path / "chg")),
        "eval": ("eval", str(bad), str(other)),
    }
    for name, args in runs.items():
        res = _cli(*args)
        err = res.stderr.strip()
        assert res.exit_code == 2, (name, res.output, res.exception)
        assert err.startswith("error: ") and "\n" not in err, (name, err)
        assert f"{bad} has an unreadable GEOSEG_CLASSES tag" in err, (name, err)
        assert "pass --scheme" in err, (name, err)


def test_open_class_raster_refuses_other_rasters_with_one_line(tmp_path: Path) -> None:
    with open_class_raster(_raster(tmp_path / "c.tif")) as ds:
        assert ds.count == 1
    cases = {
        "float": (_raster(tmp_path / "f.tif", IDS.astype("float32")), {}, "1 band(s) of float32"),
        "bands": (_raster(tmp_path / "b.tif", count=3), {}, "3 band(s) of uint8"),
        "int16 where uint8 is needed": (
            _raster(tmp_path / "i.tif", IDS.astype("int16")),
            {"uint8": True},
            "single-band uint8",
        ),
        "no crs": (_raster(tmp_path / "n.tif", crs=None), {"crs_reason": "so X"}, "no CRS, so X"),
    }
    for name, (path, options, match) in cases.items():
        with pytest.raises(InputError) as info:
            open_class_raster(path, command="stats", **options)
        assert match in str(info.value) and "\n" not in str(info.value), name
    with pytest.raises(VectorizeError):
        open_class_raster(tmp_path / "b.tif", error=VectorizeError)
    with pytest.raises(RasterReadError, match="cannot open class raster .*; check the path"):
        open_class_raster(tmp_path / "missing.tif")
    with open_class_raster(_raster(tmp_path / "i32.tif", IDS.astype("int32"))) as ds:
        assert ds.dtypes[0] == "int32"


def test_select_classes_by_id_or_name() -> None:
    nlcd = load_scheme("nlcd8")
    assert [c.id for c in select_classes(nlcd, ["Water", "2", 3])] == [1, 2, 3]
    with pytest.raises(InputError, match=r"class 'lava' is not in the scheme \(.*1=water.*fix -c"):
        select_classes(nlcd, ["lava"], option="-c")


# -- alignment (geoseg.io.align): one tolerance, one error type ------------------


def test_same_grid_takes_the_stricter_tolerance() -> None:
    from geoseg.io.align import RasterGrid

    utm = RasterGrid(rasterio.CRS.from_string(UTM), T, (3, 4))
    assert utm.same_as(RasterGrid(utm.crs, T * Affine.translation(1e-12, 0), (3, 4)))
    # 1e-7 m is far under a millionth of a 30 m pixel, but over 1e-9 CRS units
    assert not utm.same_as(RasterGrid(utm.crs, Affine(30, 0, 500000 + 1e-7, 0, -30, 4.5e6), (3, 4)))
    degrees = RasterGrid(rasterio.CRS.from_epsg(4326), Affine(1e-5, 0, 10, 0, -1e-5, 50), (3, 4))
    # 1e-10° is under 1e-9 units, but a hundred-thousandth of this pixel
    shifted = Affine(1e-5, 0, 10 + 1e-10, 0, -1e-5, 50)
    assert not degrees.same_as(RasterGrid(degrees.crs, shifted, (3, 4)))
    assert not utm.same_as(RasterGrid(utm.crs, T, (4, 4)))


def test_grids_that_cannot_be_aligned_are_one_error_type(tmp_path: Path) -> None:
    from geoseg.change import align
    from geoseg.errors import AlignmentError
    from geoseg.io.align import RasterGrid, check_overlap
    from geoseg.train.evaluate import evaluate

    here = RasterGrid(rasterio.CRS.from_string(UTM), T, (3, 4))
    far = RasterGrid(here.crs, Affine(30, 0, 900000, 0, -30, 100000), (3, 4))
    with pytest.raises(AlignmentError, match=r"^b \(EPSG:32612, 30×30 .*does not overlap a \("):
        check_overlap(far, here, name="b", ref_name="a")
    with pytest.raises(AlignmentError, match="has no CRS and their grids differ"):
        check_overlap(RasterGrid(None, far.transform, (3, 4)), here, name="b", ref_name="a")
    check_overlap(RasterGrid(None, T, (3, 4)), RasterGrid(None, T, (3, 4)), name="b", ref_name="a")
    tags = {SCHEME_TAG: json.dumps(CLASSES3)}
    a = _raster(tmp_path / "a.tif", tags=tags)
    with rasterio.open(a) as ds:
        profile = {**ds.profile, "transform": far.transform}
    b = tmp_path / "b.tif"
    with rasterio.open(b, "w", **profile) as ds:
        ds.write(IDS, 1)
    with pytest.raises(AlignmentError, match="does not overlap"):
        evaluate(a, b)
    with pytest.raises(AlignmentError, match="does not overlap"), align([a, b]):
        pass


# -- --scheme on every command that reads a class raster (issue 16 part 3) -------

WC = np.array(  # ESA WorldCover ids, no tags: a class raster geoseg did not write
    [[10, 10, 10, 50, 50, 50]] * 3 + [[80, 80, 10, 10, 50, 50]] * 3, dtype=np.uint8
)
WC_LATER = np.where(WC == 10, 50, WC).astype(np.uint8)  # the trees are built up


def _ok(*args: str) -> Any:
    res = _cli(*args)
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


def test_stats_names_a_foreign_raster_with_a_catalog_scheme(tmp_path: Path) -> None:
    wc = _raster(tmp_path / "wc.tif", WC)
    assert "class_10" in _ok("stats", str(wc)).stdout
    out = _ok("stats", str(wc), "--scheme", "esa-worldcover").stdout
    assert "tree cover" in out and "built-up" in out and "permanent water bodies" in out
    assert "class_10" not in out


def test_vectorize_names_styles_and_selects_by_name(tmp_path: Path) -> None:
    import sqlite3

    import geopandas as gpd

    wc = _raster(tmp_path / "wc.tif", WC)
    out = tmp_path / "wc.gpkg"
    _ok("vectorize", str(wc), "-o", str(out), "--scheme", "esa-worldcover")
    gdf = gpd.read_file(out)
    assert set(gdf["class_name"]) == {"tree cover", "built-up", "permanent water bodies"}
    with sqlite3.connect(out) as db:  # the QGIS style travels inside the GeoPackage
        [(qml,)] = db.execute("SELECT styleQML FROM layer_styles").fetchall()
    assert "tree cover" in qml and "0,100,0" in qml
    some = tmp_path / "some.gpkg"
    _ok(
        "vectorize",
        str(wc),
        "-o",
        str(some),
        "--scheme",
        "esa-worldcover",
        "--classes",
        "Tree Cover,80",
    )
    assert set(gpd.read_file(some)["class_id"]) == {10, 80}
    res = _cli("vectorize", str(wc), "-o", str(tmp_path / "x.gpkg"), "--classes", "tree cover")
    err = res.stderr.strip()
    assert res.exit_code == 2 and "\n" not in err
    assert "no class named 'tree cover'; known names: none" in err and "--scheme" in err
    res = _cli(
        "vectorize", str(wc), "-o", str(tmp_path / "y.gpkg"), "--scheme", "esa-worldcover",
        "--classes", "lava",
    )  # fmt: skip
    assert res.exit_code == 2 and "known names: bare / sparse vegetation, built-up" in res.stderr
    assert (
        "no class scheme 'nope'"
        in _cli("vectorize", str(wc), "-o", str(tmp_path / "z.gpkg"), "--scheme", "nope").stderr
    )


def test_quicklook_colors_and_legend_from_the_scheme(tmp_path: Path) -> None:
    from PIL import Image

    wc = _raster(tmp_path / "wc.tif", WC)
    png = tmp_path / "wc.png"
    _ok("quicklook", str(wc), "-o", str(png), "--scheme", "esa-worldcover")
    colors = {c[1][:3] for c in Image.open(png).convert("RGB").getcolors(1 << 20) or []}
    assert {(0, 100, 0), (250, 0, 0), (0, 100, 200)} <= colors  # scheme colors, not generated


def test_change_rules_name_classes_of_the_scheme(tmp_path: Path) -> None:
    t0 = _raster(tmp_path / "t0.tif", WC)
    t1 = _raster(tmp_path / "t1.tif", WC_LATER)
    rule = ["--rule", "built=tree cover:built-up"]
    res = _cli("change", str(t0), str(t1), "-o", str(tmp_path / "no"), *rule)
    assert res.exit_code == 2 and "tree cover" in res.stderr  # no names without a scheme
    out = tmp_path / "chg"
    res = _ok("change", str(t0), str(t1), "-o", str(out), *rule, "--scheme", "esa-worldcover")
    assert "tree cover" in res.stdout and "built-up" in res.stdout
    record = json.loads((out / "change_run.json").read_text())
    assert record["scheme"] == "esa-worldcover"


def test_eval_scores_a_foreign_raster_by_class_names(tmp_path: Path) -> None:
    pred = _raster(tmp_path / "p.tif", WC)
    truth = _raster(tmp_path / "t.tif", WC_LATER)
    res = _ok(
        "eval",
        str(pred),
        str(truth),
        "--scheme",
        "esa-worldcover",
        "--classes",
        "tree cover,built-up",
    )
    assert "tree cover" in res.stdout and "built-up" in res.stdout
