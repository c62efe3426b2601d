"""``geoseg sensors``: the sensor presets, their band roles and reflectance conversion."""

from __future__ import annotations

import click


@click.command("sensors")
@click.argument("name", required=False)
def sensors(name: str | None) -> None:
    """List the sensor presets, or show one (NAME) with its bands.

    A preset says which band is which (B04 = red) and how raw values become
    reflectance (Landsat Collection 2 Level-2: dn x 2.75e-05 - 0.2).

    \b
    Examples:
      geoseg sensors
      geoseg sensors sentinel2-l2a
    """
    from geoseg.sensors.presets import PRESETS, get_preset

    if name is None:
        width = max(map(len, PRESETS))
        for preset in PRESETS.values():
            click.echo(f"{preset.name:<{width}}  {preset.title}")
        return
    preset = get_preset(name)
    click.echo(f"{preset.name}: {preset.title}")
    if preset.aliases:
        click.echo(f"aliases: {', '.join(preset.aliases)}")
    click.echo(
        f"reflectance ({preset.quantity}) = dn x {preset.scale:g} + {preset.offset:g}; "
        f"ships as {preset.dtype}, {preset.resolution_m[0]:g}-{preset.resolution_m[1]:g} m"
    )
    for band, common in preset.bands.items():
        click.echo(f"  {band:>4}  {common}")
