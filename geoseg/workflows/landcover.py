"""Land cover: predict one scene, polygons styled for QGIS, area tables (per zone too), report."""

from __future__ import annotations

from pathlib import Path

from geoseg.workflows.context import RunContext
from geoseg.workflows.steps import (
    add_outputs_section,
    new_report,
    predict_scene,
    scene_band_names,
    vectorize_layer,
    write_text,
)


def run(ctx: RunContext) -> Exception | None:
    """Predict → vectorize → stats (→ zonal stats) → report sections."""
    from geoseg.analysis.stats import class_areas

    spec = ctx.spec
    scene = spec.inputs.scene
    res = predict_scene(ctx, scene, ctx.out, role="scene")
    classes = res.outputs["classes"]
    stem = Path(classes).stem
    vec = None
    if spec.vectorize.enabled:
        conf = res.outputs.get("confidence")  # predict.confidence: true adds mean_confidence
        vec = vectorize_layer(ctx, classes, stem, confidence=conf)
    with ctx.step("stats") as rec:
        table = class_areas(classes)
        for suffix, text in ((".csv", table.to_csv()), (".md", table.to_markdown())):
            rec.outputs[f"areas{suffix.replace('.', '_')}"] = str(
                write_text(ctx.out / f"areas{suffix}", text, overwrite=ctx.overwrite)
            )
        zonal = None
        if spec.stats.zones is not None:
            ctx.add_input("zones", spec.stats.zones)
            zonal = class_areas(
                classes,
                zones=spec.stats.zones,
                zone_field=spec.stats.zone_field,
                zones_layer=spec.stats.zones_layer,
            )
            for suffix, text in ((".csv", zonal.to_csv()), (".md", zonal.to_markdown())):
                rec.outputs[f"zonal_areas{suffix.replace('.', '_')}"] = str(
                    write_text(ctx.out / f"zonal_areas{suffix}", text, overwrite=ctx.overwrite)
                )
        rec.details = {"classified_m2": sum(r.area_m2 for r in table.rows)}
    top = sorted(table.rows, key=lambda r: -r.area_m2)[:3]
    ctx.summary.append(
        f"classified {sum(r.area_m2 for r in table.rows) / 1e6:,.2f} km² in {len(table.rows)} "
        f"classes; largest: " + ", ".join(f"{r.class_name} {100 * r.share:.1f} %" for r in top)
    )
    if vec is not None:
        ctx.summary.append(f"{vec.features:,} polygons in {Path(vec.path).name}")
    report = new_report(
        ctx, f"{Path(scene).name}: land cover", f"{Path(scene).name} · model {ctx.bundle.name}"
    )
    if report is None:
        return None
    report.add_text("Summary", [s[0].upper() + s[1:] + "." for s in ctx.summary])
    report.add_quicklooks(
        scene=scene, classes=classes, band_names=scene_band_names(scene, res.record, ctx.bundle)
    )
    if vec is not None:
        report.add_map("Map of the polygons", vec.path, classes=classes, layer=vec.layer)
    report.add_table("Area per class", table)
    if zonal is not None:
        report.add_table(f"Area per class and zone ({spec.stats.zone_field})", zonal)
    add_outputs_section(ctx)
    return None
