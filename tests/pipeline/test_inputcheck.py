"""plan_input: the landcover bundle with its measured domain on real scenes of other sensors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from geoseg.errors import DomainError, SceneError
from geoseg.models.bundle import load_bundle
from geoseg.pipeline.check import plan_input
from geoseg.train.config import load_config
from geoseg.train.domain import training_domain
from geoseg.train.loop import prepare_data
from tests.common import DATA, REPO, ZION, reflectance_bundle

NAIP = DATA / "water" / "naip_lakes_2020-08-31.tif"
OLINDA = DATA / "water" / "olinda_landsat7_etm_6band.tif"


@pytest.fixture(scope="module")
def landcover() -> Any:
    """The shipped landcover bundle with the domain its training config measures."""
    cfg = load_config(REPO / "workflows" / "train-landcover.yaml")
    prep = prepare_data(cfg)
    domain = dataclasses.replace(
        training_domain(prep.images, prep.counts, cfg), sensors=("landsat8-c2l1",)
    )
    return load_bundle("landcover-nlcd8").with_meta(domain=domain.to_dict())


def test_its_own_scene_is_in_domain(landcover: Any) -> None:
    plan = plan_input(ZION, landcover)
    assert plan.scene.bands == (1, 2, 3, 4)
    assert plan.choice is not None and "landsat8-c2l1" in plan.choice.how
    assert plan.warnings == () and plan.refused_but_allowed == ()
    assert plan.normalization == landcover.meta["normalization"]


@pytest.mark.parametrize(
    ("scene", "options", "words"),
    [
        (NAIP, {"sensor": "naip"}, "band blue: values"),
        (NAIP, {"bands": [3, 2, 1, 4]}, "(the scene looks like 8-bit data)"),
        (OLINDA, {"bands": [1, 2, 3, 4]}, "lie far below the training range"),
    ],
)
def test_8_bit_scenes_are_refused(landcover: Any, scene: Path, options: dict, words: str) -> None:
    with pytest.raises(DomainError) as err:
        plan_input(scene, landcover, **options)
    text = str(err.value)
    assert "far outside what bundle 'landcover-nlcd8' was trained on" in text
    assert words in text and "allow_domain_shift=True" in text and "\n" not in text


def test_allowed_shift_is_recorded(landcover: Any) -> None:
    plan = plan_input(NAIP, landcover, sensor="naip", allow_domain_shift=True)
    assert plan.scene.bands == (3, 2, 1, 4)
    assert len(plan.refused_but_allowed) == 5  # four bands and the 5 m pixels
    assert plan.record()["domain_shift_allowed"] == list(plan.refused_but_allowed)


def test_unknown_band_order_is_refused_before_the_domain(landcover: Any) -> None:
    with pytest.raises(SceneError, match="does not say which band is which"):
        plan_input(NAIP, landcover)


def test_reflectance_bundle_gets_the_presets_conversion(tmp_path: Path) -> None:
    bundle, product = reflectance_bundle(tmp_path)
    plan = plan_input(product, bundle, bands=[1, 2, 3, 4], sensor="landsat8-c2l2")
    assert (plan.normalization["scale"], plan.normalization["offset"]) == (2.75e-05, -0.2)
    with pytest.raises(SceneError, match="trained on reflectance .* pass sensor="):
        plan_input(ZION, bundle, bands=[1, 2, 3, 4])
