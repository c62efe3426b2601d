"""The domain a training run records, measured on the shipped landcover config's training zones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoseg.sensors.domain import check_scene
from geoseg.train.config import load_config
from geoseg.train.domain import training_domain
from geoseg.train.loop import prepare_data
from tests.common import DATA, REPO


@pytest.fixture(scope="module")
def landcover() -> tuple:
    cfg = load_config(REPO / "workflows" / "train-landcover.yaml")
    prep = prepare_data(cfg)
    return cfg, prep, training_domain(prep.images, prep.counts, cfg)


def test_domain_of_the_landcover_training_zones(landcover: tuple) -> None:
    cfg, prep, domain = landcover
    assert domain.bands == ("blue", "green", "red", "nir")
    assert (domain.quantity, domain.dtype, domain.resolution_m) == ("dn", "uint16", (30.0, 30.0))
    img = prep.images[0]
    zone = img.raw[:, img.valid & img.train_zone].astype(float)
    assert np.allclose(domain.p50, np.percentile(zone, 50, axis=1), rtol=1e-3)  # a 1M sample
    # the validation region is left out: its medians differ from the domain's
    val = img.raw[:, img.valid & img.val].astype(float)
    assert not np.allclose(domain.p50, np.percentile(val, 50, axis=1))
    assert domain.class_fractions is not None
    assert sum(domain.class_fractions) == pytest.approx(1.0)
    assert np.argmax(domain.class_fractions) == 4  # shrubland, the training majority


def test_an_8_bit_aerial_photo_is_refused_by_that_domain(landcover: tuple) -> None:
    _, _, domain = landcover
    with rasterio.open(DATA / "water" / "naip_lakes_2020-08-31.tif") as ds:
        sample = ds.read([3, 2, 1, 4], out_shape=(4, 180, 240)).reshape(4, -1)
    check = check_scene(domain, sample=sample, resolution_m=5.0, dtype="uint8", compare_values=True)
    assert len(check.refuse) == 5  # four bands far below, and 5 m against 30 m


def test_a_trained_bundle_records_its_domain(landcover: tuple, tmp_path: Path) -> None:
    from geoseg.models.bundle import load_bundle
    from geoseg.sensors.domain import InputDomain
    from geoseg.train import run_training

    cfg = load_config(
        REPO / "workflows" / "train-landcover.yaml",
        epochs=1,
        sampling={"mode": "random", "chips_per_epoch": 8, "class_balanced": True},
        out=str(tmp_path / "lc.bundle"),
        record=str(tmp_path / "lc.train"),
        card=str(tmp_path / "card.md"),  # never the shipped card
    )
    _, paths = run_training(cfg, progress=False)
    import dataclasses

    bundle = load_bundle(paths["bundle"])
    recorded = InputDomain.from_dict(bundle.meta["domain"])
    assert dataclasses.replace(recorded, val_mean_confidence=None) == landcover[2]
    # the winning softmax probability: at least 1/classes, at most 1, measured on validation
    conf = recorded.val_mean_confidence
    assert conf is not None and 1 / len(bundle.classes) <= conf < 1


@pytest.mark.parametrize(
    "name",
    ["landcover-nlcd8", "water", "forest", "forest-water", "landcover-wc5", "water-swir", "cloud"],
)
def test_each_shipped_bundle_records_the_domain_its_config_measures(name: str) -> None:
    from geoseg.models.bundle import load_bundle
    from geoseg.sensors.domain import InputDomain

    bundle = load_bundle(name)
    config = "landcover" if name == "landcover-nlcd8" else name
    cfg = load_config(REPO / "workflows" / f"train-{config}.yaml")
    prep = prepare_data(cfg)
    expected = training_domain(prep.images, prep.counts, cfg)
    recorded = InputDomain.from_dict(bundle.meta["domain"])
    # the validation mean confidence is measured by training (bundles trained since 0.2)
    assert dataclasses.replace(recorded, val_mean_confidence=None) == expected


def test_bundle_info_shows_the_domain() -> None:
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    out = CliRunner().invoke(cli, ["bundle", "info", "landcover-nlcd8"])
    assert out.exit_code == 0
    assert (
        "domain      dn; uint16; sensors landsat8-c2l1; 30 m; 1st-99th pct blue 8208-" in out.output
    )
