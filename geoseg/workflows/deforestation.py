"""Deforestation: forest per date, change first → last date, the year of loss, polygons.

Steps: predict forest on every date of the series (each into ``<out>/<date>/``);
:func:`geoseg.change.change_map` from the first to the last date with the
spec's rules (loss, gain, …; gain is its own class and its own polygons);
:func:`geoseg.change.first_change_year` over the whole series with the ``loss``
rule's classes (the date at which a pixel was first *seen* lost and stayed
lost); ``loss_period.tif``, the same as uint8 classes named by period
(``loss 1985–2000``) so it can be vectorized; polygons; tables; report.

The two loss products answer different questions and can differ: the change
map compares the first and the last date only; the year of loss follows every
date (a pixel cleared, regrown and cleared again is dated by its last
clearing, and one that was non-forest at t0, forest in between and cleared
later counts as loss there but not in the change map).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geoseg.safepath import safe_name
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

LOSS_COLORS = ("#FDAE61", "#F46D43", "#D73027", "#A50026", "#67001F")


def run(ctx: RunContext) -> Exception | None:
    """Predict each date → change map → year of loss → loss periods → polygons → tables."""
    from geoseg.change import as_rules, change_map, date_axis, first_change_year

    spec = ctx.spec
    series = spec.inputs.series
    axis = date_axis([s.date for s in series], len(series))
    dates, labels = axis.values, axis.labels
    folders = [ctx.out / safe_name(str(s.date), "inputs.series date") for s in series]
    preds = [
        predict_scene(ctx, s.scene, folder, role=str(s.date), mask=s.mask)
        for s, folder in zip(series, folders, strict=True)
    ]
    rasters = [p.outputs["classes"] for p in preds]
    ch = spec.change
    rules = as_rules(ch.rules)
    loss_rule = next(r for r in rules if r.name == "loss")
    with ctx.step("forest change") as rec:
        change = change_map(
            rasters[0],
            rasters[-1],
            out=ctx.out / "forest_change.tif",
            rules=rules,
            mmu_m2=ch.mmu_m2,
            connectivity=ch.connectivity,
            align=ch.align,
            overwrite=ctx.overwrite,
        )
        rec.outputs["forest_change"] = str(change.path)
        rec.details = {"reprojected": [i["reprojected"] for i in change.inputs]}
    with ctx.step("year of loss") as rec:
        years = first_change_year(
            rasters,
            out=ctx.out / "loss_year.tif",
            from_classes=loss_rule.from_classes,
            to_classes=loss_rule.to_classes,
            dates=[s.date for s in series],  # as written: first_change_year reads them itself
            mmu_m2=ch.mmu_m2,
            connectivity=ch.connectivity,
            align=ch.align,
            overwrite=ctx.overwrite,
        )
        rec.outputs["loss_year"] = str(years.path)
        period = _loss_periods(years.path, ctx.out / "loss_period.tif", dates, labels)
        rec.outputs["loss_period"] = str(period)
        rec.details = {"pixels_by_date": {str(k): v for k, v in years.pixels.items()}}
    polygons: dict[str, Any] = {}
    if spec.vectorize.enabled:
        polygons["loss"] = vectorize_layer(ctx, period, "loss", ids=list(range(1, len(dates))))
        gain = [c.id for c in change.classes if c.name == "gain"]
        if gain:
            polygons["gain"] = vectorize_layer(ctx, change.path, "gain", ids=gain)
    by_date = [
        (
            label,
            prev,
            years.pixels.get(d, 0),
            years.area_m2.get(d, 0.0),
            years.area_m2.get(d, 0.0) / 1e4,
        )
        for prev, label, d in zip(labels, labels[1:], dates[1:], strict=False)
    ]
    with ctx.step("tables") as rec:
        rec.outputs["change_areas_csv"] = str(
            write_text(ctx.out / "change_areas.csv", change.areas.to_csv(), overwrite=ctx.overwrite)
        )
        rec.outputs["loss_by_date_csv"] = str(
            write_csv(
                ctx.out / "loss_by_date.csv",
                ("date", "previous_date", "pixels", "area_m2", "area_ha"),
                by_date,
                overwrite=ctx.overwrite,
            )
        )
        t = change.transitions
        rec.outputs["transitions_csv"] = str(
            write_text(ctx.out / "transitions.csv", t.to_csv(), overwrite=ctx.overwrite)
        )
        rec.outputs["transitions_md"] = str(
            write_text(ctx.out / "transitions.md", t.to_markdown(), overwrite=ctx.overwrite)
        )
    ctx.summary.append(
        f"{labels[0]} → {labels[-1]}: "
        + ", ".join(f"{r.class_name} {r.area_ha:,.1f} ha" for r in change.areas.rows if r.class_id)
    )
    ctx.summary.append(
        "loss first seen at " + ", ".join(f"{d}: {a / 1e4:,.1f} ha" for d, _, _, a, _ in by_date)
    )
    _report(ctx, preds, change, period, polygons, by_date)
    return None


def _loss_periods(
    year_raster: Path, out: Path, dates: tuple[int, ...], labels: tuple[str, ...]
) -> Path:
    """The year-of-loss raster as uint8 classes: 0 no loss, k = lost between dates k-1 and k.

    ``dates`` are the values the year raster holds, ``labels`` the dates as written.
    """
    import rasterio

    from geoseg.grid.windows import PixelWindow
    from geoseg.io.writer import RasterSink
    from geoseg.schemes import ClassInfo

    classes = [ClassInfo(0, "no loss", "#E8E8E8", "never seen lost (or never observed)")]
    for k in range(1, len(dates)):
        classes.append(
            ClassInfo(
                k,
                f"loss {labels[k - 1]}–{labels[k]}",
                LOSS_COLORS[min(k - 1, len(LOSS_COLORS) - 1)],
                f"forest at or before {labels[k - 1]}, first seen lost in {labels[k]}, lost since",
            )
        )
    lut = np.zeros(65536, dtype=np.uint8)
    for k, d in enumerate(dates):
        if k:
            lut[d] = k
    with rasterio.open(year_raster) as ds:
        sink = RasterSink(
            out,
            shape=(ds.height, ds.width),
            crs=ds.crs,
            transform=ds.transform,
            classes=tuple(classes),
            description="loss period",
        )
        try:
            for _, window in ds.block_windows(1):
                values = lut[ds.read(1, window=window)]
                sink.write(PixelWindow.from_rasterio(window), values)
            staged = sink.finish()
        except BaseException:
            sink.abort()
            raise
    return sink.publish(staged)


def _report(
    ctx: RunContext,
    preds: list[Any],
    change: Any,
    period: Path,
    polygons: dict[str, Any],
    by_date: list[tuple[Any, ...]],
) -> None:
    from geoseg.change.transitions import TRANSITION_COLUMNS

    series = ctx.spec.inputs.series
    report = new_report(
        ctx,
        f"Forest change {series[0].date} → {series[-1].date}",
        f"{len(series)} dates · model {ctx.bundle.name}",
    )
    if report is None:
        return
    notes = [s[0].upper() + s[1:] + "." for s in ctx.summary]
    notes.append(
        "A loss is dated by the first date at which it is seen: forest at one date and non-forest "
        "at the next and every later date. The change map compares only the first and last "
        "dates; gain is shown as its own class and layer."
    )
    report.add_text("Summary", notes)
    for item, res in ((series[0], preds[0]), (series[-1], preds[-1])):
        report.add_quicklooks(
            scene=item.scene,
            classes=res.outputs["classes"],
            band_names=scene_band_names(item.scene, res.record, ctx.bundle),
            title=f"Forest, {item.date}",
        )
    report.add_quicklooks(classes=change.path, title="Change, first → last date")
    report.add_quicklooks(classes=period, title="Loss by period")
    if "loss" in polygons:
        report.add_map(
            "Map: loss polygons by period",
            polygons["loss"].path,
            classes=period,
            layer=polygons["loss"].layer,
            overlay=False,  # it would draw "no loss" (no polygons) in black
        )
    masked = masked_rows([(str(s.date), res) for s, res in zip(series, preds, strict=True)])
    if masked:
        report.add_table(
            "Masked (cloud, shadow … per --mask)",
            list(MASKED_COLUMNS),
            masked,
            note="Masked pixels are no data: a pixel masked at either date is never change.",
        )
    report.add_table("Change areas (first → last date)", change.areas)
    report.add_table(
        "Loss by date",
        ["date", "previous_date", "pixels", "area_m2", "area_ha"],
        [(str(d), str(p), *rest) for d, p, *rest in by_date],  # dates, not numbers: no "2,000"
        note="Area first seen lost at each date (and lost at every later date).",
    )
    report.add_table(
        "Transitions (first → last date)",
        list(TRANSITION_COLUMNS),
        [
            (r.from_id, r.from_name, r.to_id, r.to_name, r.pixels, r.area_m2, r.area_ha)
            for r in change.transitions.rows
        ],
        note=change.transitions.note(),
    )
    add_outputs_section(ctx)
