"""Build the summer non-forest / water training pair of the forest-water bundle.

Run from the repository root: ``python scripts/forest_water_data.py`` (deterministic).
Writes into ``data/forest_water/``:

``naip_2020-08-31_10m.tif``
    The NAIP 2020 photo of ``data/water/`` (R, G, B, NIR, uint8, 5 m, North Dakota
    prairie potholes) averaged onto a 10 m grid (2 x 2 pixel means, rounded), bands
    named red, green, blue, nir. 10 m is the Sentinel-2 grid the bundle is meant for.
``naip_forest_water_weak_10m.tif``
    Weak labels on that grid in ``catalogs/forest-water.yaml`` ids: water (2) where all
    four 5 m pixels are water in ``data/water/naip_water_ndwi_otsu.tif`` (NDWI above its
    Otsu threshold), non-forest (0) where none is, 255 on mixed shore pixels.

``olinda_water_only_weak.tif``
    ``data/water/olinda_water_mndwi_otsu.tif`` (MNDWI above its Otsu threshold on the
    Landsat-7 Olinda scene) as water (2) and 255 everywhere else: more open water
    (coastal, turbid, estuaries) without claiming anything about the land, whose forest
    and non-forest are not known there.

Why: the other forest-water training scenes are a February Sentinel-2 tile (leafless,
fields bare) and an arid Landsat-8 scene, so no training pixel showed lush growing-season
crops or grass, and models called them forest. This scene is August cropland, grassland
and lakes. Its land label is a **weak** one: "not water" is taken as non-forest, which is
true of the prairie but wrong for the few farmstead shelterbelts (a few hundred pixels).
It is training data only, never truth for a score. NAIP is US-Government public domain;
the photo is from opengeos/data (MIT).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import Affine

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "data" / "water" / "naip_lakes_2020-08-31.tif"
WEAK = ROOT / "data" / "water" / "naip_water_ndwi_otsu.tif"
OUT = ROOT / "data" / "forest_water"
NO_LABEL = 255


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    """(..., H, W) -> (..., H // f, W // f, f * f): the f x f blocks of a, cropped."""
    *lead, h, w = a.shape
    h2, w2 = h // f, w // f
    a = a[..., : h2 * f, : w2 * f].reshape(*lead, h2, f, w2, f)
    return np.moveaxis(a, -3, -2).reshape(*lead, h2, w2, f * f)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with rasterio.open(SRC) as src:
        image = src.read()
        profile = src.profile
        transform = src.transform
    with rasterio.open(WEAK) as src:
        weak = src.read(1)
    f = 2
    mean = np.rint(_blocks(image.astype(np.float32), f).mean(axis=-1)).astype(np.uint8)
    water = _blocks(weak == 1, f).sum(axis=-1)
    labels = np.full(water.shape, NO_LABEL, np.uint8)
    labels[water == 0] = 0
    labels[water == f * f] = 2
    grid = transform * Affine.scale(f)
    common = {
        "driver": "GTiff",
        "width": mean.shape[2],
        "height": mean.shape[1],
        "crs": profile["crs"],
        "transform": grid,
        "compress": "deflate",
        "predictor": 2,
    }
    rgbn = {"photometric": "MINISBLACK"}
    path = OUT / "naip_2020-08-31_10m.tif"
    with rasterio.open(path, "w", count=4, dtype="uint8", **common, **rgbn) as dst:
        dst.write(mean)
        dst.descriptions = ("red", "green", "blue", "nir")
        dst.colorinterp = (
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        )
    lpath = OUT / "naip_forest_water_weak_10m.tif"
    with rasterio.open(lpath, "w", count=1, dtype="uint8", nodata=NO_LABEL, **common) as dst:
        dst.write(labels, 1)
    values, counts = np.unique(labels, return_counts=True)
    counted = dict(zip(values.tolist(), counts.tolist(), strict=True))
    print(path.name, mean.shape, lpath.name, counted)
    olinda_water()


def olinda_water() -> None:
    """The Olinda weak water label as water (2) only; land unlabelled (255)."""
    with rasterio.open(ROOT / "data" / "water" / "olinda_water_mndwi_otsu.tif") as src:
        weak = src.read(1)
        profile = src.profile
    out = np.where(weak == 1, 2, NO_LABEL).astype(np.uint8)
    profile.update(dtype="uint8", nodata=NO_LABEL, compress="deflate")
    path = OUT / "olinda_water_only_weak.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
    print(path.name, int((out == 2).sum()), "water pixels")


if __name__ == "__main__":
    main()
