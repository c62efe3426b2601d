"""``geoseg vectorize``."""

from __future__ import annotations

import click

from geoseg.cli.options import scheme_option


@click.command()
@click.argument("raster", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    help="Output file; format by extension: .gpkg, .geojson, .fgb, .parquet.",
)
@click.option(
    "--classes",
    default=None,
    metavar="IDS|NAMES",
    help="Only polygonize these classes, ids or names, comma-separated, e.g. '1,4' or "
    "'water,forest' [all classes].",
)
@scheme_option()
@click.option(
    "--min-area",
    type=float,
    default=None,
    metavar="M2",
    help="Sieve: merge regions smaller than this (m²) into the neighbouring class they "
    "share the longest boundary with.",
)
@click.option(
    "--simplify",
    type=float,
    default=None,
    metavar="METRES",
    help="Coverage-safe simplification tolerance in metres.",
)
@click.option(
    "--smooth",
    is_flag=True,
    help="Cut pixel stairs into diagonals; shared edges stay shared (no gaps, no overlaps).",
)
@click.option(
    "--confidence",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="Confidence raster on the same grid (predict's *_confidence.tif): adds mean_confidence.",
)
@click.option("--source", default=None, help="Source scene written as 'source' [raster tag].")
@click.option(
    "--date", default=None, help="Acquisition date (YYYY-MM-DD) written as 'date' [raster tag]."
)
@click.option("--connectivity", type=click.Choice(["4", "8"]), default="4", show_default=True)
@click.option("--block", type=int, default=1024, show_default=True, help="Block edge in pixels.")
@click.option("--layer", default=None, help="Layer name [raster file stem].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def vectorize(
    raster: str,
    out: str,
    classes: str | None,
    scheme: str | None,
    min_area: float | None,
    simplify: float | None,
    smooth: bool,
    confidence: str | None,
    source: str | None,
    date: str | None,
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
      geoseg vectorize results/scene_classes.tif -o scene.gpkg --min-area 5000 --smooth \\
          --confidence results/scene_confidence.tif
      geoseg vectorize nlcd_2019.tif -o forest.gpkg --scheme nlcd8 --classes forest
    """
    from geoseg.io.classraster import class_ids
    from geoseg.vector import vectorize as run_vectorize

    ids = None
    if classes:
        ids = class_ids(raster, [c for c in classes.split(",") if c.strip()], scheme)
    res = run_vectorize(
        raster,
        out,
        layer=layer,
        classes=scheme,
        connectivity=int(connectivity),
        block=block,
        class_ids=ids,
        min_area=min_area,
        simplify=simplify,
        smooth=smooth,
        confidence=confidence,
        source=source,
        date=date,
        overwrite=overwrite,
    )
    click.echo(f"{res.features} polygons -> {res.path} (layer {res.layer})", err=True)
