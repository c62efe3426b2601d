"""``geoseg`` command line: one thin click command per verb.

Heavy imports happen inside each command so ``geoseg --help`` is instant. A
:class:`~geoseg.errors.GeosegError` becomes one red line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from geoseg.errors import GeosegError


class GeosegGroup(click.Group):
    """A click group that turns GeosegError into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GeosegError as err:
            click.secho(f"error: {err}", fg="red", err=True)
            ctx.exit(2)


@click.group(cls=GeosegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
@click.version_option(package_name="geoseg")
def cli(verbose: int, quiet: int) -> None:
    """Seamless georeferenced class maps and QGIS-ready polygons from large rasters.

    \b
    Example:
      geoseg predict data/zion/landsat8_2015-08-18_b2345.tif \\
          --model landcover-nlcd8 --out results/
    """
    level = max(10, 30 - 10 * verbose + 10 * quiet)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


# (module under geoseg.cli, click command attribute): one line per verb.
COMMANDS: list[tuple[str, str]] = [
    ("predict_cmd", "predict"),
    ("stac_cmd", "predict_stac"),
    ("vectorize_cmd", "vectorize"),
    ("bundle_cmd", "bundle"),
    ("quicklook_cmd", "quicklook"),
    ("eval_cmd", "eval_"),
    ("train_cmd", "train"),
    ("stats_cmd", "stats"),
    ("change_cmd", "change"),
    ("run_cmd", "run"),
]


def _register() -> None:
    import importlib

    for module, attr in COMMANDS:
        cli.add_command(getattr(importlib.import_module(f"geoseg.cli.{module}"), attr))


_register()
