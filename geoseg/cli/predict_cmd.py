"""``geoseg predict``."""

from __future__ import annotations

import sys
from typing import Any

import click

from geoseg.cli.options import out_folder, parse_gpus, precision_option, progress_bar
from geoseg.engine.cluster import dask_client


def _bands(value: str | None) -> tuple[int | str, ...] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return tuple(int(v) if v.isdigit() else v for v in items)


@click.command()
@click.argument("scenes", nargs=-1, required=True)
@click.option(
    "--model",
    "-m",
    "model",
    required=True,
    help="Bundle path or name of a shipped bundle (geoseg bundle list).",
)
@out_folder()
@click.option(
    "--chip",
    type=int,
    default=None,
    help="Chip edge in pixels, 1 to 8192 [bundle's]. A scene smaller than the chip is run as "
    "one padded chip (refused with --no-pad, or when chip and batch do not fit in memory).",
)
@click.option(
    "--overlap",
    type=int,
    default=None,
    help="Pixels shared by neighbouring chips [bundle's]; about 2x the receptive field.",
)
@click.option(
    "--block",
    type=int,
    default=None,
    help="Block edge in pixels: the unit of work; bounds memory [auto, at most 1536].",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Chips per forward pass, at most the scene's chip count [1 on CPU, 8 on a GPU]; "
    "refused when it does not fit in memory.",
)
@click.option(
    "--blend",
    type=click.Choice(["smooth", "crop"]),
    default="smooth",
    show_default=True,
    help="smooth: weighted overlap; crop: keep chip centres.",
)
@click.option(
    "--bands",
    default=None,
    help="Bands for the model, 1-based indexes or names: '3,2,1' or 'red,green,blue,nir'.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Block tasks run at once in this process [one per core, max 4].",
)
@click.option("--confidence", is_flag=True, help="Also write <stem>_confidence.tif (0-100).")
@click.option("--no-vector", is_flag=True, help="Skip the polygons (<stem>_classes.gpkg).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing outputs of these scenes, and remove those this run does not make "
    "(an old <stem>_confidence.tif); an input of the call is never written over.",
)
@click.option("--allow-no-crs", is_flag=True, help="Accept scenes without a CRS.")
@click.option(
    "--allow-mixed-crs", is_flag=True, help="Accept scenes in different CRSs in one call."
)
@click.option(
    "--no-pad", is_flag=True, help="Refuse scenes smaller than one chip instead of padding."
)
@click.option(
    "--scheduler",
    default=None,
    help="Run on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Start a local Dask cluster of N (at least 1) single-threaded worker processes.",
)
@click.option(
    "--gpus",
    default=None,
    help="Start a local Dask cluster with one worker per GPU, e.g. '0,1' (dask-cuda if installed).",
)
@precision_option()
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "onnxruntime"]),
    default="auto",
    show_default=True,
    help="What runs a torch bundle: auto picks ONNX Runtime for fp32 on CPU (measured faster; "
    "its export is cached per bundle in ~/.cache/geoseg or $GEOSEG_CACHE_DIR), torch on a GPU.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print what the run would use (device, backend, threads, blocks, batch, chip) and why, "
    "for each scene, then exit without predicting or writing anything.",
)
@click.option(
    "--overviews",
    type=click.Choice(["nearest", "mode"]),
    default="nearest",
    show_default=True,
    help="Resampling of the class COG's overviews (mode: majority, slower).",
)
@click.option("--quicklook", is_flag=True, help="Also write <stem>_quicklook.png.")
@click.option(
    "--sensor",
    default=None,
    help="The product the scenes are (geoseg sensors lists them), e.g. sentinel2-l2a, "
    "landsat8-c2l2, naip: band roles and units [detected from file names and metadata].",
)
@click.option(
    "--allow-domain-shift",
    is_flag=True,
    help="Run a scene that lies far outside what the bundle was trained on (recorded).",
)
@click.option(
    "--mask",
    default=None,
    help="Cloud/QA mask: a QA_PIXEL, SCL or Fmask raster, any 0/1 raster, 'auto' (the "
    "product's own QA layer beside the scene), or a mask bundle such as 'cloud' (run on the "
    "scene first, into OUT/_masks/). Masked pixels are nodata.",
)
@click.option(
    "--mask-classes",
    default=None,
    help="What a QA mask removes: cloud, shadow, cirrus, snow [cloud,shadow,cirrus; a mask "
    "bundle: cloud].",
)
def predict(
    scenes: tuple[str, ...],
    model: str,
    out: str,
    bands: str | None,
    no_vector: bool,
    no_pad: bool,
    quicklook: bool,
    scheduler: str | None,
    workers: int | None,
    gpus: str | None,
    mask_classes: str | None,
    explain: bool,
    **opts: Any,
) -> None:
    """Predict class maps (COG), confidence and polygons for one or more scenes.

    SCENES are raster paths or globs (quote globs). For each scene, OUT gets
    <stem>_classes.tif, <stem>_classes.gpkg, <stem>_run.json (and
    <stem>_confidence.tif with --confidence).

    \b
    Examples:
      geoseg predict data/zion/landsat8_2015-08-18_b2345.tif -m landcover-nlcd8 -o results/
      geoseg predict 'archive/*.tif' -m my.bundle -o results/ --bands red,green,blue,nir
      geoseg predict m_4609915_sw_14_060_20200831.tif -m water -o results/ --sensor naip
      geoseg predict LC09_L2SP_..._SR_stack.tif -m water -o results/ --mask auto
      geoseg predict scene.tif -m water.bundle -o results/ --workers 4
      geoseg predict scene.tif -m water.bundle -o results/ --scheduler tcp://10.0.0.5:8786
      geoseg predict scene.tif -m water.bundle -o results/ --gpus 0,1 --precision fp16
      geoseg predict scene.tif -m water -o results/ --explain
    """
    from geoseg.errors import BatchError

    if explain:
        _explain(scenes, model, bands, mask_classes, scheduler, workers, gpus, opts)
        return
    from geoseg.pipeline.predict import predict as run_predict

    failure: BatchError | None = None
    gpu_ids = parse_gpus(gpus, opts)
    with (
        dask_client(scheduler, workers, gpu_ids) as client,
        progress_bar("chips", label="predict") as bar,
    ):
        try:
            results = run_predict(
                list(scenes),
                model,
                out,
                bands=_bands(bands),
                vector=not no_vector,
                pad=not no_pad,
                mask_classes=tuple(mask_classes.split(",")) if mask_classes else None,
                progress=bar,
                client=client,
                **opts,
            )
        except BatchError as err:
            results, failure = err.results, err
    for res in results:
        _report(res, quicklook)
    if len(results) > 1:
        states = [r.state for r in results]
        click.echo(
            f"{states.count('done')} done, {states.count('skipped')} already done, "
            f"{states.count('failed')} failed (state of each: {out}/manifest.json)",
            err=True,
        )
    sys.stdout.flush()
    if failure is not None:
        raise failure


def _explain(
    scenes: tuple[str, ...],
    model: str,
    bands: str | None,
    mask_classes: str | None,
    scheduler: str | None,
    workers: int | None,
    gpus: str | None,
    opts: dict[str, Any],
) -> None:
    """``--explain``: each scene's plan (what and why) on stdout; nothing runs or is written."""
    from geoseg.pipeline.predict import explain as explain_plan

    gpu_ids = parse_gpus(gpus, opts)
    with dask_client(scheduler, workers, gpu_ids) as client:
        plans = explain_plan(
            list(scenes),
            model,
            bands=_bands(bands),
            mask_classes=tuple(mask_classes.split(",")) if mask_classes else None,
            client=client,
            **opts,
        )
    for plan in plans:
        click.echo(
            f"{plan['scene']} ({plan['shape'][0]}x{plan['shape'][1]}, {plan['chips']} chips)"
        )
        click.echo(
            f"  device       {plan['device']} ({plan['device_reason']}), {plan['precision']}"
        )
        click.echo(f"  backend      {plan['backend']}: {plan['backend_reason']}")
        click.echo(
            f"  engine       {plan['engine']}: {plan['parallel_blocks']} block task(s) at once, "
            f"{plan['threads_per_block']} intra-op thread(s) each ({plan['layout_reason']})"
        )
        click.echo(f"  chip         {plan['chip']}, overlap {plan['overlap']}")
        click.echo(f"  block        {plan['block']} ({plan['block_reason']})")
        click.echo(f"  batch size   {plan['batch_size']} ({plan['batch_reason']})")
    click.echo("(--explain: nothing was predicted or written)", err=True)


def _report(res: Any, quicklook: bool) -> None:
    """One scene's lines of the summary (and its quicklook when asked)."""
    if res.state == "failed":
        click.secho(f"{res.scene}: failed: {res.error}", fg="red", err=True)
        return
    if quicklook:
        from geoseg.report.quicklook import quicklook as make_quicklook

        png = res.outputs["classes"].replace("_classes.tif", "_quicklook.png")
        make_quicklook(res.outputs["classes"], png, scene=res.scene)
        res.outputs["quicklook"] = png
    rec = res.record
    if res.state == "skipped":
        click.echo(f"{res.scene}: already done with the same inputs and options", err=True)
        return
    click.echo(
        f"{res.scene}: {rec['chips_inferred']} chips inferred "
        f"({rec['chips_skipped_nodata']} nodata skipped) in {rec['timings_s']['total']:.1f} s",
        err=True,
    )
    for kind, path in res.outputs.items():
        click.echo(f"  {kind:<10} {path}", err=True)
    for text in rec.get("warnings", []):
        click.secho(f"warning: {text}", fg="yellow", err=True)
