"""Batch: every scene of a folder, glob or STAC catalog; resumable; one manifest; a summary.

Scenes are predicted by :func:`geoseg.predict`, which keeps ``manifest.json``
in the output folder (see :mod:`geoseg.pipeline.batch`): a re-run skips a scene whose
input, model and options are unchanged and whose outputs are all there, and
retries failed ones. Polygons are made for scenes predicted in this run and
for finished scenes that lack them. A STAC catalog's items become small VRTs
(:mod:`geoseg.pipeline.stac`) and the results a STAC catalog (``stac/catalog.json``);
items without the model's bands are skipped and listed, or fail the run
(``on_missing_bands``). A scene that fails does not stop the others: the
summary, report and record are written, then the run raises
:class:`~geoseg.pipeline.batch.BatchError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geoseg.errors import InputError
from geoseg.workflows.context import RunContext
from geoseg.workflows.steps import add_outputs_section, new_report, vectorize_layer, write_csv

MAX_QUICKLOOKS = 6


def run(ctx: RunContext) -> Exception | None:
    """Scenes → predict (manifest) → polygons → summary table → report."""
    from geoseg.errors import BatchError
    from geoseg.pipeline.batch import MANIFEST
    from geoseg.pipeline.predict import predict
    from geoseg.pipeline.scenes import expand_scenes

    inp = ctx.spec.inputs
    skipped: list[tuple[str, str]] = []
    items: list[Any] = []
    if inp.stac is not None:
        ctx.add_input("stac", inp.stac)
        paths, items, skipped = _stac_scenes(ctx)
    else:
        paths = expand_scenes(inp.scenes)
    if not paths:
        raise InputError("no scene to predict: every item lacks the model's bands")
    failure: Exception | None = None
    with ctx.step("predict") as rec:
        try:
            results = predict(
                paths,
                ctx.bundle,
                ctx.out,
                client=ctx.client,
                progress=ctx.progress_for("predict"),
                **ctx.predict_options(),
            )
        except BatchError as err:
            results, failure = err.results, err
        states = [r.state for r in results]
        rec.details = {s: states.count(s) for s in ("done", "skipped", "failed")}
        if (ctx.out / MANIFEST).exists():
            rec.outputs["manifest"] = str(ctx.out / MANIFEST)
    _record_inputs(ctx, paths)
    if items:
        from geoseg.pipeline.stac import write_catalog

        with ctx.step("stac catalog") as rec:
            rec.outputs["stac_catalog"] = str(write_catalog(ctx.out, items, results, ctx.bundle))
    polygons = _polygons(ctx, results)
    rows, columns = _summary_rows(results, polygons, skipped)
    with ctx.step("summary") as rec:
        rec.outputs["summary_csv"] = str(
            write_csv(ctx.out / "summary.csv", columns, rows, overwrite=True)
        )
    counts = rec_counts(results, skipped)
    ctx.summary.append(
        ", ".join(f"{n} {state}" for state, n in counts.items() if n) + f" of {len(rows)} scenes"
    )
    _report(ctx, results, columns, rows)
    return failure


def rec_counts(results: list[Any], skipped: list[tuple[str, str]]) -> dict[str, int]:
    """Scenes per state: done (this run), skipped (done before), failed, no bands (STAC)."""
    states = [r.state for r in results]
    return {
        "done": states.count("done"),
        "skipped (already done)": states.count("skipped"),
        "failed": states.count("failed"),
        "skipped (missing bands)": len(skipped),
    }


def _stac_scenes(ctx: RunContext) -> tuple[list[str], list[Any], list[tuple[str, str]]]:
    from geoseg.pipeline.stac import band_sources, input_vrt, read_items, write_vrt

    inp = ctx.spec.inputs
    items = read_items(inp.stac)
    if inp.items is not None:
        known = {it.id for it in items}
        unknown = [i for i in inp.items if i not in known]
        if unknown:
            raise InputError(
                f"inputs.items names {unknown[0]!r}, which {inp.stac} does not hold; "
                f"its items: {', '.join(sorted(known))}"
            )
        items = [it for it in items if it.id in inp.items]
    bands = ctx.bundle.bands
    paths, kept, skipped = [], [], []
    with ctx.step("stac items") as rec:
        for item in items:
            try:
                sources = band_sources(item, bands, asset=inp.asset)
            except InputError as err:
                if inp.on_missing_bands == "fail":
                    raise InputError(
                        f"{err} (or set inputs.on_missing_bands: skip to leave such items out)"
                    ) from err
                skipped.append((item.id, str(err)))
                continue
            vrt = write_vrt(input_vrt(ctx.out, item), sources, bands)
            paths.append(str(vrt))
            kept.append(item)
        rec.details = {"items": len(items), "skipped": [s[0] for s in skipped]}
    return paths, kept, skipped


def _record_inputs(ctx: RunContext, paths: list[str]) -> None:
    """Inputs with their hashes, from the manifest when there is one (no second read)."""
    from geoseg.pipeline.batch import MANIFEST

    manifest = ctx.out / MANIFEST
    entries: dict[str, Any] = {}
    if manifest.exists():
        entries = json.loads(manifest.read_text(encoding="utf-8")).get("scenes", {})
    by_path = {e.get("path"): e for e in entries.values()}
    for p in paths:
        fp = (by_path.get(p) or {}).get("fingerprint")
        if fp:
            ctx.inputs.append({"role": "scene", "path": p, **fp})
        else:
            ctx.add_input("scene", p)


def _polygons(ctx: RunContext, results: list[Any]) -> dict[str, Any]:
    from geoseg.workflows.steps import vector_path

    out: dict[str, Any] = {}
    if not ctx.spec.vectorize.enabled:
        return out
    for res in results:
        classes = res.outputs.get("classes")
        if res.state == "failed" or not classes:
            continue
        stem = Path(classes).stem
        path = vector_path(ctx.out, stem, ctx.spec.vectorize.format)
        if res.state == "skipped" and path.exists() and not ctx.overwrite:
            out[stem] = path  # made by an earlier run from the same class raster
            continue
        out[stem] = vectorize_layer(ctx, classes, stem, overwrite=True).path
    return out


def _summary_rows(
    results: list[Any], polygons: dict[str, Any], skipped: list[tuple[str, str]]
) -> tuple[list[tuple[Any, ...]], list[str]]:
    from geoseg.analysis.stats import class_areas

    tables = {}
    names: list[str] = []
    for res in results:
        classes = res.outputs.get("classes")
        if res.state != "failed" and classes:
            tables[res.scene] = class_areas(classes)
            for r in tables[res.scene].rows:
                if r.class_name not in names:
                    names.append(r.class_name)
    columns = ["scene", "state", "classes", "polygons", *[f"{n}_ha" for n in names], "error"]
    rows: list[tuple[Any, ...]] = []
    for res in results:
        classes = res.outputs.get("classes")
        table = tables.get(res.scene)
        ha = {r.class_name: r.area_ha for r in table.rows} if table else {}
        stem = Path(classes).stem if classes else None
        poly = polygons.get(stem) if stem else None
        rows.append(
            (
                Path(res.scene).stem,
                res.state,
                Path(classes).name if classes else None,
                Path(poly).name if poly else None,
                *[ha.get(n, 0.0) if table else None for n in names],
                res.error,
            )
        )
    for item_id, reason in skipped:
        rows.append((item_id, "skipped (missing bands)", None, None, *[None] * len(names), reason))
    return rows, columns


def _report(
    ctx: RunContext, results: list[Any], columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    report = new_report(ctx, "Batch prediction", f"model {ctx.bundle.name}")
    if report is None:
        return
    report.add_text(
        "Summary",
        [s[0].upper() + s[1:] + "." for s in ctx.summary]
        + [
            "A re-run skips scenes whose input, model and options are unchanged "
            "(manifest.json), retries failed ones and runs new ones."
        ],
    )
    report.add_table("Scenes", columns, rows, note="Areas in hectares per class.")
    shown = [r for r in results if r.state != "failed" and r.outputs.get("classes")]
    for res in shown[:MAX_QUICKLOOKS]:
        report.add_quicklooks(classes=res.outputs["classes"], title=Path(res.scene).stem)
    if len(shown) > MAX_QUICKLOOKS:
        report.add_text(
            "More scenes", f"{len(shown) - MAX_QUICKLOOKS} more class rasters are in {ctx.out}."
        )
    add_outputs_section(ctx)
