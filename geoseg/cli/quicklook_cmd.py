"""``geoseg quicklook``."""

from __future__ import annotations

import click

from geoseg.cli.options import scheme_option


@click.command()
@click.argument("classes", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, help="PNG to write.")
@click.option("--scene", default=None, help="Input scene to show beside the classes (true color).")
@click.option("--bands", default=None, help="Scene bands for red,green,blue (1-based) [by name].")
@click.option(
    "--max-size", type=int, default=900, show_default=True, help="Longest edge of each panel."
)
@click.option("--title", default=None, help="Figure title [file name].")
@scheme_option()
def quicklook(
    classes: str,
    out: str,
    scene: str | None,
    bands: str | None,
    max_size: int,
    title: str | None,
    scheme: str | None,
) -> None:
    """Render a class raster (and optionally its scene) to a PNG with a legend.

    \b
    Example:
      geoseg quicklook results/zion_classes.tif --scene zion.tif -o zion.png
      geoseg quicklook nlcd_2019.tif --scheme nlcd8 -o nlcd.png
    """
    from geoseg.errors import InputError
    from geoseg.report.quicklook import quicklook as run_quicklook

    try:
        rgb = tuple(int(b) for b in bands.split(",")) if bands else None
    except ValueError as err:
        raise InputError(f"--bands takes band numbers like 3,2,1, got '{bands}'") from err
    path = run_quicklook(
        classes, out, scene=scene, rgb_bands=rgb, max_size=max_size, title=title, scheme=scheme
    )
    click.echo(f"wrote {path}", err=True)
