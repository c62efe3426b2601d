"""geoseg outputs in real QGIS: styled on open, right CRS and counts, and they render.

The outputs come from the real pipeline (the shipped ``landcover-nlcd8`` bundle
on a 384 × 384 crop of the Zion Landsat-8 scene); ``tests/qgis_check.py`` loads
them with PyQGIS from Debian's ``python3-qgis`` (system Python: ``/usr/bin/python3``)
and reports what QGIS sees. ``make test`` installs that package
(``scripts/install-system-deps.sh``); where it is missing these tests fail and say
so, they do not skip.

Set ``GEOSEG_QGIS_RENDER=docs/img/qgis_render.png`` to keep the rendering (the
README's picture is made that way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.windows import Window

import geoseg
from geoseg.io.styles import style_vector_output
from tests.common import REPO, ZION, crop_raster

pytestmark = pytest.mark.qgis

QGIS_PYTHON = "/usr/bin/python3"
CHECK = REPO / "tests" / "qgis_check.py"
CROP = Window(col_off=384, row_off=1024, width=384, height=384)  # river, town, fields, forest
FORMATS = ["gpkg", "geojson", "fgb", "parquet"]


def _require_pyqgis() -> None:
    try:
        probe = subprocess.run(
            [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, timeout=120
        )
        ok, why = probe.returncode == 0, probe.stderr.strip().splitlines()[-1:] or [""]
    except OSError as err:
        ok, why = False, [str(err)]
    if not ok:
        pytest.fail(
            f"PyQGIS is not importable by {QGIS_PYTHON} ({why[0]}); install Debian's "
            "python3-qgis: make test installs it (scripts/install-system-deps.sh)"
        )


@pytest.fixture(scope="module")
def qgis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Outputs of the real pipeline and QGIS's report on them."""
    _require_pyqgis()
    root = tmp_path_factory.mktemp("qgis")
    scene = crop_raster(ZION, root / "zion.tif", CROP)
    bundle = geoseg.load_bundle("landcover-nlcd8")
    [res] = geoseg.predict(scene, bundle, root / "out", vector=True, vector_format="gpkg")
    vectors = {"gpkg": Path(res.outputs["vector"])}
    style_vector_output(vectors["gpkg"], "zion", bundle.classes)
    for fmt in FORMATS[1:]:  # one folder each: each file gets its own <stem>.qml
        out = root / fmt / f"zion.{fmt}"
        out.parent.mkdir()
        done = geoseg.vectorize(res.outputs["classes"], out, layer="zion")
        style_vector_output(done.path, done.layer, bundle.classes)
        vectors[fmt] = done.path
    request = {
        "raster": res.outputs["classes"],
        "vectors": [
            {"path": str(vectors[f]), "layer": "zion" if f == "gpkg" else None} for f in FORMATS
        ],
        "render": {
            "png": str(root / "render.png"),
            "vector": 0,
            "panel": 420,
            "captions": ["class raster (COG + .qml)", "polygons (GeoPackage, style inside)"],
        },
    }
    (root / "request.json").write_text(json.dumps(request), encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [QGIS_PYTHON, str(CHECK), str(root / "request.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    keep = os.environ.get("GEOSEG_QGIS_RENDER")
    if keep:
        shutil.copyfile(root / "render.png", keep)
    return {
        "report": report,
        "classes": bundle.classes,
        "raster": Path(res.outputs["classes"]),
        "vectors": vectors,
    }


def _scheme(classes: Any) -> list[tuple[int, str, str]]:
    return [(c.id, c.name, c.color.lower()) for c in classes]


def test_class_raster_in_qgis(qgis: dict[str, Any]) -> None:
    facts = qgis["report"]["raster"]
    with rasterio.open(qgis["raster"]) as ds:
        epsg, shape = ds.crs.to_epsg(), ds.shape
    assert facts["valid"]
    assert facts["crs"] == f"EPSG:{epsg}"
    assert (facts["height"], facts["width"]) == shape
    assert facts["nodata"] == 255
    assert facts["renderer"] == "paletted" and facts["band"] == 1
    # exactly the scheme, with names: the .qml was applied (the bare color table has 256 entries)
    palette = [(e["value"], e["label"], e["color"]) for e in facts["palette"]]
    assert palette == _scheme(qgis["classes"])


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "fgb"])
def test_vectors_in_qgis(qgis: dict[str, Any], fmt: str) -> None:
    facts = qgis["report"]["vectors"][FORMATS.index(fmt)]
    path = qgis["vectors"][fmt]
    assert facts["valid"], facts
    # GeoJSON is RFC 7946 (EPSG:4326); the others keep the raster's CRS
    assert facts["crs"] == ("EPSG:4326" if fmt == "geojson" else "EPSG:32612")
    layer = "zion" if fmt == "gpkg" else None
    assert facts["feature_count"] == pyogrio.read_info(path, layer=layer)["features"] > 10
    assert facts["renderer"] == "categorizedSymbol" and facts["field"] == "class_id"
    cats = [(c["value"], c["label"], c["color"]) for c in facts["categories"]]
    assert cats == _scheme(qgis["classes"])
    present = set(pyogrio.read_dataframe(path, layer=layer, columns=["class_id"]).class_id)
    assert len(present) >= 4 and present <= {c[0] for c in cats}
    for c in facts["categories"]:  # outline: the fill a shade darker
        fill, line = (
            np.array([int(x[i : i + 2], 16) for i in (1, 3, 5)]) for x in (c["color"], c["outline"])
        )
        assert (line <= fill).all() and line.sum() < fill.sum()
    # the GeoPackage's style is the one inside it; the others read their .qml sidecar
    assert facts["styles_in_database"] == (["geoseg classes"] if fmt == "gpkg" else [])
    if fmt != "gpkg":
        assert path.with_suffix(".qml").exists()


def test_geoparquet_needs_gdal_parquet_driver(qgis: dict[str, Any]) -> None:
    """Documented limitation: QGIS 3.22's GDAL (Debian 3.6) has no Parquet driver.

    Where the driver exists, the GeoParquet output must load like the others.
    """
    report = qgis["report"]
    facts = report["vectors"][FORMATS.index("parquet")]
    if report["gdal_drivers"]["Parquet"]:
        assert facts["valid"] and facts["renderer"] == "categorizedSymbol"
        path = qgis["vectors"]["parquet"]
        assert facts["feature_count"] == pyogrio.read_info(path)["features"]
    else:
        assert not facts["valid"]
        assert "not recognized as" in facts["error"], facts["error"]


def test_qgis_renders_scheme_colors(qgis: dict[str, Any]) -> None:
    from PIL import Image

    render = qgis["report"]["render"]
    assert render["saved"]
    image = np.asarray(Image.open(render["png"]).convert("RGB"))
    scheme = {c.rgb: c.name for c in qgis["classes"]}
    for x, y, w, h in render["panels"]:
        panel = image[y : y + h, x : x + w].reshape(-1, 3)
        colors, counts = np.unique(panel, axis=0, return_counts=True)
        assert len(colors) > 1  # not a blank image
        found = {
            scheme[tuple(int(v) for v in rgb)]
            for rgb, n in zip(colors, counts, strict=True)
            if tuple(int(v) for v in rgb) in scheme and n >= 100
        }
        assert len(found) >= 4, found  # several classes drawn in exactly the scheme's colors
        covered = sum(
            n for rgb, n in zip(colors, counts, strict=True) if tuple(int(v) for v in rgb) in scheme
        )
        assert covered > 0.5 * len(panel)  # most of the map is class fill, not background
