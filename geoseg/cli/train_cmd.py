"""``geoseg train``: train a model from a YAML config or flags, into a bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


def _split_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.command("train")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--image", "images", multiple=True, help="Training image (repeatable).")
@click.option(
    "--labels",
    "labels",
    multiple=True,
    help="Class raster or polygons for each --image, in the same order.",
)
@click.option("--label-field", help="Attribute holding the class, for polygon labels.")
@click.option("--scheme", help="Class scheme name (catalogs/) or YAML path, e.g. nlcd8.")
@click.option("--bands", help="Model band names in order, e.g. blue,green,red,nir.")
@click.option("--image-bands", help="Bands of the images to use (indexes or names), e.g. 1,2,3,4.")
@click.option("--out", help="Bundle to write, e.g. model.bundle.")
@click.option("--epochs", type=int, help="Training epochs (default 20).")
@click.option("--batch", type=int, help="Chips per batch (default 8).")
@click.option("--chip", type=int, help="Training chip size in pixels (default 256).")
@click.option("--lr", type=float, help="Peak learning rate (default 1e-3).")
@click.option("--seed", type=int, help="Seed of every random draw (default 0).")
@click.option("--device", help="auto, cpu, cuda or cuda:N (default auto).")
@click.option("--threads", type=int, help="torch CPU threads.")
@click.option(
    "--hold-out",
    help="Leave these data entries out (1 = the first; e.g. 2 or 1,3): every labelled pixel "
    "of them is validation and none is trained on (a leave-one-region-out split).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
def train(config: str | None, **flags: Any) -> None:
    """Train a segmentation model and write a bundle that `geoseg predict` runs.

    Give a YAML config (see workflows/train-*.yaml), flags for the common case,
    or both (flags override the file). Validation is always a spatially held
    out region. Next to the bundle, OUT.train/ holds the training record
    (record.json), loss/metric curves (curves.png) and the resume checkpoint.

    \b
    Examples:
      geoseg train workflows/train-landcover.yaml
      geoseg train workflows/train-forest-water.yaml --hold-out 1 --out fold1.bundle
      geoseg train --image data/zion/landsat8_2015-08-18_b2345.tif \\
          --labels data/zion/nlcd2011_8class.tif --scheme nlcd8 \\
          --bands blue,green,red,nir --out model.bundle --epochs 20
    """
    from geoseg.errors import ConfigError
    from geoseg.train import config_from_dict, load_config, run_training

    images, labels = flags.pop("images"), flags.pop("labels")
    if len(images) != len(labels):
        raise ConfigError(
            f"{len(images)} --image but {len(labels)} --labels; give one --labels per --image"
        )
    image_bands = _split_list(flags.pop("image_bands"))
    # flag paths are relative to the working directory, config paths to the config's folder
    data = [
        {
            "image": os.path.abspath(i),
            "labels": os.path.abspath(lab),
            "label_field": flags["label_field"],
            "bands": image_bands,
        }
        for i, lab in zip(images, labels, strict=True)
    ]
    if flags["out"]:
        flags["out"] = os.path.abspath(flags["out"])
    top: dict[str, Any] = {
        k: flags[k] for k in ("scheme", "out", "epochs", "batch", "seed", "device", "threads")
    }
    top["bands"] = _split_list(flags["bands"])
    if data:
        top["data"] = data
    top = {k: v for k, v in top.items() if v is not None}
    if config:
        cfg = load_config(config, **top)
        if flags["out"]:  # another bundle: its record and card go beside it, not the config's
            cfg.record = None
            cfg.card = str(Path(flags["out"]).with_suffix(".md")) if cfg.card else None
    else:
        missing = [k for k in ("data", "scheme", "bands") if k not in top]
        if missing:
            raise ConfigError(
                "without a config file, give --image/--labels, --scheme and --bands "
                f"(missing: {', '.join(missing)}); see geoseg train --help"
            )
        cfg = config_from_dict(top, source="command line")
    if flags["chip"] is not None:
        cfg.model.chip = flags["chip"]
        cfg.model.overlap = min(cfg.model.overlap, flags["chip"] // 4)
    if flags["lr"] is not None:
        cfg.optimizer.lr = flags["lr"]
    if flags["hold_out"]:
        try:
            held = [int(k) for k in flags["hold_out"].split(",")]
        except ValueError:
            raise ConfigError(
                f"--hold-out {flags['hold_out']!r}: give data entry numbers, e.g. 2 or 1,3"
            ) from None
        cfg.split.method, cfg.split.hold_out = "region", held
    cfg.check()  # --chip and --lr went in after the config was checked
    try:
        res, paths = run_training(cfg, resume=flags["resume"])
    except KeyboardInterrupt:
        click.secho(
            f"interrupted; the last finished epoch is checkpointed in {cfg.record_dir} — "
            "run the same command with --resume to continue",
            fg="yellow",
            err=True,
        )
        raise SystemExit(130) from None
    val = res.best_val
    click.echo(
        f"best epoch {res.best_epoch}/{len(res.history)}: val mIoU {val.get('miou') or 0:.4f}, "
        f"OA {val.get('overall_accuracy') or 0:.4f} ({res.seconds / 60:.1f} min)"
    )
    for kind, path in paths.items():
        click.echo(f"wrote {kind}: {path}")
