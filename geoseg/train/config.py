"""Training configuration: a tree of dataclasses loaded from YAML or built from flags.

Every field has a default, so the smallest config names only the data, the
class scheme and the bands. YAML is read by :mod:`geoseg.yamlspec` (safe loader,
bounded aliases and depth), which knows the line of every key, so an unknown key
or a wrong type is reported as ``config.yaml line 12: unknown key 'lr' in
optimizer; known keys: ...``. Sizes are checked against :data:`LIMITS`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geoseg.errors import (
    ConfigError as ConfigError,  # re-exported: defined in errors since 0.2
)
from geoseg.models.schema import MAX_CHIP
from geoseg.yamlspec import shown


@dataclass
class DataItem:
    """One training image and its labels."""

    image: str
    labels: str
    label_field: str | None = None
    """Attribute holding the class id, for vector labels (GPKG/GeoJSON/Shapefile)."""
    bands: list[int | str] | None = None
    """Bands of this file (1-based indexes or descriptions), in model order; default:
    the bands named like the model's ``bands``, else every non-alpha band."""
    sensor: str | None = None
    """The product this file is (a preset of ``geoseg sensors``), for ``units: reflectance``;
    default: the config's ``sensor``, else what the file's name or tags say."""


@dataclass
class ModelConfig:
    """Architecture (any smp architecture or a native net) and chip geometry."""

    architecture: str = "Unet"
    encoder: str | None = "resnet18"
    arch_params: dict[str, Any] = field(
        default_factory=lambda: {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}
    )
    chip: int = 256
    """Training chip size; also the bundle's preferred inference chip unless ``infer_chip``."""
    overlap: int = 32
    """Preferred inference overlap stored in the bundle."""
    infer_chip: int | None = None
    """Inference chip stored in the bundle (a fully convolutional net may infer on larger
    chips than it trained on: fewer overlaps to compute); default ``chip``."""

    @property
    def bundle_chip(self) -> int:
        """The chip the bundle asks ``predict`` for."""
        return self.infer_chip or self.chip


@dataclass
class SamplingConfig:
    """How training chips are drawn each epoch."""

    mode: Literal["random", "grid"] = "random"
    chips_per_epoch: int = 256
    class_balanced: bool = False
    """Half the chips are centred near a pixel of a uniformly drawn class."""


@dataclass
class SplitConfig:
    """Spatial train/validation split: never random pixels."""

    method: Literal["blocks", "polygon", "region"] = "blocks"
    block: int = 512
    """Side of the square blocks drawn for validation (``blocks``)."""
    val_fraction: float = 0.25
    seed: int | None = None
    """Seed of the block draw; default: the run's seed."""
    gap: int | None = None
    """Pixels between any training chip and any validation pixel; default chip // 2."""
    polygon: str | None = None
    """Vector file whose polygons are the validation region (``polygon``)."""
    hold_out: list[int] | None = None
    """``region``: the data entries (1 = the first) held out whole: every labelled pixel
    of them is validation and none is trained on (leave-one-region-out)."""


@dataclass
class AugmentConfig:
    """Augmentations for overhead imagery (applied to training chips only)."""

    flips: bool = True
    rot90: bool = True
    brightness: float = 0.0
    """Per band, add ``U(-b, b)`` (normalized units) to valid pixels."""
    contrast: float = 0.0
    """Per band, multiply valid pixels by ``U(1 - c, 1 + c)``."""
    scale_jitter: float = 0.0
    """Read ``chip * U(1 - s, 1 + s)`` pixels and resize to ``chip``."""
    quantize: float = 0.0
    """Chance that a chip is quantized to 256 levels per band (8-bit data)."""
    haze: float = 0.0
    """Strength of a random veil ``t ~ U(0, haze)``: each band is pulled towards a bright
    value by ``t * (0.49 / wavelength_um) ** 2``, so blue most, SWIR least (by band name)."""
    resolution: float = 0.0
    """Largest coarsening: with chance 1/2 a chip is averaged down by ``U(1, resolution)``
    and resized back (a sensor with coarser pixels, e.g. 3 for 10 m to 30 m); 0 or 1: off."""
    band_dropout: float = 0.0
    """Chance that one random band of a chip is set to 0 (its normalized mean)."""


@dataclass
class LossTerm:
    """One loss and its weight in the sum."""

    name: Literal["ce", "dice", "focal", "lovasz"] = "ce"
    weight: float = 1.0


@dataclass
class LossConfig:
    """A weighted sum of losses; ``class_weights`` apply to ``ce`` (and ``focal``)."""

    terms: list[LossTerm] = field(default_factory=lambda: [LossTerm()])
    class_weights: Literal["auto", "none"] | list[float] = "auto"
    """``auto``: inverse square-root pixel frequency over the training region, capped at 10."""

    @staticmethod
    def yaml_shorthand(value: Any) -> Any:
        """``loss: [..terms..]`` stands for ``loss: {terms: [..]}``."""
        return {"terms": value} if isinstance(value, list) else value


@dataclass
class OptimizerConfig:
    """Optimizer settings."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    """SGD only."""


@dataclass
class EarlyStopping:
    """Stop when validation mIoU has not improved for ``patience`` epochs (0: never)."""

    patience: int = 0
    min_delta: float = 0.0

    @staticmethod
    def yaml_shorthand(value: Any) -> Any:
        """``early_stopping: 5`` stands for ``early_stopping: {patience: 5}``."""
        is_int = isinstance(value, int) and not isinstance(value, bool)
        return {"patience": value} if is_int else value


@dataclass
class TrainConfig:
    """Everything a training run needs; see ``workflows/train-*.yaml`` for examples."""

    data: list[DataItem]
    scheme: str
    bands: list[str]
    """Band names recorded in the bundle, in model order (e.g. blue, green, red, nir)."""
    normalization: dict[str, Any] = field(default_factory=lambda: {"type": "fixed"})
    """The bundle's normalization spec; a ``fixed`` spec without mean/std gets them
    measured over the valid pixels of the training region."""
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: Literal["onecycle", "cosine", "none"] = "onecycle"
    epochs: int = 20
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    batch: int = 8
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    """Mixed precision on CUDA (never on CPU)."""
    threads: int | None = None
    """torch CPU threads (results are reproducible per thread count)."""
    out: str = "model.bundle"
    record: str | None = None
    """Folder for the record JSON, curves PNG and resume checkpoint; default ``<out>.train``."""
    card: str | None = None
    """Also write the Markdown model card here."""
    name: str | None = None
    """Bundle name; default the file name of ``out`` without ``.bundle``."""
    description: str = ""
    input_units: str = ""
    resolution_m: float | None = None
    sensor: str | None = None
    """The product the images are (a preset of ``geoseg sensors``): recorded in the bundle's
    domain, so band ids such as ``B2`` in a scene are read as that sensor's."""
    units: Literal["raw", "reflectance"] | None = None
    """``reflectance``: each image's values go through its sensor preset (scale and offset)
    before normalization, so the model learns reflectance in [0, 1] and ``predict`` converts
    any scene whose sensor it knows the same way (one bundle for every sensor with the
    bands). ``raw`` (or unset): the file's values as they are."""
    card_notes: str = ""
    """Free text added to the model card (label source, known failure modes)."""
    base_dir: str = field(default=".", metadata={"yaml": False})
    """Relative paths are resolved against this (the YAML file's folder); not a YAML key."""

    @property
    def bundle_name(self) -> str:
        """The bundle's name."""
        return self.name or Path(self.out).name.removesuffix(".bundle")

    def path(self, p: str) -> Path:
        """A config path resolved against :attr:`base_dir`."""
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else Path(self.base_dir) / q

    @property
    def record_dir(self) -> Path:
        """Folder of the record, curves and checkpoint."""
        return self.path(self.record) if self.record else self.path(self.out + ".train")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (for the record and the bundle provenance)."""
        return dataclasses.asdict(self)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Check every value's range again (after changing fields, as the CLI's flags do).

        Raises
        ------
        ConfigError
            A value out of its range, naming the key and the range.
        """
        _check_values(self)
        from geoseg.sensors.presets import get_preset

        for name in [self.sensor, *(item.sensor for item in self.data)]:
            if name is not None:
                get_preset(name)  # an unknown name is refused before any work
        if self.units not in (None, "raw", "reflectance"):
            raise ConfigError(f"units must be raw or reflectance, got {self.units!r}")


# Whole-number settings and the range each must be in. The chips end up in the bundle,
# which refuses chips over bundle.MAX_CHIP: checked here, not after hours of training.
LIMITS: dict[str, tuple[int, int]] = {
    "model.chip": (8, MAX_CHIP),
    "model.infer_chip": (8, MAX_CHIP),
    "batch": (1, 1024),
    "epochs": (1, 100_000),
    "sampling.chips_per_epoch": (1, 10_000_000),
    "split.block": (16, 65_536),
    "split.gap": (0, 65_536),
    "threads": (1, 1024),
    "early_stopping.patience": (0, 100_000),
}


def _check_limits(cfg: TrainConfig) -> None:
    for key, (lo, hi) in LIMITS.items():
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(
                f"{key} must be a whole number from {lo} to {hi:,}, got {shown(value)}; "
                "fix the training config"
            )


def _check_values(cfg: TrainConfig) -> None:
    """Range checks that types alone do not express."""
    _check_limits(cfg)
    checks: list[tuple[bool, str]] = [
        (bool(cfg.data), "data needs at least one {image, labels} entry"),
        (bool(cfg.bands), "bands needs at least one band name"),
        (
            0 <= cfg.model.overlap < cfg.model.bundle_chip,
            f"model.overlap {shown(cfg.model.overlap)} must be in [0, chip)",
        ),
        (
            0 < cfg.split.val_fraction < 1,
            f"split.val_fraction {cfg.split.val_fraction} must be in (0, 1)",
        ),
        (
            cfg.split.method != "polygon" or bool(cfg.split.polygon),
            "split.method polygon needs split.polygon (a vector file of validation areas)",
        ),
        (
            cfg.split.method != "region" or bool(cfg.split.hold_out),
            "split.method region needs split.hold_out (the data entries to hold out, 1 = first)",
        ),
        (
            all(1 <= k <= len(cfg.data) for k in cfg.split.hold_out or []),
            f"split.hold_out {cfg.split.hold_out} must name data entries 1..{len(cfg.data)}",
        ),
        (
            cfg.split.method != "region" or len(set(cfg.split.hold_out or [])) < len(cfg.data),
            "split.method region must leave at least one data entry to train on",
        ),
        (0 <= cfg.augment.scale_jitter < 1, "augment.scale_jitter must be in [0, 1)"),
        (0 <= cfg.augment.quantize <= 1, "augment.quantize must be in [0, 1]"),
        (0 <= cfg.augment.haze <= 1, "augment.haze must be in [0, 1]"),
        (
            cfg.augment.resolution == 0 or 1 <= cfg.augment.resolution <= 8,
            "augment.resolution must be 0 (off) or in [1, 8]",
        ),
        (0 <= cfg.augment.band_dropout <= 1, "augment.band_dropout must be in [0, 1]"),
        (cfg.optimizer.lr > 0, f"optimizer.lr {cfg.optimizer.lr} must be positive"),
        (bool(cfg.loss.terms), "loss.terms needs at least one loss"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{msg}; fix the training config")
    _check_chip_multiple(cfg.model)


def _check_chip_multiple(model: ModelConfig) -> None:
    """The chip must survive ``encoder_depth`` halvings of an smp encoder evenly."""
    from geoseg.models.arch import NATIVE_ARCHITECTURES

    if model.architecture in NATIVE_ARCHITECTURES:
        return
    depth = model.arch_params.get("encoder_depth", 5)
    multiple = 2 ** int(depth) if isinstance(depth, int) else 32
    for key, chip in (("chip", model.chip), ("infer_chip", model.infer_chip)):
        if chip is not None and chip % multiple:
            raise ConfigError(
                f"model.{key} {chip} must be a multiple of {multiple} for "
                f"{model.architecture} with encoder_depth {depth}; use e.g. "
                f"{max(multiple, chip // multiple * multiple)}"
            )


# -- YAML -> dataclasses (geoseg.yamlspec) -------------------------------------


def config_from_dict(
    doc: dict[str, Any], *, source: str = "config", lines: dict[tuple[str, ...], int] | None = None
) -> TrainConfig:
    """Validate a mapping (as from YAML) into a :class:`TrainConfig`.

    Raises
    ------
    ConfigError
        Unknown key, wrong type, missing required key or out-of-range value.
    """
    from geoseg.errors import SpecError
    from geoseg.yamlspec import Source, build

    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a training config must be a mapping of keys")
    try:
        return build(TrainConfig, doc, Source(source, lines or {}))
    except SpecError as err:
        raise ConfigError(str(err)) from err


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Load a training config YAML; relative paths in it are relative to its folder.

    ``overrides`` replace top-level keys (the CLI's ``--epochs`` etc.).

    Raises
    ------
    ConfigError
        Missing or unparsable file, or an invalid config (see :func:`config_from_dict`).
    """
    from geoseg.errors import SpecError
    from geoseg.yamlspec import read_yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"training config {p} does not exist; check the path")
    try:
        doc, src = read_yaml(p, what="training config")
    except SpecError as err:
        raise ConfigError(str(err)) from err
    lines = dict(src.lines)
    if not isinstance(doc, dict):
        raise ConfigError(f"{p} must hold a mapping of keys (data, scheme, bands, ...)")
    doc = {**doc, **{k: v for k, v in overrides.items() if v is not None}}
    cfg = config_from_dict(doc, source=str(p), lines=lines)
    cfg.base_dir = str(p.resolve().parent)
    return cfg
