"""QGIS styles: QML text, GeoPackage ``layer_styles`` rows, sidecars, the writer's raster QML.

What QGIS itself makes of these files is checked in ``tests/test_qgis.py``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

import geoseg
from geoseg.atomic import remove_quietly
from geoseg.errors import InputError, OutputError
from geoseg.io.styles import (
    STYLE_NAME,
    qml_path,
    raster_qml,
    style_vector_output,
    vector_qml,
    write_raster_qml,
)
from geoseg.io.writer import RasterSink
from geoseg.schemes import load_scheme, parse_classes
from tests.common import CLASSES3, DEFAULT_TRANSFORM, UTM, dead_pid, make_bundle, scene_file

NLCD = load_scheme("nlcd8")
# QGIS 3.22's own DDL for layer_styles (from "Save as default" into a GeoPackage)
QGIS_COLUMNS = [
    "id",
    "f_table_catalog",
    "f_table_schema",
    "f_table_name",
    "f_geometry_column",
    "styleName",
    "styleQML",
    "styleSLD",
    "useAsDefault",
    "description",
    "owner",
    "ui",
    "update_time",
]


def _polygons(path: Path, *, layer: str = "parcels", geometry_name: str = "geometry") -> Path:
    boxes = [shapely.box(300000 + 30 * i, 4149000, 300030 + 30 * i, 4149030) for i in range(3)]
    gdf = gpd.GeoDataFrame(
        {"class_id": [1, 4, 5], "class_name": ["water", "forest", "shrubland"]},
        geometry=gpd.GeoSeries(boxes, crs=UTM),
    )
    if geometry_name != "geometry":
        gdf = gdf.rename_geometry(geometry_name)
    gdf.to_file(path, layer=layer, engine="pyogrio")
    return path


def test_raster_qml_is_a_paletted_renderer_with_names() -> None:
    root = ET.fromstring(raster_qml(NLCD).split("\n", 1)[1])
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted"
    assert renderer.get("band") == "1"
    entries = [
        (int(e.get("value", -1)), e.get("label"), e.get("color"))
        for e in renderer.iter("paletteEntry")
    ]
    assert entries == [(c.id, c.name, c.color.lower()) for c in NLCD]
    assert 255 not in [v for v, _, _ in entries]  # nodata is not in the palette: transparent


def test_vector_qml_categorized_with_darker_outline() -> None:
    root = ET.fromstring(vector_qml(NLCD).split("\n", 1)[1])
    renderer = root.find("renderer-v2")
    assert renderer is not None
    assert (renderer.get("type"), renderer.get("attr")) == ("categorizedSymbol", "class_id")
    cats = [(c.get("value"), c.get("label"), c.get("symbol")) for c in renderer.iter("category")]
    assert cats == [(str(c.id), c.name, str(k)) for k, c in enumerate(NLCD)]
    for k, cls in enumerate(NLCD):
        sym = renderer.find(f"symbols/symbol[@name='{k}']")
        assert sym is not None and sym.get("type") == "fill"
        props = {p.get("k"): p.get("v") for p in sym.iter("prop")}
        assert props["color"] == ",".join(map(str, cls.rgb)) + ",255"
        outline = [int(v) for v in props["outline_color"].split(",")[:3]]
        assert all(o <= v for o, v in zip(outline, cls.rgb, strict=True))
        assert sum(outline) < sum(cls.rgb) or sum(cls.rgb) == 0


def test_names_with_xml_characters_are_escaped() -> None:
    classes = parse_classes([{"id": 3, "name": 'rock & "sand" <dry>', "color": "#aabbcc"}])
    for text in (raster_qml(classes), vector_qml(classes)):
        root = ET.fromstring(text.split("\n", 1)[1])
        labels = [e.get("label") for e in root.iter() if e.get("label")]
        assert labels == ['rock & "sand" <dry>']


def test_gpkg_gets_default_style_row_in_qgis_schema(tmp_path: Path) -> None:
    gpkg = _polygons(tmp_path / "v.gpkg", geometry_name="geom")
    assert style_vector_output(gpkg, "parcels", NLCD) == [gpkg]
    with sqlite3.connect(gpkg) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, styleName, useAsDefault, styleQML, styleSLD "
            "FROM layer_styles"
        ).fetchall()
        contents = con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchall()
        integrity = con.execute("PRAGMA integrity_check").fetchone()
    assert cols == QGIS_COLUMNS
    assert contents == [("attributes",)]  # registered as QGIS/OGR register it
    assert integrity == ("ok",)
    [(table, column, name, default, qml, sld)] = rows
    assert (table, column, name, default) == ("parcels", "geom", STYLE_NAME, 1)
    assert qml == vector_qml(NLCD, "class_id", "Polygon")
    assert "<ogc:Literal>4</ogc:Literal>" in sld and "#1c5f2c" in sld
    # GDAL still reads the features, and sees the style table as an attribute table
    assert pyogrio.read_info(gpkg, layer="parcels")["features"] == 3
    info = subprocess.run(["ogrinfo", "-q", str(gpkg)], capture_output=True, text=True, check=True)
    assert "parcels (Polygon)" in info.stdout and "layer_styles (None)" in info.stdout
    assert "ERROR" not in info.stderr


def test_gpkg_style_replaced_not_duplicated_and_others_kept(tmp_path: Path) -> None:
    gpkg = _polygons(tmp_path / "v.gpkg")
    style_vector_output(gpkg, "parcels", NLCD)
    with sqlite3.connect(gpkg) as con:  # a user's own style, saved earlier as default
        con.execute(
            "INSERT INTO layer_styles (f_table_name, f_geometry_column, styleName, styleQML, "
            "useAsDefault) VALUES ('parcels', 'geometry', 'mine', '<qgis/>', 1)"
        )
    water = load_scheme("water")
    style_vector_output(gpkg, "parcels", water)
    with sqlite3.connect(gpkg) as con:
        rows = con.execute(
            "SELECT styleName, useAsDefault, styleQML FROM layer_styles ORDER BY id"
        ).fetchall()
    assert [(n, d) for n, d, _ in rows] == [("mine", 0), (STYLE_NAME, 1)]
    assert rows[1][2] == vector_qml(water)


def test_gpkg_unknown_layer_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    gpkg = _polygons(tmp_path / "v.gpkg")
    before = gpkg.read_bytes()
    with pytest.raises(InputError, match=r"no feature layer 'nope' \(layers: parcels\)"):
        style_vector_output(gpkg, "nope", NLCD)
    assert gpkg.read_bytes() == before


def test_gpkg_insert_is_atomic(tmp_path: Path) -> None:
    """A failure inside the transaction leaves no table, no gpkg_contents row."""
    gpkg = _polygons(tmp_path / "v.gpkg")
    with sqlite3.connect(gpkg) as con:  # an incompatible table of that name makes the insert fail
        con.execute("CREATE TABLE layer_styles (id INTEGER PRIMARY KEY, other TEXT)")
    with pytest.raises(OutputError, match="cannot store the style"):
        style_vector_output(gpkg, "parcels", NLCD)
    with sqlite3.connect(gpkg) as con:
        assert con.execute("SELECT count(*) FROM layer_styles").fetchone() == (0,)
        assert con.execute(
            "SELECT count(*) FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchone() == (0,)


@pytest.mark.parametrize("ext", ["geojson", "fgb"])
def test_other_formats_get_a_qml_sidecar(tmp_path: Path, ext: str) -> None:
    path = _polygons(tmp_path / f"v.{ext}")
    [qml] = style_vector_output(path, "parcels", NLCD)
    assert qml == tmp_path / "v.qml"
    assert qml.read_text(encoding="utf-8") == vector_qml(NLCD)
    assert not [p for p in tmp_path.iterdir() if ".geoseg-tmp-" in p.name]


def test_sidecar_never_replaces_a_raster_style(tmp_path: Path) -> None:
    write_raster_qml(tmp_path / "s_classes.tif", NLCD)
    path = _polygons(tmp_path / "s_classes.geojson")
    with pytest.raises(OutputError, match="same base name"):
        style_vector_output(path, "parcels", NLCD)
    assert "paletted" in (tmp_path / "s_classes.qml").read_text(encoding="utf-8")


def test_predict_publishes_raster_qml_and_overwrite_replaces_it(tmp_path: Path) -> None:
    scene = scene_file(tmp_path / "s.tif", (96, 96), seed=3)
    out = tmp_path / "out"
    stale = out / f".s_classes.geoseg-tmp-{dead_pid()}-abcdef.qml"  # left by an interrupted run
    out.mkdir()
    stale.write_text("<qgis/>")
    [res] = geoseg.predict(scene, make_bundle(chip=64, overlap=16), out, vector=False)
    qml = qml_path(res.outputs["classes"])
    assert qml == out / "s_classes.qml"
    assert qml.read_text(encoding="utf-8") == raster_qml(parse_classes(CLASSES3))
    assert not stale.exists()
    qml.write_text("old")
    geoseg.predict(scene, make_bundle(chip=64, overlap=16), out, vector=False, overwrite=True)
    assert "paletted" in qml.read_text(encoding="utf-8")
    assert not [p for p in out.iterdir() if ".geoseg-tmp-" in p.name]
    assert sorted(p.name for p in out.iterdir()) == [
        "s_classes.qml",
        "s_classes.tif",
        "s_classes.tif.aux.xml",
        "s_run.json",
    ]


def test_aborted_sink_leaves_no_staged_qml(tmp_path: Path) -> None:
    """A failure after the COG is staged (before publish) removes the staged style too."""
    classes = parse_classes(CLASSES3)
    sink = RasterSink(
        tmp_path / "c.tif",
        shape=(64, 64),
        crs=UTM,
        transform=DEFAULT_TRANSFORM,
        classes=classes,
        description="class",
    )
    sink.write((0, 0, 64, 64), np.full((64, 64), 2, dtype=np.uint8))
    staged = sink.finish()
    assert qml_path(staged).read_text(encoding="utf-8") == raster_qml(classes)
    sink.abort()
    remove_quietly(staged)
    assert list(tmp_path.iterdir()) == []
