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


MAX_ARCH_INT = 4096
"""Largest integer an ``arch_params`` value may hold (channels, depths): a bundle from
someone else must not make geoseg allocate a model of any size it likes."""
MAX_PARAMETERS = 500_000_000
"""Most parameters a bundle's model may have (2 GB of float32 weights)."""


def _small_int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BundleError(
            f"arch_params '{key}' must be a whole number in {lo}..{hi}, got {value!r}"
        )
    return value


def _check_params(params: Mapping[str, Any], where: str = "arch_params") -> None:
    """Refuse integers beyond :data:`MAX_ARCH_INT` anywhere in ``params`` (lists, mappings)."""
    for key, value in params.items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, Mapping):
                _check_params(item, f"{where}.{key}")
            elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_ARCH_INT:
                raise BundleError(
                    f"{where} '{key}' holds {str(item)[:20]}; values above {MAX_ARCH_INT} would "
                    "build a model too large to run"
                )


def check_arch_params(architecture: str, params: Mapping[str, Any]) -> None:
    """Refuse ``arch_params`` that would build a model of unbounded size (before building).

    Raises
    ------
    BundleError
        A native net's ``layers``/``width`` out of range, or any integer above
        :data:`MAX_ARCH_INT`.
    """
    if architecture == "ConvStack":
        _small_int(params.get("layers", 3), "layers", 1, 64)
        _small_int(params.get("width", 16), "width", 1, 1024)
    _check_params(params)


def _count_parameters(make: Any) -> int | None:
    """Parameters of the model ``make()`` builds, counted on torch's meta device (no memory).

    None when the model cannot be built there (some initializers read values).
    """
    import torch

    try:  # meta initializers still draw from the CPU generator: seeded builds must not see it
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = make()
    except Exception:  # noqa: BLE001 - not buildable on meta: the caller builds it for real
        return None
    return int(sum(p.numel() for p in model.parameters()))


def _native(arch: str, in_channels: int, classes: int, params: Mapping[str, Any]) -> Any:
    from torch import nn

    if arch == "Pointwise":
        return nn.Conv2d(in_channels, classes, kernel_size=1)
    layers = _small_int(params.get("layers", 3), "layers", 1, 64)
    width = _small_int(params.get("width", 16), "width", 1, 1024)
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
    check_arch_params(architecture, params)
    if architecture in NATIVE_ARCHITECTURES:
        return _native(architecture, in_channels, classes, params).eval()
    if architecture not in SMP_ARCHITECTURES:
        raise BundleError(
            f"unknown architecture '{architecture}'; use one of "
            f"{', '.join(SMP_ARCHITECTURES + NATIVE_ARCHITECTURES)}"
        )
    import segmentation_models_pytorch as smp

    def make() -> Any:
        return getattr(smp, architecture)(
            encoder_name=encoder or "resnet18",
            encoder_weights=None,
            in_channels=in_channels,
            classes=classes,
            **params,
        )

    try:
        count = _count_parameters(make)
        if count is not None and count > MAX_PARAMETERS:
            raise BundleError(
                f"{architecture} with {params} would have {count:,} parameters (at most "
                f"{MAX_PARAMETERS:,}); refusing to build it"
            )
        model = make()
    except (KeyError, ValueError, TypeError) as err:
        if isinstance(err, BundleError):
            raise
        raise BundleError(
            f"cannot build {architecture} with encoder '{encoder}' and {params}: {err}"
        ) from err
    return _prune_unused(model, in_channels).eval()
