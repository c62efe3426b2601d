"""``geoseg bundle``: create, inspect, list and export model bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from geoseg.errors import BundleError, InputError


def _read_metadata(path: str) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.exists():
        raise InputError(f"metadata file {path} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"cannot parse metadata file {path}: {err}") from err
    if not isinstance(doc, dict):
        raise InputError(f"metadata file {path} must hold a mapping (name, bands, classes, …)")
    return doc


def _classes(meta: dict[str, Any]) -> Any:
    from geoseg.schemes import load_scheme

    if "classes" in meta:
        return meta["classes"]
    if "scheme" in meta:
        return load_scheme(meta["scheme"])
    raise InputError("metadata needs 'classes' (list of id/name/color) or 'scheme' (e.g. nlcd8)")


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


_META_KEYS = (
    "name",
    "bands",
    "normalization",
    "chip",
    "overlap",
    "resolution_m",
    "input_units",
    "description",
    "card",
    "provenance",
)


@click.group()
def bundle() -> None:
    """Create, inspect and export model bundles (one file: weights + metadata)."""


@bundle.command("create")
@click.option(
    "--metadata",
    required=True,
    help="JSON/YAML: name, bands, classes or scheme, normalization, chip, overlap …",
)
@click.option("--onnx", "onnx_path", default=None, help="Wrap this ONNX model.")
@click.option("--arch", default=None, help="smp architecture, e.g. Unet, FPN, Segformer.")
@click.option("--encoder", default=None, help="smp encoder, e.g. resnet18.")
@click.option(
    "--weights", default=None, help="State dict (.safetensors, or .pt read weights-only)."
)
@click.option("-o", "--out", "out", required=True, help="Bundle file to write.")
def create(
    metadata: str,
    onnx_path: str | None,
    arch: str | None,
    encoder: str | None,
    weights: str | None,
    out: str,
) -> None:
    """Create a bundle from an ONNX model or an smp architecture (+ weights).

    \b
    Examples:
      geoseg bundle create --onnx model.onnx --metadata meta.json -o model.bundle
      geoseg bundle create --arch Unet --encoder resnet18 --weights state.safetensors \\
          --metadata meta.json -o model.bundle
    """
    from geoseg.bundle import ModelBundle

    meta = _read_metadata(metadata)
    if (onnx_path is None) == (arch is None and "architecture" not in meta):
        raise InputError("pass exactly one of --onnx or --arch")
    kwargs = {k: meta[k] for k in _META_KEYS if k in meta}
    if onnx_path is not None:
        if not Path(onnx_path).exists():
            raise InputError(f"ONNX file {onnx_path} does not exist")
        made = ModelBundle.create(
            classes=_classes(meta),
            onnx=Path(onnx_path).read_bytes(),
            arch_params=meta.get("arch_params"),
            **kwargs,
        )
    else:
        made = ModelBundle.create(
            classes=_classes(meta),
            architecture=arch or meta["architecture"],
            encoder=encoder or meta.get("encoder"),
            arch_params=meta.get("arch_params"),
            state_dict=_load_weights(weights) if weights else None,
            **kwargs,
        )
    made.save(out)
    click.echo(f"wrote {out} ({made.name}, sha256 {made.sha256[:12]})", err=True)


@bundle.command("info")
@click.argument("bundle_ref")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(bundle_ref: str, as_json: bool) -> None:
    """Print a bundle's summary and model card (path or shipped name).

    \b
    Example:
      geoseg bundle info landcover-nlcd8
    """
    from geoseg.bundle import load_bundle

    b = load_bundle(bundle_ref)
    click.echo(json.dumps(b.meta, indent=2) if as_json else b.card_text())


@bundle.command("list")
def list_bundles() -> None:
    """List the bundles shipped with geoseg.

    \b
    Example:
      geoseg bundle list
    """
    from geoseg.bundle import load_bundle, shipped_bundles

    for name, path in sorted(shipped_bundles().items()):
        b = load_bundle(path)
        click.echo(f"{name:<20} {', '.join(b.bands):<28} {len(b.classes)} classes  {path}")


@bundle.command("export-onnx")
@click.argument("bundle_ref")
@click.option("-o", "--out", "out", required=True, help="ONNX file to write.")
@click.option("--opset", type=int, default=17, show_default=True)
def export_onnx(bundle_ref: str, out: str, opset: int) -> None:
    """Export a torch bundle's model to ONNX (dynamic batch and chip size).

    \b
    Example:
      geoseg bundle export-onnx landcover-nlcd8 -o landcover.onnx
    """
    from geoseg.bundle import load_bundle
    from geoseg.onnx_export import export_onnx as run_export

    run_export(load_bundle(bundle_ref), out, opset=opset)
    click.echo(f"wrote {out}", err=True)
