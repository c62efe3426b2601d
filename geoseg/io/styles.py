"""QGIS styles from a class scheme: ``.qml`` sidecars and GeoPackage ``layer_styles``.

QGIS looks for a default style in two places when it opens a layer: for a
GeoPackage layer, the row of the ``layer_styles`` table with ``useAsDefault``
set for that table; for any file, a ``.qml`` beside it with the same base name
(``scene_classes.tif`` → ``scene_classes.qml``). We write both from the class
scheme, so a class raster opens as a paletted map with the class names and the
polygons open categorized by ``class_id`` with the scheme's colors, without a
click.

The QML is QGIS 3 XML reduced to the renderer: everything left out keeps
QGIS's defaults. Every file is written under a temporary name and renamed;
the ``layer_styles`` insert is one SQLite transaction. (About 400 lines: the
three style texts, QML for rasters and vectors and SLD, and the two places QGIS
reads them from.)

Examples
--------
>>> from geoseg.schemes import load_scheme
>>> qml = raster_qml(load_scheme("water"))
>>> 'type="paletted"' in qml and 'label="water"' in qml
True
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

from geoseg.atomic import write_text_atomic
from geoseg.errors import InputError, OutputError
from geoseg.schemes import ClassInfo

GeometryKind = Literal["Polygon", "MultiPolygon", "LineString", "Point"]

QGIS_VERSION = "3.22.0"
"""QGIS version the QML declares (the oldest we check against, Debian's 3.22)."""

STYLE_NAME = "geoseg classes"
"""``styleName`` of the rows we put in ``layer_styles`` (replaced on each call)."""

OUTLINE_DARKEN = 0.7
"""Outline color = fill color × this: the same hue, a shade darker, so class
borders read without a grid of black lines over small polygons."""

OUTLINE_WIDTH_MM = 0.15

_LAYER_STYLES_DDL = """
CREATE TABLE IF NOT EXISTS "layer_styles" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  "f_table_catalog" TEXT(256),
  "f_table_schema" TEXT(256),
  "f_table_name" TEXT(256),
  "f_geometry_column" TEXT(256),
  "styleName" TEXT(30),
  "styleQML" TEXT,
  "styleSLD" TEXT,
  "useAsDefault" BOOLEAN,
  "description" TEXT,
  "owner" TEXT(30),
  "ui" TEXT(30),
  "update_time" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""
# The schema QGIS 3.22 itself creates (through OGR) on "Save as default" into a
# GeoPackage, checked with sqlite3 ``.schema layer_styles``; QGIS also registers
# the table in gpkg_contents as 'attributes', and so do we.


def qml_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar QGIS loads as default style: same folder and base name, ``.qml``."""
    return Path(path).with_suffix(".qml")


def _darker(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = (round(v * OUTLINE_DARKEN) for v in rgb)
    return r, g, b


def _rgba(rgb: tuple[int, int, int]) -> str:
    return ",".join(str(v) for v in rgb) + ",255"


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def _check_classes(classes: Sequence[ClassInfo]) -> None:
    if not classes:
        raise InputError("a style needs at least one class; pass the class scheme")


def raster_qml(classes: Sequence[ClassInfo], *, band: int = 1) -> str:
    """QML of a paletted raster renderer: one entry per class, labelled with its name.

    Values not in the palette (nodata 255 included) are drawn transparent.

    Parameters
    ----------
    classes
        The class scheme.
    band
        Band number holding the class ids.

    Returns
    -------
    str
        QGIS 3 style XML.
    """
    _check_classes(classes)
    entries = "\n".join(
        f'        <paletteEntry value="{c.id}" color="{_hex(c.rgb)}" alpha="255" '
        f"label={quoteattr(c.name)}/>"
        for c in classes
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="{QGIS_VERSION}" styleCategories="Symbology">
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" \
zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="paletted" band="{band}" opacity="1" alphaBand="-1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" invertColors="0" colorizeOn="0" \
colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def write_raster_qml(tif_path: str | os.PathLike[str], classes: Sequence[ClassInfo]) -> Path:
    """Write :func:`raster_qml` beside ``tif_path`` as ``<stem>.qml`` (atomically).

    Returns
    -------
    Path
        The ``.qml`` written.
    """
    return write_text_atomic(qml_path(tif_path), raster_qml(classes))


def _symbol(name: int, rgb: tuple[int, int, int], geometry: GeometryKind) -> str:
    fill, line = _rgba(rgb), _rgba(_darker(rgb))
    if geometry in ("Polygon", "MultiPolygon"):
        kind, cls = "fill", "SimpleFill"
        props = {
            "color": fill,
            "style": "solid",
            "outline_color": line,
            "outline_style": "solid",
            "outline_width": str(OUTLINE_WIDTH_MM),
            "outline_width_unit": "MM",
            "joinstyle": "bevel",
        }
    elif geometry == "LineString":
        kind, cls = "line", "SimpleLine"
        props = {"line_color": fill, "line_width": "0.5", "line_width_unit": "MM"}
    else:
        kind, cls = "marker", "SimpleMarker"
        props = {"color": fill, "outline_color": line, "size": "2", "name": "circle"}
    options = "\n".join(
        f'            <Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items()
    )
    legacy = "\n".join(f'          <prop k="{k}" v="{v}"/>' for k, v in props.items())
    return f"""      <symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="{cls}" pass="0" enabled="1" locked="0">
          <Option type="Map">
{options}
          </Option>
{legacy}
        </layer>
      </symbol>"""


def vector_qml(
    classes: Sequence[ClassInfo], field: str = "class_id", geometry: GeometryKind = "Polygon"
) -> str:
    """QML of a categorized renderer on ``field``: scheme colors, class names as labels.

    Polygons get a solid fill in the class color and a thin outline a shade
    darker (see :data:`OUTLINE_DARKEN`).

    Parameters
    ----------
    classes
        The class scheme.
    field
        Integer attribute holding the class id.
    geometry
        Geometry type of the layer, which picks fill, line or marker symbols.

    Returns
    -------
    str
        QGIS 3 style XML.
    """
    _check_classes(classes)
    categories = "\n".join(
        f'      <category symbol="{k}" value="{c.id}" label={quoteattr(c.name)} render="true"/>'
        for k, c in enumerate(classes)
    )
    symbols = "\n".join(_symbol(k, c.rgb, geometry) for k, c in enumerate(classes))
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="{QGIS_VERSION}" styleCategories="Symbology">
  <renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" \
forceraster="0" enableorderby="0">
    <categories>
{categories}
    </categories>
    <symbols>
{symbols}
    </symbols>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
</qgis>
"""


def vector_sld(classes: Sequence[ClassInfo], *, layer: str, field: str = "class_id") -> str:
    """A minimal SLD 1.1 with one rule per class (for clients that read ``styleSLD``)."""
    _check_classes(classes)
    rules = "".join(
        f"<se:Rule><se:Name>{_xml(c.name)}</se:Name>"
        f"<se:Description><se:Title>{_xml(c.name)}</se:Title></se:Description>"
        f"<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>{_xml(field)}</ogc:PropertyName>"
        f"<ogc:Literal>{c.id}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>"
        f'<se:PolygonSymbolizer><se:Fill><se:SvgParameter name="fill">{_hex(c.rgb)}'
        f'</se:SvgParameter></se:Fill><se:Stroke><se:SvgParameter name="stroke">'
        f"{_hex(_darker(c.rgb))}</se:SvgParameter>"
        f'<se:SvgParameter name="stroke-width">0.5</se:SvgParameter></se:Stroke>'
        f"</se:PolygonSymbolizer></se:Rule>"
        for c in classes
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc">'
        f"<NamedLayer><se:Name>{_xml(layer)}</se:Name><UserStyle>"
        f"<se:Name>{_xml(layer)}</se:Name><se:FeatureTypeStyle>{rules}"
        "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n"
    )


def _xml(text: str) -> str:
    return quoteattr(text)[1:-1]


def style_vector_output(
    path: str | os.PathLike[str],
    layer: str,
    classes: Sequence[ClassInfo],
    field: str = "class_id",
    *,
    sidecar: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Give a finished vector file its default QGIS style.

    A GeoPackage gets the style inside, as the default row of its
    ``layer_styles`` table for ``layer`` (the previous geoseg row for that layer
    is replaced, other styles are kept). Any other format gets a ``.qml``
    sidecar with the file's base name.

    Parameters
    ----------
    path
        The vector file (GPKG, GeoJSON, FlatGeobuf, GeoParquet, …).
    layer
        Layer name inside a GeoPackage (also the SLD layer name).
    classes
        The class scheme.
    field
        Integer attribute holding the class id.
    sidecar
        Where to write the ``.qml`` for non-GeoPackage files [``<stem>.qml``];
        pass a staged name when ``path`` is itself staged.

    Returns
    -------
    list of Path
        The files written or changed.

    Raises
    ------
    InputError
        ``layer`` is not a feature table of the GeoPackage.
    OutputError
        The file cannot be updated, or the sidecar would replace a raster's style.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; style a vector file after it is written")
    if path.suffix.lower() == ".gpkg":
        _insert_gpkg_style(path, layer, classes, field)
        return [path]
    target = Path(sidecar) if sidecar is not None else qml_path(path)
    if target.exists() and "<rasterrenderer" in target.read_text(
        encoding="utf-8", errors="replace"
    ):
        raise OutputError(
            f"{target} is the style of a raster with the same base name as {path.name}; "
            "give the vector file another name (QGIS reads one <name>.qml per base name)"
        )
    return [write_text_atomic(target, vector_qml(classes, field, _file_geometry(path)))]


def data_layer(path: str | os.PathLike[str], layer: str | None = None) -> str | None:
    """``layer``, or the first data layer of a styled GeoPackage (not ``layer_styles``).

    A GeoPackage with a style in it lists ``layer_styles`` as a second table, and
    GDAL readers then ask which layer is meant; geoseg's own readers take the
    first one that is not the style table. Other files: ``layer`` as given.
    """
    if layer is not None or not os.fspath(path).lower().endswith(".gpkg"):
        return layer
    with contextlib.suppress(Exception):
        import pyogrio

        names = [str(n) for n, _ in pyogrio.list_layers(path)]
        data = [n for n in names if n != "layer_styles"]
        if data and len(names) > 1:
            return data[0]
    return layer


def _file_geometry(path: Path) -> GeometryKind:
    """Geometry kind of a non-GeoPackage vector file (polygons unless it says otherwise)."""
    with contextlib.suppress(Exception):
        import pyogrio

        info = pyogrio.read_info(path)
        kind = str(info.get("geometry_type") or "")
        for name in ("Point", "LineString"):
            if name in kind:
                return name
    return "Polygon"


def _insert_gpkg_style(path: Path, layer: str, classes: Sequence[ClassInfo], field: str) -> None:
    try:
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as err:
        raise OutputError(f"cannot open GeoPackage {path}: {err}") from err
    try:
        column, geometry = _geometry_column(con, path, layer)
        qml = vector_qml(classes, field, "MultiPolygon" if "MULTI" in geometry else "Polygon")
        sld = vector_sld(classes, layer=layer, field=field)
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(_LAYER_STYLES_DDL)
            con.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                "SELECT 'layer_styles', 'attributes', 'layer_styles', '' WHERE NOT EXISTS "
                "(SELECT 1 FROM gpkg_contents WHERE lower(table_name) = 'layer_styles')"
            )
            con.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
            con.execute(
                "DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                (layer, STYLE_NAME),
            )
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', NULL)",
                (layer, column, STYLE_NAME, qml, sld, "class colors and names from geoseg"),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except sqlite3.Error as err:
        raise OutputError(f"cannot store the style in {path}: {err}") from err
    finally:
        con.close()


def _geometry_column(con: sqlite3.Connection, path: Path, layer: str) -> tuple[str, str]:
    """(geometry column name, geometry type) of a GeoPackage feature table."""
    try:
        rows = con.execute(
            "SELECT table_name, column_name, geometry_type_name FROM gpkg_geometry_columns"
        ).fetchall()
    except sqlite3.DatabaseError as err:
        raise InputError(
            f"{path} is not a GeoPackage ({err}); pass a .gpkg written by GDAL"
        ) from err
    for table, column, geometry in rows:
        if table == layer:
            return str(column), str(geometry).upper()
    known = ", ".join(sorted(str(r[0]) for r in rows)) or "none"
    raise InputError(f"{path} has no feature layer '{layer}' (layers: {known}); pass one of them")
