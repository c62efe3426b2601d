"""Flood: water before and after, flood = water after that was not water before.

Steps: predict water on the pre- and the post-event scene (each into its own
folder, ``pre/`` and ``post/``), :func:`geoseg.change.flood_extent` (the post map
is warped onto the pre grid, nearest, when the grids differ), a total-water
raster (permanent water + flood, derived from the flood raster so the two agree
pixel for pixel, MMU included), polygons of flood, permanent and total water,
an area table, the transitions, and the report.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from geoseg.workflows.context import RunContext
from geoseg.workflows.steps import (
    MASKED_COLUMNS,
    add_outputs_section,
    masked_rows,
    new_report,
    predict_scene,
    scene_band_names,
    vectorize_layer,
    write_csv,
    write_text,
)

AREA_COLUMNS = ("layer", "class_id", "pixels", "area_m2", "area_ha", "area_km2")
WATER_COLOR = "#1F78B4"


def _iso(date: str | None) -> str | None:
    """``date`` when it is a full ISO date (polygons get it as ``date``), else None."""
    if not date:
        return None
    try:
        datetime.fromisoformat(date)
    except ValueError:
        return None
    return date


def run(ctx: RunContext) -> Exception | None:
    """Predict pre/post → flood extent → total water → polygons → tables → report."""
    from geoseg.change import change_map, flood_extent

    spec = ctx.spec
    inp, ch = spec.inputs, spec.change
    pre = predict_scene(ctx, inp.pre, ctx.out / "pre", role="pre", mask=inp.pre_mask)
    post = predict_scene(ctx, inp.post, ctx.out / "post", role="post", mask=inp.post_mask)
    with ctx.step("flood extent") as rec:
        flood = flood_extent(
            pre.outputs["classes"],
            post.outputs["classes"],
            out=ctx.out / "flood_extent.tif",
            water=tuple(ch.water),
            receded=ch.receded,
            mmu_m2=ch.mmu_m2,
            connectivity=ch.connectivity,
            align=ch.align,
            overwrite=ctx.overwrite,
        )
        rec.outputs["flood_extent"] = str(flood.path)
        rec.details = {
            "grid": flood.grid,
            "post_reprojected": bool(flood.inputs[1]["reprojected"]),
            "mmu_pixels_dropped": flood.mmu_pixels,
        }
    ids = {c.name: c.id for c in flood.classes}
    with ctx.step("total water") as rec:
        # total water on the common grid = permanent water + flood of the flood raster
        total = change_map(
            flood.path,
            flood.path,
            out=ctx.out / "total_water.tif",
            rules={
                "water": {
                    "from": ["permanent water", "flood"],
                    "to": ["permanent water", "flood"],
                    "color": WATER_COLOR,
                }
            },
            no_change="not water",
            overwrite=ctx.overwrite,
        )
        rec.outputs["total_water"] = str(total.path)
    polygons = _polygons(ctx, flood.path, total.path, ids, inp.post_date)
    rows = _area_rows(flood, total)
    with ctx.step("tables") as rec:
        rec.outputs["flood_areas_csv"] = str(
            write_csv(ctx.out / "flood_areas.csv", AREA_COLUMNS, rows, overwrite=ctx.overwrite)
        )
        t = flood.transitions
        rec.outputs["transitions_csv"] = str(
            write_text(ctx.out / "transitions.csv", t.to_csv(), overwrite=ctx.overwrite)
        )
        rec.outputs["transitions_md"] = str(
            write_text(ctx.out / "transitions.md", t.to_markdown(), overwrite=ctx.overwrite)
        )
    area = {r[0]: r[3] for r in rows}
    ctx.summary.append(
        f"flood {area['flood'] / 1e4:,.1f} ha, permanent water "
        f"{area['permanent water'] / 1e4:,.1f} ha, total water {area['total water'] / 1e4:,.1f} ha"
        + (f", receded {area['receded'] / 1e4:,.1f} ha" if "receded" in area else "")
    )
    if flood.inputs[1]["reprojected"]:
        ctx.summary.append("the post-event map was warped onto the pre-event grid (nearest)")
    _report(ctx, pre, post, flood, total, polygons, rows)
    return None


def _polygons(
    ctx: RunContext, flood: Path, total: Path, ids: dict[str, int], date: str | None
) -> dict[str, Any]:
    if not ctx.spec.vectorize.enabled:
        return {}
    iso = _iso(date)
    return {
        "flood": vectorize_layer(ctx, flood, "flood", ids=[ids["flood"]], date=iso),
        "permanent_water": vectorize_layer(
            ctx, flood, "permanent_water", ids=[ids["permanent water"]], date=iso
        ),
        "total_water": vectorize_layer(ctx, total, "total_water", ids=[1], date=iso),
    }


def _area_rows(flood: Any, total: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for r in flood.areas.rows:
        rows.append((r.class_name, r.class_id, r.pixels, r.area_m2, r.area_ha, r.area_km2))
    water = [r for r in total.areas.rows if r.class_name == "water"]
    pixels = sum(r.pixels for r in water)
    m2 = sum(r.area_m2 for r in water)
    rows.append(("total water", None, pixels, m2, m2 / 1e4, m2 / 1e6))
    for name in ("permanent water", "flood"):
        if name not in [r[0] for r in rows]:
            rows.append((name, None, 0, 0.0, 0.0, 0.0))
    return rows


def _report(
    ctx: RunContext,
    pre: Any,
    post: Any,
    flood: Any,
    total: Any,
    polygons: dict[str, Any],
    rows: list[tuple[Any, ...]],
) -> None:
    from geoseg.change.transitions import TRANSITION_COLUMNS

    inp = ctx.spec.inputs
    pre_label = inp.pre_date or Path(inp.pre).name
    post_label = inp.post_date or Path(inp.post).name
    report = new_report(ctx, f"Flood extent {pre_label} → {post_label}", f"model {ctx.bundle.name}")
    if report is None:
        return
    notes = [s[0].upper() + s[1:] + "." for s in ctx.summary]
    notes.append(
        "Flood = water after the event where there was none before; permanent water = water at "
        "both dates; total water = permanent water + flood; receded = water before only. Only "
        "pixels valid in both maps are compared, on the pre-event grid: a post-event scene on "
        "another grid is warped onto it with nearest-neighbour resampling."
    )
    report.add_text("Summary", notes)
    for label, res, scene in ((pre_label, pre, inp.pre), (post_label, post, inp.post)):
        report.add_quicklooks(
            scene=scene,
            classes=res.outputs["classes"],
            band_names=scene_band_names(scene, res.record, ctx.bundle),
            title=f"Water, {label}",
        )
    report.add_quicklooks(classes=flood.path, title="Flood extent")
    if "flood" in polygons:
        # no raster overlay: the map would draw the classes without polygons in black
        report.add_map("Map: flood polygons", polygons["flood"].path, classes=flood.path,
                       layer=polygons["flood"].layer, overlay=False)  # fmt: skip
    report.add_table(
        "Areas",
        list(AREA_COLUMNS),
        rows,
        note=f"{flood.path.name} and {Path(total.path).name} ({flood.areas.crs}, areas "
        + ("ellipsoidal per pixel row" if flood.areas.geographic else "planar, in the CRS")
        + "); total water = permanent water + flood, pixel for pixel",
    )
    masked = masked_rows([(pre_label, pre), (post_label, post)])
    if masked:
        report.add_table(
            "Masked (cloud, shadow … per --mask)",
            list(MASKED_COLUMNS),
            masked,
            note="Masked pixels are no data in the class maps: never water, never flood.",
        )
    report.add_table(
        "Transitions (pre → post)",
        list(TRANSITION_COLUMNS),
        [_transition_cells(r) for r in flood.transitions.rows],
        note=flood.transitions.note(),
    )
    add_outputs_section(ctx)


def _transition_cells(r: Any) -> tuple[Any, ...]:
    return (r.from_id, r.from_name, r.to_id, r.to_name, r.pixels, r.area_m2, r.area_ha)
