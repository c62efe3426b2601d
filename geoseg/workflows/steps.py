"""Steps the workflows share: predict a scene, vectorize a layer, tables, report pieces.

Each step composes the library (:func:`geoseg.predict`, :func:`geoseg.vectorize`,
:mod:`geoseg.analysis.stats`, :mod:`geoseg.report`); nothing here re-implements them.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geoseg.atomic import write_text_atomic
from geoseg.errors import InputError
from geoseg.workflows.context import RunContext

VECTOR_SUFFIX = {"gpkg": ".gpkg", "geojson": ".geojson", "fgb": ".fgb", "parquet": ".parquet"}


def predict_scene(
    ctx: RunContext, scene: str, folder: Path, *, role: str, mask: str | None = None
) -> Any:
    """Predict one scene into ``folder`` with the workflow's model, options and engine.

    ``mask`` (this date's QA or cloud mask) replaces ``predict.mask`` for this scene.
    """
    from geoseg.pipeline.predict import predict

    ctx.add_input(role, scene)
    options = ctx.predict_options()
    if mask is not None:
        ctx.add_input(f"{role} mask", mask)
        options["mask"] = mask
    with ctx.step(f"predict {role}") as rec:
        [res] = predict(
            scene,
            ctx.bundle,
            folder,
            client=ctx.client,
            progress=ctx.progress_for(f"predict {role}"),
            **options,
        )
        rec.outputs.update({f"{role}_{k}": v for k, v in res.outputs.items()})
        rec.details = {
            "scene": scene,
            "chips_inferred": res.record.get("chips_inferred"),
            "device": (res.record.get("parameters") or {}).get("device"),
        }
    return res


MASKED_COLUMNS = ("date", "masked pixels", "share of the scene", "area (km²)")


def masked_rows(results: Sequence[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    """Masked pixels per date (cloud, shadow … from ``--mask``), with their area.

    Empty when no date had a mask. The area is planar in the scene's projected CRS
    ("n/a" for a geographic CRS or none).
    """
    from rasterio.crs import CRS

    rows = []
    for label, res in results:
        inp = res.record.get("input") or {}
        if inp.get("mask") is None:
            continue
        scene = res.record.get("scene") or {}
        masked = int(inp.get("pixels_masked") or 0)
        rows_, cols = scene.get("shape") or (0, 0)
        share = masked / (rows_ * cols) if rows_ and cols else 0.0
        a, _, _, _, e, _ = (scene.get("transform") or [0.0] * 6)[:6]
        crs = CRS.from_user_input(scene["crs"]) if scene.get("crs") else None
        area: Any = "n/a"
        if crs is not None and not crs.is_geographic:
            metres = float(crs.linear_units_factor[1])
            area = round(masked * abs(a * e) * metres**2 / 1e6, 3)
        rows.append((label, masked, f"{100 * share:.1f} %", area))
    return rows


def vector_path(folder: Path, stem: str, fmt: str) -> Path:
    """``<folder>/<stem>.<format suffix>``."""
    return folder / f"{stem}{VECTOR_SUFFIX[fmt]}"


def class_ids(
    raster: str | os.PathLike[str], wanted: Sequence[int | str] | None
) -> list[int] | None:
    """Ids of the classes ``wanted`` (names, case-insensitive, or ids) in a class raster."""
    if wanted is None:
        return None
    import rasterio

    from geoseg.io.classraster import class_names

    with rasterio.open(raster) as ds:
        names = class_names(ds)
    by_name = {n.lower(): i for i, n in names.items()}
    out = []
    for w in wanted:
        if isinstance(w, int):
            out.append(w)
        elif w.lower() in by_name:
            out.append(by_name[w.lower()])
        else:
            raise InputError(
                f"vectorize.classes names '{w}', which {Path(raster).name} does not have; "
                f"use one of {', '.join(names.values())}"
            )
    return out


def vectorize_layer(
    ctx: RunContext,
    raster: str | os.PathLike[str],
    name: str,
    *,
    ids: Sequence[int] | None = None,
    date: str | None = None,
    confidence: str | None = None,
    overwrite: bool | None = None,
) -> Any:
    """Polygons of a class raster with the workflow's vectorize options, styled for QGIS.

    ``ids`` (when given) wins over the spec's ``vectorize.classes``. The output
    is ``<out>/<name>.<format>``; a GeoPackage gets its QGIS style inside,
    other formats a ``.qml`` beside them. ``confidence`` (predict's confidence
    raster) adds ``mean_confidence``; ``overwrite`` defaults to the run's.
    """
    import rasterio

    from geoseg.io.styles import style_vector_output
    from geoseg.report.quicklook import classes_of
    from geoseg.vector import vectorize

    v = ctx.spec.vectorize
    path = vector_path(ctx.out, name, v.format)
    with ctx.step(f"vectorize {name}") as rec:
        res = vectorize(
            raster,
            path,
            layer=name,
            connectivity=v.connectivity,
            class_ids=ids if ids is not None else class_ids(raster, v.classes),
            min_area=v.min_area,
            simplify=v.simplify,
            smooth=v.smooth,
            confidence=confidence,
            date=date,
            overwrite=ctx.overwrite if overwrite is None else overwrite,
            progress=ctx.progress_for(f"vectorize {name}"),
        )
        with rasterio.open(raster) as ds:
            scheme = classes_of(ds)
        if scheme:
            style_vector_output(res.path, res.layer, scheme)
        rec.outputs[f"{name}_polygons"] = str(res.path)
        rec.details = {
            "features": res.features,
            "area_m2": sum(res.per_class_area_m2.values()),
        }
    return res


def write_csv(
    path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, overwrite: bool
) -> Path:
    """A CSV file, written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return write_text_atomic(path, buf.getvalue(), overwrite=overwrite)


def write_text(path: Path, text: str, *, overwrite: bool) -> Path:
    """A text file (CSV, Markdown), written atomically."""
    return write_text_atomic(path, text, overwrite=overwrite)


def scene_band_names(scene: str, record: dict[str, Any], bundle: Any) -> list[str | None] | None:
    """Names of the scene's bands for quicklooks, from the bands the model read.

    Scenes without band descriptions (such as the Pucallpa composites) then
    still get a true- and false-color quicklook with the right bands.
    """
    import rasterio

    used = (record.get("scene") or {}).get("bands") or []
    if len(used) != len(bundle.bands):
        return None
    with rasterio.open(scene) as ds:
        names: list[str | None] = [None] * ds.count
    for idx, name in zip(used, bundle.bands, strict=True):
        if 1 <= int(idx) <= len(names):
            names[int(idx) - 1] = name
    return names


def new_report(ctx: RunContext, default_title: str, subtitle: str) -> Any:
    """A :class:`geoseg.report.Report` for the run (kept on the context, written last)."""
    from geoseg.report import Report

    if not ctx.spec.report:
        return None
    ctx.report = Report(ctx.spec.title or default_title, subtitle=subtitle)
    return ctx.report


def add_outputs_section(ctx: RunContext) -> None:
    """A table of every output file: name, file (relative to the output folder), size."""
    if ctx.report is None:
        return
    rows = []
    for key, path in sorted(ctx.outputs.items()):
        p = Path(path)
        try:
            rel = p.relative_to(ctx.out).as_posix()
        except ValueError:
            rel = str(p)
        size = p.stat().st_size if p.exists() else 0
        rows.append((key, rel, f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size:,} B"))
    ctx.report.add_table(
        "Outputs",
        ["output", "file", "size"],
        rows,
        note=f"Files under {ctx.out}; workflow_run.json there records inputs, spec and steps.",
    )
