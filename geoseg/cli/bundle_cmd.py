"""``geoseg bundle``: create, inspect, list and export model bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from geoseg.errors import BundleError, InputError


def _load_weights(path: str) -> dict[str, Any]:
    """A state dict from safetensors, or a torch file loaded without pickle."""
    import torch

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return dict(load_file(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad files
        raise BundleError(f"cannot read weights {path}: {str(err).splitlines()[0]}") from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BundleError(f"{path} does not hold a state dict")
    return state


@click.group()
def bundle() -> None:
    """Create, inspect and export model bundles (one file: weights + metadata)."""


@bundle.command("create")
@click.option(
    "--metadata",
    required=True,
    help="YAML/JSON describing the model: bands, classes, normalization, chip … "
    "Start from `geoseg bundle template`; every key is in docs/bundles.md.",
)
@click.option("--onnx", "onnx_path", default=None, help="Wrap this ONNX model.")
@click.option("--arch", default=None, help="smp architecture, e.g. Unet, FPN, Segformer.")
@click.option("--encoder", default=None, help="smp encoder, e.g. resnet18.")
@click.option(
    "--weights", default=None, help="State dict (.safetensors, or .pt read weights-only)."
)
@click.option("-o", "--out", "out", required=True, help="Bundle file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle file.")
def create(
    metadata: str,
    onnx_path: str | None,
    arch: str | None,
    encoder: str | None,
    weights: str | None,
    out: str,
    overwrite: bool,
) -> None:
    """Create a bundle from an ONNX model or an smp architecture (+ weights).

    The metadata file says what the model reads and returns; write one with
    `geoseg bundle template > meta.yaml` and see docs/bundles.md for every key.
    The flat form other tools write (bands, classes, mean, std, chip, overlap)
    is accepted; name defaults to the output file's stem.

    \b
    Examples:
      geoseg bundle template > meta.yaml
      geoseg bundle create --onnx model.onnx --metadata meta.yaml -o model.bundle
      geoseg bundle create --arch Unet --encoder resnet18 --weights state.safetensors \\
          --metadata meta.yaml -o model.bundle
    """
    from geoseg.models.bundle import ModelBundle
    from geoseg.models.meta import bundle_arguments, read_metadata
    from geoseg.outfile import check_output_file

    meta = read_metadata(metadata)
    target = check_output_file(out, overwrite=overwrite, inputs=(metadata, onnx_path, weights))
    if (onnx_path is None) == (arch is None and "architecture" not in meta):
        raise InputError("pass exactly one of --onnx or --arch")
    if onnx_path is not None and (weights or encoder):
        raise InputError("--weights and --encoder go with --arch; an ONNX model holds its weights")
    kwargs = bundle_arguments(meta, out=target, onnx=onnx_path is not None)
    if onnx_path is not None:
        made = ModelBundle.create(onnx=_read_onnx(onnx_path, kwargs), **kwargs)
    else:
        kwargs["architecture"] = arch or kwargs.get("architecture")
        kwargs["encoder"] = encoder or kwargs.get("encoder")
        made = ModelBundle.create(state_dict=_load_weights(weights) if weights else None, **kwargs)
    made.save(target)
    click.echo(f"wrote {target} ({made.name}, sha256 {made.sha256[:12]})", err=True)


def _read_onnx(path: str, kwargs: dict[str, Any]) -> bytes:
    """The ONNX bytes; a model with a fixed input size gets chips of that size by default."""
    from geoseg.models.onnx_model import onnx_input_size

    if not Path(path).is_file():
        raise InputError(f"ONNX file {path} does not exist")
    data = Path(path).read_bytes()
    if "chip" not in kwargs:
        size = onnx_input_size(data, layout=kwargs.get("layout", "NCHW"))
        if size is not None:
            kwargs["chip"] = min(size)
            kwargs.setdefault("overlap", min(64, min(size) // 8))
    return data


@bundle.command("template")
def template() -> None:
    """Print a commented metadata file to start a bundle from.

    \b
    Example:
      geoseg bundle template > meta.yaml
    """
    from geoseg.models.meta import TEMPLATE

    click.echo(TEMPLATE, nl=False)


@bundle.command("info")
@click.argument("bundle_ref")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(bundle_ref: str, as_json: bool) -> None:
    """Print a bundle's summary and model card (path or shipped name).

    \b
    Example:
      geoseg bundle info landcover-nlcd8
    """
    from geoseg.models.bundle import load_bundle

    b = load_bundle(bundle_ref)
    click.echo(json.dumps(b.meta, indent=2) if as_json else b.card_text())


@bundle.command("list")
def list_bundles() -> None:
    """List the bundles shipped with geoseg.

    \b
    Example:
      geoseg bundle list
    """
    from geoseg.models.bundle import load_bundle
    from geoseg.models.shipped import shipped_bundles

    for name, path in sorted(shipped_bundles().items()):
        b = load_bundle(path)
        click.echo(f"{name:<20} {', '.join(b.bands):<28} {len(b.classes)} classes  {path}")


@bundle.command("export-onnx")
@click.argument("bundle_ref")
@click.option("-o", "--out", "out", required=True, help="ONNX file to write.")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing ONNX file.")
def export_onnx(bundle_ref: str, out: str, opset: int, overwrite: bool) -> None:
    """Export a torch bundle's model to ONNX (dynamic batch and chip size).

    \b
    Example:
      geoseg bundle export-onnx landcover-nlcd8 -o landcover.onnx
    """
    from geoseg.models.bundle import load_bundle
    from geoseg.models.onnx_export import export_onnx as run_export
    from geoseg.models.shipped import resolve_bundle_path
    from geoseg.outfile import check_output_file

    bundle = load_bundle(bundle_ref)
    target = check_output_file(out, overwrite=overwrite, inputs=(resolve_bundle_path(bundle_ref),))
    run_export(bundle, target, opset=opset)
    click.echo(f"wrote {out}", err=True)
