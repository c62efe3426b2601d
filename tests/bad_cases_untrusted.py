"""Bad-input rows. Untrusted files and names: STAC catalogs, workflow and train YAML, zones.

The builders here make the hostile files; ``tests/test_security.py`` uses the same ones
to check more than the one-line error (nothing written outside ``--out``, time and memory).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.badinput import Case
from tests.common import DATA, UTM, ZION, make_bundle, structured, write_raster

NAMES = ["blue", "green", "red", "nir"]
ESCAPE = "../../../../outside/evil"
"""An item id that, as ``<out>/_inputs/<id>.vrt``, lands four folders above ``_inputs``."""


def deep_out(tmp: Path) -> Path:
    """``tmp/a/b/c/out``: deep enough that ``ESCAPE`` from it stays inside ``tmp``."""
    return tmp / "a" / "b" / "c" / "out"


def stac_bundle(tmp: Path) -> Path:
    path = tmp / "stac.bundle"
    if not path.exists():
        make_bundle(band_names=NAMES, chip=64, overlap=16).save(path)
    return path


def stac_catalog(
    tmp: Path,
    ids: tuple[str, ...] = ("a",),
    *,
    asset_key: str = "image",
) -> Path:
    """A real catalog (pystac, saved self-contained) of one 4-band item per id.

    The items are saved under safe names and the ids written into their JSON
    afterwards, as a catalog made elsewhere could hold them.
    """
    import pystac

    data = (structured((96, 80), 4, seed=8) * 20000 + 1).astype("uint16")
    files = tmp / "files"
    files.mkdir(exist_ok=True)
    image = write_raster(files / "image.tif", data, nodata=0)
    cat = pystac.Catalog("scenes", "test scenes")
    bands = [{"name": f"B{i}", "common_name": n} for i, n in enumerate(NAMES)]
    for k in range(len(ids)):
        geom = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
        when = dt.datetime(2020, 5, 18, tzinfo=dt.UTC)
        item = pystac.Item(f"item{k}", geom, [0, 0, 1, 1], when, {})
        extra = {"eo:bands": bands}
        item.add_asset(asset_key, pystac.Asset(str(image), extra_fields=extra))
        cat.add_item(item)
    cat.normalize_hrefs(str(tmp / "stac_in"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    for k, item_id in enumerate(ids):
        path = tmp / "stac_in" / f"item{k}" / f"item{k}.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["id"] = item_id
        path.write_text(json.dumps(doc), encoding="utf-8")
    return tmp / "stac_in" / "catalog.json"


def predict_stac_args(catalog: Path, tmp: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict-stac",
        str(catalog),
        "--model",
        str(stac_bundle(tmp)),
        "--out",
        str(out),
        *extra,
    ]


def _stac(ids: tuple[str, ...], *extra: str, key: str = "image") -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        return predict_stac_args(stac_catalog(tmp, ids, asset_key=key), tmp, tmp / "out", *extra)

    return build


def _stac_loop(tmp: Path) -> list[str]:
    """A catalog whose child link points back at itself."""
    catalog = stac_catalog(tmp)
    doc = json.loads(catalog.read_text(encoding="utf-8"))
    doc["links"].append({"rel": "child", "href": "./catalog.json"})
    catalog.write_text(json.dumps(doc), encoding="utf-8")
    return predict_stac_args(catalog, tmp, tmp / "out")


def laughs(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" YAML document: ``width ** levels`` strings from ~450 bytes."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def workflow(tmp: Path, body: str, name: str = "wf.yaml") -> Path:
    """A landcover workflow on the Zion scene with ``body`` appended (writes to tmp/out)."""
    path = tmp / name
    path.write_text(
        f"kind: landcover\nmodel: landcover-nlcd8\ninputs:\n  scene: {ZION}\n"
        f"vectorize: false\nreport: false\nout: {tmp / 'out'}\n{body}",
        encoding="utf-8",
    )
    return path


def _check(body: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", "--check", str(workflow(tmp, body))]


def train_config(tmp: Path, body: str) -> Path:
    """A training config on the Zion scene and NLCD labels with ``body`` appended."""
    path = tmp / "train.yaml"
    path.write_text(
        f"data:\n  - {{image: {ZION}, labels: {DATA / 'zion' / 'nlcd2011_8class.tif'}}}\n"
        f"scheme: nlcd8\nbands: [blue, green, red, nir]\nout: {tmp / 'out' / 'm.bundle'}\n{body}",
        encoding="utf-8",
    )
    return path


def _train(body: str, *extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["train", str(train_config(tmp, body)), *extra]


def class_raster(tmp: Path) -> Path:
    """A 20 x 20 class raster (ids 1 and 2) at 10 m in UTM 12N."""
    data = np.ones((1, 20, 20), dtype="uint8")
    data[0, :, 10:] = 2
    return write_raster(tmp / "classes.tif", data, nodata=255)


def zones_file(tmp: Path, geoms: list[object], names: list[object], dtype: str = "object") -> Path:
    """Zones (``name``) over :func:`class_raster` as a GeoPackage."""
    import geopandas as gpd
    import pandas as pd

    gdf = gpd.GeoDataFrame(
        {"name": pd.Series(names, dtype=dtype)}, geometry=gpd.GeoSeries(geoms, crs=UTM)
    )
    path = tmp / "zones.gpkg"
    gdf.to_file(path, engine="pyogrio")
    return path


def _stats_zones(kind: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        import shapely

        x0, y0 = 300000.0, 4150000.0  # tests.common.DEFAULT_TRANSFORM's corner (30 m pixels)
        geom = {
            "point": shapely.Point(x0 + 100, y0 - 100),
            "line": shapely.LineString([(x0, y0 - 100), (x0 + 500, y0 - 100)]),
        }[kind]
        zones = zones_file(tmp, [geom], ["z"])
        out = tmp / "out" / "t.csv"
        return ["stats", str(class_raster(tmp)), "--zones", str(zones), "--zone-field", "name",
                "--out", str(out)]  # fmt: skip

    return build


CASES: dict[str, Case] = {
    "stac item id with ../": (_stac((ESCAPE,)), "cannot be used in a file name"),
    "stac item id absolute": (_stac(("/tmp/evil",)), "cannot be used in a file name"),
    "stac item ids equal but for case": (_stac(("Scene", "scene")), "would write the same files"),
    "stac item ids repeated": (_stac(("a", "a")), "would write the same files"),
    "stac child link loop": (_stac_loop, "reaches a catalog already read"),
    "stac asset key with a newline": (
        _stac(("a",), "--asset", "visual", key="bad\nkey"),
        "has no asset 'visual'; it has 'bad\\nkey'",
    ),
    "workflow alias bomb": (_check(laughs()), "YAML aliases (*name) expand this document"),
    "workflow recursive alias": (_check("title: &t [*t]\n"), "refers to a node that contains it"),
    "workflow nested too deep": (_check("title: " + "[" * 100 + "]" * 100 + "\n"), "nested more"),
    "workflow integer of 5000 digits": (_check("predict: {chip: " + "9" * 5000 + "}\n"), "4300"),
    "workflow chip 1e29": (_check("predict: {chip: 1e29}\n"), "predict.chip must be"),
    "workflow chip 1.0e+29": (_check("predict: {chip: 1.0e+29}\n"), "predict.chip must be"),
    "workflow chip 10**29": (_check("predict: {chip: " + "1" + "0" * 29 + "}\n"), "predict.chip"),
    "workflow chip 100000": (_check("predict: {chip: 100000}\n"), "from 1 to 8192, got 100000"),
    "workflow overlap >= chip": (_check("predict: {chip: 64, overlap: 64}\n"), "from 0 to 63"),
    "workflow batch size 10**9": (
        _check("predict: {batch_size: 1000000000}\n"),
        "predict.batch_size must be a whole number from 1 to 4,096",
    ),
    "workflow block 10**9": (_check("predict: {block: 1000000000}\n"), "from 1 to 65,536"),
    "workflow min_area nan": (_check("vectorize: {min_area: .nan}\n"), "finite number"),
    "train alias bomb": (_train(laughs()), "YAML aliases (*name) expand this document"),
    "train chip 10**29": (_train("model: {chip: 1" + "0" * 29 + "}\n"), "model.chip"),
    "train chip 100000": (_train("model: {chip: 100000}\n"), "model.chip must be a whole number"),
    "train --chip 100000": (_train("", "--chip", "100000"), "from 8 to 4,096"),
    "train batch 10**9": (_train("batch: 1000000000\n"), "batch must be a whole number from 1"),
    "stats point zones": (_stats_zones("point"), "buffer them into polygons"),
    "stats line zones": (_stats_zones("line"), "1 LineString feature(s)"),
}
