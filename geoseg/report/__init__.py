"""Self-contained HTML reports: quicklooks, area tables, run records, an offline map.

A report is one ``.html`` file with everything inline (images as data URIs,
Leaflet's script and style), so it opens without a network. Workflows build
one with :class:`Report`; :func:`report_for_predict` makes the standard one
for a ``geoseg predict`` output.

::

    from geoseg.report import Report
    r = Report("Zion land cover", subtitle="Landsat-8, 2015-08-18")
    r.add_quicklooks(scene="zion.tif", classes="out/zion_classes.tif")
    r.add_map("Polygons", "out/zion_classes.gpkg", classes="out/zion_classes.tif")
    r.add_table("Area per class", geoseg.analysis.stats.class_areas("out/zion_classes.tif"))
    r.add_record("Run record", "out/zion_run.json")
    r.write("out/report.html")
"""

from __future__ import annotations

from geoseg.report.builder import Report
from geoseg.report.images import BandChoice, band_roles, choose_bands
from geoseg.report.mapdata import MapData, build_map_data
from geoseg.report.predict_report import report_for_predict
from geoseg.report.records import read_record, record_facts

__all__ = [
    "BandChoice",
    "MapData",
    "Report",
    "band_roles",
    "build_map_data",
    "choose_bands",
    "read_record",
    "record_facts",
    "report_for_predict",
]
