"""Load geoseg outputs into real QGIS and report what QGIS sees, as JSON.

Run with the system Python that has PyQGIS (Debian's ``python3-qgis``), not
geoseg's virtualenv: it imports nothing from geoseg. ``tests/test_qgis.py``
produces the outputs, runs this script and checks the facts.

Usage::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py request.json

``request.json``::

    {"raster": "out/scene_classes.tif",
     "vectors": [{"path": "out/scene.gpkg", "layer": "scene"}, {"path": "out/scene.fgb"}],
     "render": {"png": "out/render.png", "vector": 0, "panel": 480,
                "captions": ["class raster", "polygons"]}}

The report (one JSON object on stdout) gives, per layer, validity, CRS authid,
feature count, renderer type and its categories or palette entries (value,
label, color), exactly as the loaded QGIS layer has them after QGIS applied
the default style it found (GeoPackage ``layer_styles`` or ``.qml`` sidecar).
The rendering is two map panels over the raster's extent (the class raster,
the polygons of ``vectors[render.vector]``) drawn by QGIS's map renderer, and
a legend built from the palette QGIS loaded; ``render.panels`` gives each
panel's ``[x, y, width, height]`` in the PNG.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# PyQGIS is imported inside the functions: pytest (in geoseg's venv, without
# PyQGIS) imports this module when it collects doctests.


def _hex(color: Any) -> str:
    return str(color.name()).lower()


def _open_error(path: str) -> str:
    """Why GDAL (the library QGIS reads files with) cannot open ``path``.

    (``QgsMapLayer.error()`` of an invalid layer crashes QGIS 3.22, so ask GDAL.)
    """
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        gdal.ErrorReset()
        ds = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_RASTER | gdal.OF_VERBOSE_ERROR)
        return "" if ds is not None else (gdal.GetLastErrorMsg() or "GDAL cannot open it")
    finally:
        gdal.PopErrorHandler()


def raster_facts(layer: Any) -> dict[str, Any]:
    """Validity, CRS, size, renderer and palette of a loaded raster layer."""
    facts: dict[str, Any] = {"valid": layer.isValid()}
    if not layer.isValid():
        facts["error"] = _open_error(layer.source())
        return facts
    renderer = layer.renderer()
    provider = layer.dataProvider()
    facts.update(
        crs=layer.crs().authid(),
        width=layer.width(),
        height=layer.height(),
        nodata=provider.sourceNoDataValue(1) if provider.sourceHasNoDataValue(1) else None,
        renderer=renderer.type(),
        palette=[],
    )
    if renderer.type() == "paletted":
        facts["band"] = renderer.band()
        facts["palette"] = [
            {"value": int(c.value), "label": c.label, "color": _hex(c.color)}
            for c in renderer.classes()
        ]
    return facts


def vector_facts(layer: Any) -> dict[str, Any]:
    """Validity, CRS, feature count, renderer and categories of a loaded vector layer."""
    facts: dict[str, Any] = {"valid": layer.isValid()}
    if not layer.isValid():
        facts["error"] = _open_error(layer.source().split("|")[0])
        return facts
    renderer = layer.renderer()
    facts.update(
        crs=layer.crs().authid(),
        feature_count=layer.featureCount(),
        geometry_type=layer.geometryType(),
        renderer=renderer.type(),
        field=getattr(renderer, "classAttribute", lambda: None)(),
        categories=[],
    )
    if renderer.type() == "categorizedSymbol":
        facts["categories"] = [
            {
                "value": int(cat.value()),
                "label": cat.label(),
                "color": _hex(cat.symbol().color()),
                "outline": _hex(cat.symbol().symbolLayer(0).strokeColor()),
            }
            for cat in renderer.categories()
        ]
    n, _ids, names, _descriptions, _err = layer.listStylesInDatabase()
    facts["styles_in_database"] = list(names)[:n] if n > 0 else []
    return facts


def _render(layer: Any, extent: Any, size: int) -> Any:
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setOutputDpi(96)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def render(raster: Any, vector: Any, png: str, panel: int, captions: list[str]) -> dict[str, Any]:
    """Render the raster and the polygons side by side (same extent) with a legend."""
    from qgis.PyQt.QtCore import QRectF, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    legend_w, gap, head = 170, 12, 26
    image = QImage(2 * panel + legend_w + 3 * gap, panel + head + gap, QImage.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    font = QFont()
    font.setPixelSize(14)
    painter.setFont(font)
    extent = raster.extent()
    for k, layer in enumerate((raster, vector)):
        x = gap + k * (panel + gap)
        painter.drawImage(x, head, _render(layer, extent, panel))
        painter.drawText(QRectF(x, 0, panel, head), Qt.AlignCenter, captions[k])
    x, y = 3 * gap + 2 * panel, head
    for cls in raster.renderer().classes():  # the legend is what QGIS loaded, not our input
        painter.fillRect(QRectF(x, y, 22, 16), cls.color)
        painter.setPen(QColor(60, 60, 60))
        painter.drawRect(QRectF(x, y, 22, 16))
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(QRectF(x + 30, y - 2, legend_w - 30, 20), Qt.AlignVCenter, cls.label)
        y += 24
    painter.end()
    ok = image.save(png, "PNG")
    panels = [[gap + k * (panel + gap), head, panel, panel] for k in range(2)]
    return {"png": png, "saved": bool(ok), "panels": panels}


def main(request: dict[str, Any]) -> dict[str, Any]:
    """Load every layer of ``request``, gather facts, render; return the report."""
    from osgeo import gdal
    from qgis.core import Qgis, QgsRasterLayer, QgsVectorLayer

    report: dict[str, Any] = {
        "qgis_version": Qgis.QGIS_VERSION,
        "gdal_version": gdal.__version__,
        "gdal_drivers": {
            d: gdal.GetDriverByName(d) is not None for d in ("GPKG", "FlatGeobuf", "Parquet")
        },
    }
    raster = QgsRasterLayer(request["raster"], "classes", "gdal")
    report["raster"] = raster_facts(raster)
    layers = []
    report["vectors"] = []
    for item in request.get("vectors", []):
        uri = item["path"] + (f"|layername={item['layer']}" if item.get("layer") else "")
        layer = QgsVectorLayer(uri, os.path.basename(item["path"]), "ogr")
        layers.append(layer)
        report["vectors"].append({"path": item["path"], **vector_facts(layer)})
    spec = request.get("render")
    if spec and raster.isValid() and layers[spec["vector"]].isValid():
        captions = spec.get("captions", ["class raster", "polygons"])
        vector = layers[spec["vector"]]
        report["render"] = render(raster, vector, spec["png"], spec["panel"], captions)
    return report


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    with open(sys.argv[1], encoding="utf-8") as f:
        req = json.load(f)
    app = QgsApplication([], False)
    app.initQgis()
    out = main(req)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # QGIS 3.22 can crash in exitQgis() when Python tears the layers down; the
    # report is out, so leave without running the interpreter's shutdown.
    os._exit(0)
