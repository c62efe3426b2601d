"""Sensor presets: band roles from ids, file names and file metadata; reflectance; detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.enums import ColorInterp

from geoseg.cli.sensors_cmd import sensors
from geoseg.errors import InputError
from geoseg.sensors.presets import (
    COMMON_NAMES,
    PRESETS,
    canonical_band,
    detect_preset,
    file_band_roles,
    get_preset,
    match_roles,
    sentinel2_offset,
)
from tests.common import ZION, write_raster

# (preset, band id as products name it, role): one row per band family and sensor
ROLES = [
    ("sentinel2-l2a", "B02", "blue"),
    ("sentinel2-l2a", "B8A", "nir08"),
    ("sentinel2-l2a", "B08", "nir"),
    ("sentinel2-l1c", "B11", "swir1"),
    ("sentinel2-l1c", "B12", "swir2"),
    ("landsat5-c2l2", "SR_B4", "nir"),  # TM band 4 is NIR ...
    ("landsat8-c2l2", "SR_B4", "red"),  # ... and OLI band 4 is red
    ("landsat7-c2l1", "B5", "swir1"),
    ("landsat7-c2l1", "B7", "swir2"),
    ("landsat8-c2l1", "B6", "swir1"),
    ("landsat8-c2l1", "LC08_L1TP_038034_20150818_20200908_02_T1_B5.TIF", "nir"),
    ("landsat-c1-sr", "LE70350322012177EDC00_b5.tif", "swir1"),
    ("aerial-rgbn-8bit", "1", "red"),
    ("planetscope-4band", "1", "blue"),
    ("planetscope-8band", "6", "red"),
]


@pytest.mark.parametrize(("preset", "band", "role"), ROLES)
def test_band_roles_by_sensor(preset: str, band: str, role: str) -> None:
    assert get_preset(preset).role(band) == role


@pytest.mark.parametrize(
    ("name", "common"),
    [
        ("swir16", "swir1"),
        ("swir22", "swir2"),
        ("nir08", "nir08"),
        ("coastal", "coastal"),
        ("Red", "red"),
        ("NIR", "nir"),
        ("B04", None),
        ("gray", None),
    ],
)
def test_common_names_and_stac_aliases(name: str, common: str | None) -> None:
    assert canonical_band(name) == common


def test_every_preset_maps_only_to_common_names() -> None:
    for preset in PRESETS.values():
        roles = set(preset.bands.values())
        assert roles <= set(COMMON_NAMES), preset.name
        assert all(canonical_band(r) == r for r in roles), preset.name  # no alias as a role
        assert preset.valid_range[0] < preset.valid_range[1]


@pytest.mark.parametrize(
    ("preset", "dn", "reflectance"),
    [
        ("landsat8-c2l2", 7273, 0.0),  # the published bounds of valid SR values
        ("landsat8-c2l2", 43636, 1.0),
        ("landsat5-c2l2", 21818, 0.4),
        ("landsat8-c2l1", 10000, 0.1),
        ("sentinel2-l2a", 1000, 0.0),  # baseline 04.00+: dn 1000 is reflectance 0
        ("sentinel2-l1c", 3500, 0.25),
        ("aerial-rgbn-8bit", 255, 1.0),
        ("planetscope-4band", 2500, 0.25),
    ],
)
def test_published_scale_and_offset(preset: str, dn: float, reflectance: float) -> None:
    assert get_preset(preset).to_reflectance(dn) == pytest.approx(reflectance, abs=1e-4)


def test_sentinel2_offsets_from_metadata() -> None:
    # before baseline 04.00 there is no offset; from it on, the metadata states it
    assert sentinel2_offset({"PROCESSING_BASELINE": "02.09"}, "toa") == 0.0
    assert sentinel2_offset({"PROCESSING_BASELINE": "04.00"}, "toa") == -0.1
    assert sentinel2_offset({"RADIO_ADD_OFFSET": "-1000"}, "toa") == -0.1
    assert sentinel2_offset({"BOA_ADD_OFFSET": "-1000"}, "toa") is None  # L2A key, L1C asked
    assert sentinel2_offset({}, "sr") is None


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("LT05_L2SP_038034_19900818_20200915_02_T1_SR_B3.TIF", "landsat5-c2l2"),
        ("LT04_L1TP_038034_19880818_20200917_02_T1_B1.TIF", "landsat5-c2l1"),
        ("LE07_L2SP_217066_20020316_20200916_02_T1_SR_B4.TIF", "landsat7-c2l2"),
        ("LE07_L1TP_217066_20020316_20200916_02_T1_B4.TIF", "landsat7-c2l1"),
        ("LC09_L2SP_038034_20220818_20230405_02_T1_SR_B2.TIF", "landsat8-c2l2"),
        ("/data/LC08_L1TP_038034_20150818_20200908_02_T1/", "landsat8-c2l1"),
        ("S2A_MSIL2A_20230612T101559_N0509_R065_T32TQM_20230612T163204.SAFE", "sentinel2-l2a"),
        ("m_4609915_sw_14_060_20200831.tif", "aerial-rgbn-8bit"),
        ("20230601_101010_24_2212_3B_AnalyticMS_SR_8b_clip.tif", "planetscope-8band"),
        ("20230601_101010_24_2212_3B_AnalyticMS_SR.tif", "planetscope-4band"),
        ("T33UUU_20170216T102101_B8A.jp2", "sentinel2-l1c"),
        ("T33UUU_20230216T102101_B11_20m.jp2", "sentinel2-l2a"),
        ("LE70350322012177EDC00_b3.tif", "landsat-c1-sr"),
        ("landsat8_2015-08-18_b2345.tif", None),
    ],
)
def test_detect_preset_from_product_names(name: str, preset: str | None) -> None:
    found = detect_preset(name)
    assert (found.name if found else None) == preset


def test_detect_sentinel2_from_gdal_metadata() -> None:
    tags = {"SPACECRAFT_NAME": "Sentinel-2B", "PROCESSING_LEVEL": "Level-2A"}
    assert detect_preset("x.tif", tags).name == "sentinel2-l2a"  # type: ignore[union-attr]
    tags["PROCESSING_LEVEL"] = "Level-1C"
    assert detect_preset("x.tif", tags).name == "sentinel2-l1c"  # type: ignore[union-attr]


def test_unknown_sensor_lists_the_presets() -> None:
    with pytest.raises(InputError, match="unknown sensor 'sentinel3'.*sentinel2-l2a.*landsat"):
        get_preset("sentinel3")


def test_roles_read_from_a_real_file(tmp_path: Path) -> None:
    """The shipped Zion scene names its bands B2..B5 (Landsat 8 OLI): blue, green, red, nir."""
    with rasterio.open(ZION) as ds:
        descriptions, ci = ds.descriptions, [c.name for c in ds.colorinterp]
    assert file_band_roles(descriptions, ci) == [None] * 4  # ids need the sensor
    roles = file_band_roles(descriptions, ci, preset=get_preset("landsat8-c2l1"))
    assert roles == ["blue", "green", "red", "nir"]
    assert match_roles(["green", "red", "nir"], roles) == [2, 3, 4]


def test_color_interpretation_gives_rgb_order(tmp_path: Path) -> None:
    """An R,G,B,NIR photo tagged as such is read as R,G,B,NIR, not as B,G,R,NIR."""
    path = write_raster(tmp_path / "rgbn.tif", np.zeros((4, 8, 8), np.uint8))
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        ]
        ds.set_band_description(4, "nir")
    with rasterio.open(path) as ds:
        roles = file_band_roles(ds.descriptions, [c.name for c in ds.colorinterp])
    assert roles == ["red", "green", "blue", "nir"]
    assert match_roles(["blue", "green", "red", "nir"], roles) == [3, 2, 1, 4]


def test_cli_lists_and_shows_presets() -> None:
    out = CliRunner().invoke(sensors, [])
    assert out.exit_code == 0 and all(name in out.output for name in PRESETS)
    one = CliRunner().invoke(sensors, ["landsat5-c2l2"])
    assert one.exit_code == 0 and "2.75e-05" in one.output and "B4  nir" in one.output
