"""Architecture registry: segmentation-models-pytorch plus two tiny native nets.

Encoders are always built with ``encoder_weights=None``: geoseg never fetches
weights at run time; trained weights come from the bundle. Modules a forward
pass never calls (e.g. ResNet ``layer4`` when ``encoder_depth=3``) are replaced
by ``Identity`` so that bundles hold only weights that matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoseg.errors import BundleError

SMP_ARCHITECTURES = (
    "Unet",
    "UnetPlusPlus",
    "FPN",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "Linknet",
    "MAnet",
    "PAN",
    "UPerNet",
    "Segformer",
    "DPT",
)
NATIVE_ARCHITECTURES = ("ConvStack", "Pointwise")
"""``ConvStack``: ``layers`` 3x3 convolutions (receptive-field radius ``layers``),
exactly translation-equivariant: the model the seam tests use. ``Pointwise``: a
1x1 convolution, a per-pixel classifier that costs next to nothing (the
benchmarks' stand-in for a fast GPU)."""


def _native(arch: str, in_channels: int, classes: int, params: Mapping[str, Any]) -> Any:
    from torch import nn

    if arch == "Pointwise":
        return nn.Conv2d(in_channels, classes, kernel_size=1)
    layers = int(params.get("layers", 3))
    width = int(params.get("width", 16))
    mods: list[nn.Module] = []
    ch = in_channels
    for _ in range(layers - 1):
        mods += [nn.Conv2d(ch, width, 3, padding=1), nn.ReLU()]
        ch = width
    mods.append(nn.Conv2d(ch, classes, 3, padding=1))
    return nn.Sequential(*mods)


def _prune_unused(model: Any, in_channels: int) -> Any:
    """Replace submodules that an eval forward never reaches by ``Identity``.

    A module counts as reached when it or a descendant was called. The pruned
    copy is kept only if it gives the same output as the original on a random
    input, so a module used in an unusual way (``m.forward(x)``, a weight read
    directly) can never be pruned by mistake.
    """
    import copy

    import torch
    from torch import nn

    model.eval()
    called: set[int] = set()
    hooks = [
        m.register_forward_pre_hook(lambda mod, _: called.add(id(mod))) for m in model.modules()
    ]
    x = torch.randn(1, in_channels, 64, 64, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            reference = model(x)
    finally:
        for h in hooks:
            h.remove()
    used = set(called)
    for name, mod in model.named_modules():
        if id(mod) in called:
            parts = name.split(".") if name else []
            for i in range(len(parts)):
                used.add(id(model.get_submodule(".".join(parts[:i]))))
    pruned = copy.deepcopy(model)
    originals = dict(model.named_modules())
    for name, parent in list(pruned.named_modules()):
        for child_name, _ in list(parent.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if id(originals[full]) not in used:
                setattr(parent, child_name, nn.Identity())
    try:
        with torch.inference_mode():
            same = torch.equal(pruned(x), reference)
    except Exception:  # noqa: BLE001 - any failure means: keep the full model
        same = False
    return pruned if same else model


def build_model(
    architecture: str,
    *,
    encoder: str | None,
    in_channels: int,
    classes: int,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Build an untrained model (``torch.nn.Module``) in eval mode.

    Raises
    ------
    BundleError
        Unknown architecture or encoder, or parameters smp rejects.
    """
    params = dict(params or {})
    if architecture in NATIVE_ARCHITECTURES:
        return _native(architecture, in_channels, classes, params).eval()
    if architecture not in SMP_ARCHITECTURES:
        raise BundleError(
            f"unknown architecture '{architecture}'; use one of "
            f"{', '.join(SMP_ARCHITECTURES + NATIVE_ARCHITECTURES)}"
        )
    import segmentation_models_pytorch as smp

    try:
        model = getattr(smp, architecture)(
            encoder_name=encoder or "resnet18",
            encoder_weights=None,
            in_channels=in_channels,
            classes=classes,
            **params,
        )
    except (KeyError, ValueError, TypeError) as err:
        raise BundleError(
            f"cannot build {architecture} with encoder '{encoder}' and {params}: {err}"
        ) from err
    return _prune_unused(model, in_channels).eval()
