"""``geoseg vectorize``."""

from __future__ import annotations

import click


@click.command()
@click.argument("raster", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    help="Output file; format by extension: .gpkg, .geojson, .fgb, .parquet.",
)
@click.option("--classes", default=None, help="Only these class ids, e.g. '1,4'.")
@click.option("--min-area", type=float, default=None, help="Drop polygons smaller than this (m²).")
@click.option(
    "--simplify", type=float, default=None, help="Coverage-safe simplification tolerance in metres."
)
@click.option("--connectivity", type=click.Choice(["4", "8"]), default="4", show_default=True)
@click.option("--block", type=int, default=2048, show_default=True, help="Block edge in pixels.")
@click.option("--layer", default=None, help="Layer name [raster file stem].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def vectorize(
    raster: str,
    out: str,
    classes: str | None,
    min_area: float | None,
    simplify: float | None,
    connectivity: str,
    block: int,
    layer: str | None,
    overwrite: bool,
) -> None:
    """Turn a class raster into polygons, joined across block edges.

    \b
    Examples:
      geoseg vectorize results/scene_classes.tif -o scene.gpkg
      geoseg vectorize results/scene_classes.tif -o water.geojson --classes 1 --simplify 15
    """
    from geoseg.errors import InputError
    from geoseg.vectorize import vectorize as run_vectorize

    ids = None
    if classes:
        try:
            ids = [int(c) for c in classes.split(",") if c.strip()]
        except ValueError as err:
            raise InputError(f"--classes takes class ids like '1,4', got '{classes}'") from err
    res = run_vectorize(
        raster,
        out,
        layer=layer,
        connectivity=int(connectivity),
        block=block,
        class_ids=ids,
        min_area=min_area,
        simplify=simplify,
        overwrite=overwrite,
    )
    click.echo(f"{res.features} polygons -> {res.path} (layer {res.layer})", err=True)
