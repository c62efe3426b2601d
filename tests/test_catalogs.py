"""catalogs/stac/sample-scenes: pystac reads it, every asset exists, predict-stac runs on it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import geoseg
from tests.common import REPO, read

pystac = pytest.importorskip("pystac")
CATALOG = REPO / "catalogs" / "stac" / "sample-scenes" / "catalog.json"


def _items() -> list:
    return sorted(
        pystac.Catalog.from_file(str(CATALOG)).get_items(recursive=True), key=lambda i: i.id
    )


def test_pystac_reads_the_sample_catalog_and_every_asset_exists() -> None:
    items = _items()
    assert {i.id for i in items} >= {
        "zion-landsat8-2015-08-18",
        "pucallpa-1985",
        "pucallpa-2000",
        "pucallpa-2020",
    }
    for item in items:
        for asset in item.assets.values():
            assert not Path(asset.href).is_absolute()  # relative: works from any checkout
            path = Path(asset.get_absolute_href())
            assert path.is_file() and path.resolve().is_relative_to(REPO / "data")
            with rasterio.open(path) as ds:
                bands = asset.extra_fields["eo:bands"]
                assert len(bands) == ds.count and all(b.get("common_name") for b in bands)
                props = item.properties
                assert props["proj:code"] == f"EPSG:{ds.crs.to_epsg()}"
                assert props["proj:shape"] == [ds.height, ds.width]
                assert props["proj:transform"] == list(tuple(ds.transform)[:6])
                from rasterio.warp import transform_bounds

                w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
            assert item.bbox[0] <= w + 1e-6 and item.bbox[2] >= e - 1e-6
            assert item.bbox[1] <= s + 1e-6 and item.bbox[3] >= n - 1e-6


def test_acquisition_dates_follow_the_data_readme() -> None:
    items = {i.id: i for i in _items()}
    assert items["zion-landsat8-2015-08-18"].datetime == dt.datetime(2015, 8, 18, tzinfo=dt.UTC)
    p = items["pucallpa-2000"]
    assert p.datetime is None  # an annual composite: a range
    assert p.properties["start_datetime"].startswith("2000-01-01")
    assert p.properties["end_datetime"].startswith("2000-12-31")
    readme = (REPO / "data" / "README.md").read_text()
    assert "2015-08-18" in readme and "2020-08-31" in readme and "2020-05-18" in readme


def test_the_script_rebuilds_the_same_catalog(tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in CATALOG.parent.rglob("*.json")}
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_sample_stac.py")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    after = {p: p.read_bytes() for p in CATALOG.parent.rglob("*.json")}
    assert before == after


def test_predict_stac_runs_on_the_zion_item(tmp_path: Path) -> None:
    """The shipped item, as it is, feeds predict-stac with the shipped land-cover bundle."""
    zion = next(i for i in _items() if i.id.startswith("zion")).clone()
    zion.make_asset_hrefs_absolute()
    only = pystac.Catalog("zion-only", "the Zion item of the sample catalog")
    only.add_item(zion)
    only.normalize_hrefs(str(tmp_path / "in"))
    only.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    [res] = geoseg.predict_stac(
        tmp_path / "in" / "catalog.json", "landcover-nlcd8", tmp_path / "out", vector=False
    )
    assert res.state == "done"
    classes = read(res.outputs["classes"])
    with rasterio.open(res.outputs["classes"]) as ds:
        assert ds.shape == tuple(zion.properties["proj:shape"])
        assert list(tuple(ds.transform)[:6]) == zion.properties["proj:transform"]
    assert len(np.unique(classes[classes != 255])) >= 3
    out = json.loads((tmp_path / "out" / "stac" / "catalog.json").read_text())
    assert out["id"] == "geoseg-results"
