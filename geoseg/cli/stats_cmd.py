"""``geoseg stats``."""

from __future__ import annotations

import click

from geoseg.cli.options import scheme_option


@click.command()
@click.argument("raster", type=click.Path(dir_okay=False))
@click.option("--zones", default=None, help="Polygons (any OGR file): statistics per zone × class.")
@click.option("--zone-field", default=None, help="Attribute naming the zones (with --zones).")
@click.option("--zones-layer", default=None, help="Layer of --zones [the first].")
@click.option("--out", "-o", "out", default=None, help="Write the table as CSV here.")
@click.option("--markdown", default=None, help="Write the table as Markdown here.")
@scheme_option()
@click.option("--block", type=int, default=1024, show_default=True, help="Block edge in pixels.")
@click.option("--overwrite", is_flag=True, help="Replace existing table files.")
def stats(
    raster: str,
    zones: str | None,
    zone_field: str | None,
    zones_layer: str | None,
    out: str | None,
    markdown: str | None,
    scheme: str | None,
    block: int,
    overwrite: bool,
) -> None:
    """Area per class (and per zone × class) of a class raster: pixels, m², ha, km², share.

    Areas are exact: pixel count × pixel area for projected CRSs, integrated on
    the ellipsoid row by row for geographic ones. The share is of the zone's
    classified (non-nodata) area. A pixel belongs to a zone when its centre is
    inside; a pixel in two zones counts in both. The table is printed and,
    when asked, written as CSV and Markdown.

    \b
    Examples:
      geoseg stats results/scene_classes.tif --out classes.csv
      geoseg stats results/scene_classes.tif --zones parks.gpkg --zone-field name \\
          --out parks.csv --markdown parks.md
      geoseg stats esa_worldcover_2021.tif --scheme esa-worldcover --out cover.csv
    """
    from pathlib import Path

    from geoseg.analysis.stats import class_areas, write_table
    from geoseg.errors import InputError, OutputError

    if zone_field and not zones:
        raise InputError("--zone-field needs --zones (the polygons that hold that field)")
    for path, ends in ((out, (".csv",)), (markdown, (".md", ".markdown"))):
        if path and not path.lower().endswith(ends):
            raise InputError(f"{path} should end in {' or '.join(ends)}")
        if path and Path(path).exists() and not overwrite:
            raise OutputError(f"{path} exists; pass --overwrite to replace it")
    table = class_areas(
        raster,
        zones=zones,
        zone_field=zone_field,
        zones_layer=zones_layer,
        block=block,
        scheme=scheme,
    )
    click.echo(table.to_markdown(), nl=False)
    for path in (out, markdown):
        if path:
            write_table(table, path, overwrite=overwrite)
            click.echo(f"table -> {path}", err=True)
