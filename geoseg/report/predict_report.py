"""A report for a finished ``geoseg predict`` run: quicklooks, map, areas, run record."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from geoseg.errors import GeosegError, InputError
from geoseg.report.builder import Report
from geoseg.report.records import read_record

log = logging.getLogger(__name__)


def report_for_predict(
    result_or_run_json: Any,
    out_html: str | os.PathLike[str],
    *,
    vectors: str | os.PathLike[str] | None = None,
    stats: Any = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` for one scene's predict outputs.

    Parameters
    ----------
    result_or_run_json
        A :class:`geoseg.pipeline.predict.PredictResult`, the path of its
        ``<stem>_run.json``, or an output folder holding exactly one run record.
    out_html
        The report to write (``.html``), atomically.
    vectors
        Polygons to map [the run's own polygon output, if it wrote one].
    stats
        A :class:`~geoseg.analysis.stats.AreaTable` (:func:`~geoseg.analysis.stats.class_areas`).
    title
        Page title [``<scene stem>: <bundle name>``].

    Returns
    -------
    Path
        The report written.

    Raises
    ------
    InputError
        No run record, or a record without a class raster.
    """
    record = _record_of(result_or_run_json)
    outputs = record.get("outputs") or {}
    classes = outputs.get("classes")
    if not classes or not Path(classes).exists():
        raise InputError(
            f"the run record names no existing class raster ({classes!r}); "
            "point at the run record of a finished predict run"
        )
    scene = record.get("scene") or {}
    bundle = record.get("bundle") or {}
    stem = Path(str(scene.get("path", classes))).stem
    report = Report(
        title or f"{stem}: {bundle.get('name', 'classes')}",
        subtitle=f"geoseg predict of {Path(str(scene.get('path', '?'))).name}, "
        f"run {record.get('created', '?')}",
    )
    from geoseg.analysis.stats import class_areas

    table = stats if stats is not None else class_areas(classes)
    scheme = _scheme(classes)
    _summary(report, record, table)
    if record.get("warnings"):  # input shifts and degenerate results: before any finding
        report.add_text("Warnings: read these before the numbers", record["warnings"])
    scene_path = scene.get("path")
    if scene_path and Path(scene_path).exists():
        report.add_quicklooks(
            scene=scene_path, classes=classes, band_names=_band_names(record, scene_path)
        )
    else:
        report.add_quicklooks(classes=classes)
        report.add_text(
            "Scene", f"The scene {scene_path} is not here any more; no scene quicklook."
        )
    vectors = vectors if vectors is not None else outputs.get("vector")
    if vectors and Path(vectors).exists():
        report.add_map("Map of the polygons", vectors, classes=classes)
    report.add_table("Area per class", table, scheme=scheme)
    report.add_record("Run record", record)
    return report.write(out_html)


def _record_of(source: Any) -> dict[str, Any]:
    record = getattr(source, "record", None)
    if isinstance(record, dict):
        return record
    path = Path(os.fspath(source))
    if path.is_dir():
        found = sorted(path.glob("*_run.json"))
        if len(found) != 1:
            raise InputError(
                f"{path} holds {len(found)} run records (*_run.json); pass the one to report on"
            )
        path = found[0]
    return read_record(path)


def _scheme(classes: str) -> Any:
    from geoseg.io.classraster import read_scheme

    return read_scheme(classes)


def _summary(report: Report, record: dict[str, Any], table: Any) -> None:
    rows = sorted(getattr(table, "rows", ()), key=lambda r: -r.area_m2)
    total = sum(r.area_m2 for r in rows)
    lines = [f"Classified area {total / 1e6:,.2f} km² in {len(rows)} classes."]
    if rows:
        top = ", ".join(f"{r.class_name} {100 * r.share:.1f} %" for r in rows[:3])
        lines.append(f"Largest: {top}.")
    timings = record.get("timings_s") or {}
    if "total" in timings:
        device = (record.get("parameters") or {}).get("device", "?")
        lines.append(
            f"The run took {timings['total']:,.1f} s on {device} "
            f"({record.get('chips_inferred', 0):,} chips inferred)."
        )
    report.add_text("Summary", " ".join(lines))


def _band_names(record: dict[str, Any], scene_path: str) -> list[str | None] | None:
    """Band names of the scene file, from the bundle the run used (its bands, in order)."""
    import rasterio

    from geoseg.models.bundle import load_bundle
    from geoseg.models.shipped import shipped_bundles

    info = record.get("bundle") or {}
    used = (record.get("scene") or {}).get("bands") or []
    shipped = shipped_bundles().get(str(info.get("name")))  # a name, never a path from a record
    if shipped is None:
        return None
    try:
        bundle = load_bundle(shipped)
    except GeosegError:
        return None
    if bundle.sha256 != info.get("sha256") or len(bundle.bands) != len(used):
        log.info(
            "bundle %s is not the one the run used; band names from the file", info.get("name")
        )
        return None
    with rasterio.open(scene_path) as ds:
        names: list[str | None] = [None] * ds.count
    for idx, name in zip(used, bundle.bands, strict=True):
        if 1 <= int(idx) <= len(names):
            names[int(idx) - 1] = name
    return names
