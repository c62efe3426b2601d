"""``geoseg eval``: score a class raster against truth (raster or polygons), or compare bundles."""

from __future__ import annotations

import click

from geoseg.cli.options import scheme_option


@click.command("eval")
@click.argument("rasters", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Compare mode: a bundle (name or path) to run on --image, as NAME or NAME@BANDS "
    "(e.g. ndwi-otsu@2,4); repeatable.",
)
@click.option("--image", default=None, help="Compare mode: the scene every --model predicts.")
@click.option(
    "--truth", default=None, help="Compare mode: the truth raster or polygons (with --field)."
)
@click.option(
    "--out",
    "out_dir",
    default="eval_runs",
    show_default=True,
    help="Compare mode: folder for each model's class map.",
)
@scheme_option("the prediction's own tags")
@click.option(
    "--field",
    default=None,
    help="Truth polygons: the attribute holding class ids or names (e.g. class).",
)
@click.option("--classes", default=None, help="Score only these class ids or names, e.g. '1,2'.")
@click.option("--json", "json_path", default=None, help="Also write the scores as JSON here.")
@click.option("--png", "png_path", default=None, help="Also draw the confusion matrix here.")
@click.option("--device", default="auto", show_default=True, help="Compare mode: cpu, cuda …")
def eval_(
    rasters: tuple[str, ...],
    models: tuple[str, ...],
    image: str | None,
    truth: str | None,
    out_dir: str,
    scheme: str | None,
    classes: str | None,
    field: str | None,
    json_path: str | None,
    png_path: str | None,
    device: str,
) -> None:
    """Per-class IoU/F1/precision/recall, mIoU, accuracy and the confusion matrix.

    The prediction's grid is the reference: a truth raster on another grid of
    the same area is reprojected onto it (nearest); truth polygons (GeoPackage,
    GeoJSON, Shapefile …, with --field naming the class attribute) are rasterized
    onto it. Nodata on either side, and pixels outside every truth polygon, are
    not scored.

    \b
    Examples:
      geoseg eval results/scene_classes.tif truth.tif --json scores.json --png confusion.png
      geoseg eval results/scene_classes.tif survey.gpkg --field class
      geoseg eval --image data/water/olinda_l7.tif --truth data/water/olinda_water_mndwi.tif \\
          --model ndwi-otsu@2,4 --model ndwi@2,4 --out runs/
    """
    from geoseg.errors import InputError
    from geoseg.train.evaluate import compare_bundles, evaluate
    from geoseg.train.scores import format_comparison, write_json, write_png

    picked = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    if models:
        if rasters or image is None or truth is None:
            raise InputError(
                "compare mode takes --image and --truth and no positional rasters: "
                "geoseg eval --model A --model B --image scene.tif --truth truth.tif"
            )
        results = compare_bundles(
            image,
            truth,
            list(models),
            out_dir=out_dir,
            scheme=scheme,
            classes=picked,
            field=field,
            device=device,
        )
        click.echo(format_comparison(results))
        for res in results:
            click.echo(f"\n== {res.extra['model']}\n{res.table()}")
        if json_path:
            write_json(results, json_path)
        if png_path:
            write_png(results, png_path, titles=[str(r.extra["model"]) for r in results])
        return
    if len(rasters) != 2 or image or truth:
        raise InputError(
            "pass a prediction and a truth raster (geoseg eval pred.tif truth.tif), "
            "or --model with --image and --truth"
        )
    result = evaluate(rasters[0], rasters[1], scheme=scheme, classes=picked, field=field)
    click.echo(result.table())
    if json_path:
        write_json(result, json_path)
    if png_path:
        write_png(result, png_path)
