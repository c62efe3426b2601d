"""geoseg eval: hand-computed scores, truth on other grids or as polygons, nodata, errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.errors import InputError
from geoseg.train.evaluate import ModelRef, compare_bundles, evaluate
from geoseg.train.scores import write_json, write_png
from tests.common import REPO, write_raster

T10 = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)

PRED = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 255], [1, 1, 0, 0]], dtype=np.uint8)
TRUTH = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [255, 0, 1, 1], [1, 0, 0, 0]], dtype=np.uint8)
# pairs (truth, pred) without the pred-nodata (2,3) and truth-nodata (2,0) pixels:
# t0p0 = 6, t0p1 = 2, t1p0 = 1, t1p1 = 5
HAND = [[6, 2], [1, 5]]


def _classes(path: Path, data: np.ndarray, *, transform: Affine = T10, **kw: object) -> Path:
    return write_raster(path, data[None], transform=transform, **kw)  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    pred = _classes(tmp_path / "pred.tif", PRED, nodata=255)
    truth = _classes(tmp_path / "truth.tif", TRUTH, nodata=255)
    return pred, truth


def test_hand_computed_confusion_matrix(tiny: tuple[Path, Path]) -> None:
    res = evaluate(*tiny, scheme="water")
    cm = res.matrix
    assert cm.matrix.tolist() == HAND
    assert not res.reprojected
    pc = cm.per_class()
    assert pc["iou"] == pytest.approx([6 / 9, 5 / 8])
    assert pc["precision"] == pytest.approx([6 / 7, 5 / 7])
    assert pc["recall"] == pytest.approx([6 / 8, 5 / 6])
    assert pc["f1"] == pytest.approx([12 / 15, 10 / 13])
    assert cm.miou == pytest.approx((6 / 9 + 5 / 8) / 2)
    assert cm.overall_accuracy == pytest.approx(11 / 14)
    text = res.table()
    assert "mIoU 0.646   overall accuracy 0.786   pixels 14" in text
    assert "water" in text and "confusion matrix" in text


def test_nodata_from_masks_and_values_is_ignored_on_both_sides(tmp_path: Path) -> None:
    # the same nodata expressed as an internal mask instead of a nodata value
    pred = _classes(tmp_path / "p.tif", np.where(PRED == 255, 0, PRED), mask=PRED != 255)
    truth = _classes(tmp_path / "t.tif", np.where(TRUTH == 255, 1, TRUTH), mask=TRUTH != 255)
    assert evaluate(pred, truth, scheme="water").matrix.matrix.tolist() == HAND


def test_truth_at_half_resolution_is_resampled_nearest(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 2, (8, 8)).astype(np.uint8)
    coarse = rng.integers(0, 2, (4, 4)).astype(np.uint8)
    p = _classes(tmp_path / "pred.tif", pred, nodata=255)
    t = _classes(
        tmp_path / "truth.tif", coarse, transform=Affine(20.0, 0.0, 1000.0, 0.0, -20.0, 2000.0)
    )
    res = evaluate(p, t, scheme="water")
    assert res.reprojected
    fine = np.kron(coarse, np.ones((2, 2), dtype=np.uint8))
    want = np.bincount(fine.ravel() * 2 + pred.ravel(), minlength=4).reshape(2, 2)
    assert res.matrix.matrix.tolist() == want.tolist()


def test_shifted_truth_counts_only_the_overlap_even_without_nodata(tmp_path: Path) -> None:
    """Outside its footprint the truth has no value: not class 0, even with no nodata set."""
    rng = np.random.default_rng(2)
    pred = rng.integers(0, 2, (8, 8)).astype(np.uint8)
    truth = rng.integers(0, 2, (8, 8)).astype(np.uint8)
    p = _classes(tmp_path / "pred.tif", pred, nodata=255)
    # truth origin 3 pixels right and 2 pixels down: overlaps pred rows 2..7, cols 3..7
    t = _classes(
        tmp_path / "truth.tif", truth, transform=Affine(10.0, 0.0, 1030.0, 0.0, -10.0, 1980.0)
    )
    res = evaluate(p, t, scheme="water")
    overlap_pred = pred[2:, 3:]
    overlap_truth = truth[:6, :5]
    want = np.bincount(overlap_truth.ravel() * 2 + overlap_pred.ravel(), minlength=4)
    assert res.matrix.matrix.ravel().tolist() == want.tolist()
    assert res.matrix.total == 30
    # any window size gives the same counts
    again = evaluate(p, t, scheme="water", window_pixels=8)
    assert again.matrix.matrix.tolist() == res.matrix.matrix.tolist()


def test_truth_in_another_crs(tmp_path: Path) -> None:
    """A truth in geographic coordinates is warped onto the UTM prediction grid."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    rng = np.random.default_rng(4)
    blocks = np.kron(rng.integers(0, 2, (6, 6)), np.ones((10, 10))).astype(np.uint8)
    p = _classes(
        tmp_path / "pred.tif",
        blocks,
        nodata=255,
        crs="EPSG:32612",
        transform=Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4150000.0),
    )
    # the truth is the prediction itself, reprojected to EPSG:4326
    dst_t, w, h = calculate_default_transform(
        "EPSG:32612", "EPSG:4326", 60, 60, 300000.0, 4148200.0, 301800.0, 4150000.0
    )
    geo = np.full((h, w), 255, dtype=np.uint8)
    reproject(
        blocks,
        geo,
        src_transform=Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4150000.0),
        src_crs="EPSG:32612",
        dst_transform=dst_t,
        dst_crs="EPSG:4326",
        resampling=Resampling.nearest,
        dst_nodata=255,
    )
    t = _classes(tmp_path / "truth.tif", geo, nodata=255, crs="EPSG:4326", transform=dst_t)
    res = evaluate(p, t, scheme="water")
    assert res.reprojected
    # two nearest resamplings move only pixels next to block edges
    assert res.matrix.overall_accuracy > 0.9
    assert res.matrix.total > 0.9 * 3600


def test_non_overlapping_rasters_are_refused(tmp_path: Path) -> None:
    p = _classes(tmp_path / "pred.tif", PRED, nodata=255)
    far = Affine(10.0, 0.0, 90000.0, 0.0, -10.0, 2000.0)
    t = _classes(tmp_path / "truth.tif", TRUTH, nodata=255, transform=far)
    with pytest.raises(InputError, match="do not overlap"):
        evaluate(p, t, scheme="water")


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("float", "not class ids"),
        ("no-scheme", "scheme="),
        ("unknown-id", r"class ids \[7\]"),
        ("all-nodata", "no pixel has data"),
    ],
)
def test_bad_inputs(tmp_path: Path, kind: str, match: str) -> None:
    pred, truth, scheme = PRED, TRUTH, "water"
    if kind == "float":
        p = write_raster(tmp_path / "p.tif", PRED[None].astype("float32"), transform=T10)
    else:
        if kind == "no-scheme":
            scheme = None  # type: ignore[assignment]
        if kind == "unknown-id":
            pred = np.where(PRED == 1, 7, PRED).astype(np.uint8)
        if kind == "all-nodata":
            truth = np.full_like(TRUTH, 255)
        p = _classes(tmp_path / "p.tif", pred, nodata=255)
    t = _classes(tmp_path / "t.tif", truth, nodata=255)
    with pytest.raises(InputError, match=match):
        evaluate(p, t, scheme=scheme)


def test_class_subset_sends_other_predictions_to_other(tmp_path: Path) -> None:
    pred = np.array([[1, 2, 5], [1, 1, 2]], dtype=np.uint8)
    truth = np.array([[1, 1, 1], [2, 5, 2]], dtype=np.uint8)
    scheme = tmp_path / "three.yaml"
    scheme.write_text(
        "classes:\n"
        "  - {id: 1, name: water, color: '#1f78b4'}\n"
        "  - {id: 2, name: forest, color: '#33a02c'}\n"
        "  - {id: 5, name: bare, color: '#b15928'}\n",
        encoding="utf-8",
    )
    p = _classes(tmp_path / "p.tif", pred, nodata=255)
    t = _classes(tmp_path / "t.tif", truth, nodata=255)
    res = evaluate(p, t, scheme=scheme, classes=["1", "forest"])
    # truth 5 (bare) is ignored; pred 5 under truth water counts as 'other'
    assert res.names == ["water", "forest", "other"]
    # pairs (truth, pred): (1,1) (1,2) (1,5->other) (2,1) (5: ignored) (2,2)
    assert res.matrix.matrix.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(InputError, match="not in the scheme"):
        evaluate(p, t, scheme=scheme, classes=["cloud"])


def test_json_and_png_are_written(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import matplotlib.image

    res = evaluate(*tiny, scheme="water")
    write_json(res, tmp_path / "scores.json")
    doc = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert doc["confusion"] == HAND
    assert doc["per_class"]["water"]["iou"] == pytest.approx(5 / 8)
    assert doc["overall_accuracy"] == pytest.approx(11 / 14)
    assert [c["name"] for c in doc["classes"]] == ["land", "water"]
    write_png(res, tmp_path / "cm.png")
    img = matplotlib.image.imread(tmp_path / "cm.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_embedded_scheme_of_a_geoseg_class_raster(tmp_path: Path) -> None:
    scene = REPO / "data" / "water" / "olinda_landsat7_etm_6band.tif"
    truth = REPO / "data" / "water" / "olinda_water_mndwi_otsu.tif"
    [res] = compare_bundles(
        scene, truth, [ModelRef("ndwi", (2, 4))], out_dir=tmp_path, device="cpu"
    )
    assert res.extra["model"] == "ndwi"
    again = evaluate(tmp_path / "ndwi" / "olinda_landsat7_etm_6band_classes.tif", truth)
    assert again.names == ["land", "water"]  # read from the raster, no --scheme
    assert again.matrix.matrix.tolist() == res.matrix.matrix.tolist()


def test_cli_single_and_errors(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    pred, truth = tiny
    out = CliRunner().invoke(
        cli,
        [
            "eval",
            str(pred),
            str(truth),
            "--scheme",
            "water",
            "--json",
            str(tmp_path / "s.json"),
            "--png",
            str(tmp_path / "s.png"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "overall accuracy 0.786" in out.output
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["confusion"] == HAND
    assert (tmp_path / "s.png").stat().st_size > 1000
    far = _classes(
        tmp_path / "far.tif",
        TRUTH,
        nodata=255,
        transform=Affine(10.0, 0.0, 90000.0, 0.0, -10.0, 2000.0),
    )
    bad = CliRunner().invoke(cli, ["eval", str(pred), str(far), "--scheme", "water"])
    assert bad.exit_code == 2
    assert "do not overlap" in bad.output and "Traceback" not in bad.output
    usage = CliRunner().invoke(cli, ["eval", str(pred)])
    assert usage.exit_code == 2 and "prediction and a truth" in usage.output


def test_cli_compares_bundles_side_by_side(tmp_path: Path) -> None:
    scene = REPO / "data" / "water" / "olinda_landsat7_etm_6band.tif"
    truth = REPO / "data" / "water" / "olinda_water_mndwi_otsu.tif"
    out = CliRunner().invoke(
        cli,
        [
            "eval",
            "--image",
            str(scene),
            "--truth",
            str(truth),
            "--model",
            "ndwi@2,4",
            "--model",
            "ndwi-otsu@2,4",
            "--out",
            str(tmp_path / "runs"),
            "--device",
            "cpu",
            "--json",
            str(tmp_path / "cmp.json"),
            "--png",
            str(tmp_path / "cmp.png"),
        ],
    )
    assert out.exit_code == 0, out.output
    head = out.output.splitlines()
    assert head[0].split()[:3] == ["model", "mIoU", "OA"]
    assert head[2].startswith("ndwi ") and head[3].startswith("ndwi-otsu ")
    doc = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert [d["model"] for d in doc] == ["ndwi", "ndwi-otsu"]
    assert doc[1]["index"]["threshold"]["otsu"]["scene"] == "olinda_landsat7_etm_6band"
    assert doc[0]["pixels"] == doc[1]["pixels"] > 100_000
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_model_ref_parsing() -> None:
    assert ModelRef.parse("ndwi-otsu@2,4") == ModelRef("ndwi-otsu", (2, 4))
    assert ModelRef.parse("water@blue,green,red,nir").bands == ("blue", "green", "red", "nir")
    assert ModelRef.parse("path/to/m.bundle") == ModelRef("path/to/m.bundle")
    with pytest.raises(InputError, match="NAME@BANDS"):
        ModelRef.parse("water@")


def test_bundles_with_the_same_name_get_their_own_folders(tmp_path: Path) -> None:
    scene = REPO / "data" / "water" / "olinda_landsat7_etm_6band.tif"
    truth = REPO / "data" / "water" / "olinda_water_mndwi_otsu.tif"
    res = compare_bundles(scene, truth, ["ndwi@2,4", "ndwi@2,4"], out_dir=tmp_path, device="cpu")
    assert [r.extra["model"] for r in res] == ["ndwi", "ndwi-2"]
    assert (tmp_path / "ndwi-2" / "olinda_landsat7_etm_6band_classes.tif").exists()
    assert res[0].matrix.matrix.tolist() == res[1].matrix.matrix.tolist()


def _truth_polygons(path: Path, *, names: bool = False, crs: str = "EPSG:32612") -> Path:
    """TRUTH's labelled pixels as polygons (one per connected region), class in 'class'."""
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes

    scheme = {0: "land", 1: "water"}
    rows = [
        (shapely.geometry.shape(geom), scheme[int(v)] if names else int(v))
        for geom, v in shapes(TRUTH, mask=TRUTH != 255, transform=T10)
    ]
    df = gpd.GeoDataFrame(
        {"class": [v for _, v in rows], "note": ["x"] * len(rows)},
        geometry=[g for g, _ in rows],
        crs="EPSG:32612",
    ).to_crs(crs)
    df.to_file(path)
    return path


@pytest.mark.parametrize("names", [False, True], ids=["ids", "names"])
@pytest.mark.parametrize("window_pixels", [4, 1 << 21])
def test_truth_polygons_score_as_the_raster_they_came_from(
    tiny: tuple[Path, Path], tmp_path: Path, names: bool, window_pixels: int
) -> None:
    pred, _ = tiny
    gpkg = _truth_polygons(tmp_path / "truth.gpkg", names=names)
    res = evaluate(pred, gpkg, scheme="water", field="class", window_pixels=window_pixels)
    assert res.matrix.matrix.tolist() == HAND
    assert res.extra["truth_polygons"] == 3  # one per connected region of TRUTH


def test_truth_polygons_in_another_crs_are_reprojected(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    pred, _ = tiny
    geojson = _truth_polygons(tmp_path / "truth.geojson", crs="EPSG:4326")
    res = evaluate(pred, geojson, scheme="water", field="class")
    assert res.matrix.matrix.tolist() == HAND


def test_pixels_outside_truth_polygons_are_not_scored(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import geopandas as gpd
    import shapely

    pred, _ = tiny
    # one polygon over the top-left 2x2 pixels (pred 0,0,0,1), labelled land
    box = shapely.box(1000.0, 1980.0, 1020.0, 2000.0)
    path = tmp_path / "one.gpkg"
    gpd.GeoDataFrame({"class": ["land"]}, geometry=[box], crs="EPSG:32612").to_file(path)
    res = evaluate(pred, path, scheme="water", field="class")
    assert res.matrix.matrix.tolist() == [[3, 1], [0, 0]]


@pytest.mark.parametrize(
    ("field", "values", "match"),
    [
        (None, ["land"], "no field=... given .*available: class"),
        ("klass", ["land"], "no attribute 'klass'.*available: class"),
        ("class", ["lava"], "name a class that is not in the scheme"),
    ],
)
def test_truth_polygon_errors(
    tiny: tuple[Path, Path], tmp_path: Path, field: str | None, values: list[str], match: str
) -> None:
    import geopandas as gpd
    import shapely

    pred, _ = tiny
    path = tmp_path / "bad.gpkg"
    geoms = [shapely.box(1000.0, 1980.0, 1020.0, 2000.0)]
    gpd.GeoDataFrame({"class": values}, geometry=geoms, crs="EPSG:32612").to_file(path)
    with pytest.raises(InputError, match=match):
        evaluate(pred, path, scheme="water", field=field)


def test_truth_polygons_far_away_are_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    pred, _ = tiny
    path = tmp_path / "far.gpkg"
    geoms = [shapely.box(90000.0, 1980.0, 90020.0, 2000.0)]
    gpd.GeoDataFrame({"class": [1]}, geometry=geoms, crs="EPSG:32612").to_file(path)
    with pytest.raises(InputError, match="do not overlap"):
        evaluate(pred, path, scheme="water", field="class")


def test_cli_truth_polygons(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    pred, _ = tiny
    gpkg = _truth_polygons(tmp_path / "truth.gpkg", names=True)
    args = ["eval", str(pred), str(gpkg), "--scheme", "water", "--field", "class"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "overall accuracy 0.786" in out.output
    bad = CliRunner().invoke(cli, args[:-2])
    assert bad.exit_code == 2 and "pass --field" not in bad.output
    assert "set --field to the attribute" in bad.stderr and "\n" not in bad.stderr.strip()
