"""``geoseg predict-stac``."""

from __future__ import annotations

from typing import Any

import click

from geoseg.cli.options import out_folder, parse_gpus, precision_option, progress_bar
from geoseg.engine.cluster import dask_client


@click.command("predict-stac")
@click.argument("catalog", type=click.Path(dir_okay=False))
@click.option("--model", "-m", "model", required=True, help="Bundle path or shipped name.")
@out_folder("Output folder; results catalog at OUT/stac/catalog.json.")
@click.option(
    "--asset",
    default=None,
    help="Asset key of a multi-band asset [default: match eo:bands common names].",
)
@click.option("--confidence", is_flag=True, help="Also write confidence rasters.")
@click.option("--no-vector", is_flag=True, help="Skip the polygons.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--allow-mixed-crs", is_flag=True, help="Accept items in different CRSs.")
@click.option("--scheduler", default=None, help="Run on an existing Dask scheduler.")
@click.option("--workers", type=int, default=None, help="Start a local Dask cluster of N workers.")
@click.option(
    "--gpus", default=None, help="Start a local Dask cluster with one worker per GPU, e.g. '0,1'."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@precision_option()
def predict_stac(
    catalog: str,
    model: str,
    out: str,
    asset: str | None,
    no_vector: bool,
    scheduler: str | None,
    workers: int | None,
    gpus: str | None,
    **opts: Any,
) -> None:
    """Predict every item of a local STAC catalog, collection or item collection.

    \b
    Examples:
      geoseg predict-stac catalog.json --asset visual --model landcover-nlcd8 --out results/
      geoseg predict-stac items.json --model water --out results/ --workers 4
      geoseg predict-stac items.json --model water --out results/ --gpus 0,1 --precision fp16
    """
    from geoseg.errors import BatchError
    from geoseg.pipeline.stac import predict_stac as run

    failure = None
    gpu_ids = parse_gpus(gpus, opts)
    with (
        dask_client(scheduler, workers, gpu_ids) as client,
        progress_bar("chips", label="predict") as bar,
    ):
        try:
            results = run(
                catalog,
                model,
                out,
                asset=asset,
                vector=not no_vector,
                progress=bar,
                client=client,
                **opts,
            )
        except BatchError as err:
            results, failure = err.results, err
    states = [r.state for r in results]
    click.echo(
        f"{states.count('done')} done, {states.count('skipped')} already done, "
        f"{states.count('failed')} failed; catalog: {out}/stac/catalog.json",
        err=True,
    )
    if failure is not None:
        raise failure
