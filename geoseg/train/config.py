"""Training configuration: a tree of dataclasses loaded from YAML or built from flags.

Every field has a default, so the smallest config names only the data, the
class scheme and the bands. YAML is read with ``yaml.safe_load``; the same text
is also *composed* (the safe loader's node tree, no object construction) to
know the line of every key, so an unknown key or a wrong type is reported as
``config.yaml line 12: unknown key 'lr' in optimizer; known keys: ...``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geoseg.errors import InputError


class ConfigError(InputError):
    """A training config is missing, unparsable or has a wrong key or value."""


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


@dataclass
class ModelConfig:
    """Architecture (any smp architecture or a native net) and chip geometry."""

    architecture: str = "Unet"
    encoder: str | None = "resnet18"
    arch_params: dict[str, Any] = field(
        default_factory=lambda: {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}
    )
    chip: int = 256
    """Training chip size; also the bundle's preferred inference chip."""
    overlap: int = 32
    """Preferred inference overlap stored in the bundle."""


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

    method: Literal["blocks", "polygon"] = "blocks"
    block: int = 512
    """Side of the square blocks drawn for validation (``blocks``)."""
    val_fraction: float = 0.25
    seed: int | None = None
    """Seed of the block draw; default: the run's seed."""
    gap: int | None = None
    """Pixels between any training chip and any validation pixel; default chip // 2."""
    polygon: str | None = None
    """Vector file whose polygons are the validation region (``polygon``)."""


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
    card_notes: str = ""
    """Free text added to the model card (label source, known failure modes)."""
    base_dir: str = "."
    """Relative paths are resolved against this (the YAML file's folder)."""

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
        _check_values(self)


def _check_values(cfg: TrainConfig) -> None:
    """Range checks that types alone do not express."""
    checks: list[tuple[bool, str]] = [
        (bool(cfg.data), "data needs at least one {image, labels} entry"),
        (bool(cfg.bands), "bands needs at least one band name"),
        (cfg.model.chip >= 8, f"model.chip {cfg.model.chip} must be at least 8"),
        (
            0 <= cfg.model.overlap < cfg.model.chip,
            f"model.overlap {cfg.model.overlap} must be in [0, chip)",
        ),
        (cfg.epochs >= 1, f"epochs {cfg.epochs} must be at least 1"),
        (cfg.batch >= 1, f"batch {cfg.batch} must be at least 1"),
        (cfg.sampling.chips_per_epoch >= 1, "sampling.chips_per_epoch must be at least 1"),
        (
            0 < cfg.split.val_fraction < 1,
            f"split.val_fraction {cfg.split.val_fraction} must be in (0, 1)",
        ),
        (cfg.split.block >= 16, f"split.block {cfg.split.block} must be at least 16"),
        (
            cfg.split.method != "polygon" or bool(cfg.split.polygon),
            "split.method polygon needs split.polygon (a vector file of validation areas)",
        ),
        (cfg.split.gap is None or cfg.split.gap >= 0, "split.gap must be >= 0"),
        (0 <= cfg.augment.scale_jitter < 1, "augment.scale_jitter must be in [0, 1)"),
        (cfg.optimizer.lr > 0, f"optimizer.lr {cfg.optimizer.lr} must be positive"),
        (bool(cfg.loss.terms), "loss.terms needs at least one loss"),
        (cfg.early_stopping.patience >= 0, "early_stopping.patience must be >= 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{msg}; fix the training config")
    _check_chip_multiple(cfg.model)


def _check_chip_multiple(model: ModelConfig) -> None:
    """The chip must survive ``encoder_depth`` halvings of an smp encoder evenly."""
    from geoseg.models import NATIVE_ARCHITECTURES

    if model.architecture in NATIVE_ARCHITECTURES:
        return
    depth = model.arch_params.get("encoder_depth", 5)
    multiple = 2 ** int(depth) if isinstance(depth, int) else 32
    if model.chip % multiple:
        raise ConfigError(
            f"model.chip {model.chip} must be a multiple of {multiple} for "
            f"{model.architecture} with encoder_depth {depth}; use e.g. "
            f"{max(multiple, model.chip // multiple * multiple)}"
        )


# -- YAML -> dataclasses -----------------------------------------------------


def _key_lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key in a composed YAML node tree."""
    import yaml

    out: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = (*prefix, str(k.value))
            out[path] = k.start_mark.line + 1
            out.update(_key_lines(v, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            path = (*prefix, str(i))
            out[path] = v.start_mark.line + 1
            out.update(_key_lines(v, path))
    return out


class _Ctx:
    def __init__(self, source: str, lines: dict[tuple[str, ...], int]) -> None:
        self.source, self.lines = source, lines

    def where(self, path: tuple[str, ...]) -> str:
        for i in range(len(path), 0, -1):
            if path[:i] in self.lines:
                return f"{self.source} line {self.lines[path[:i]]}"
        return self.source

    def fail(self, path: tuple[str, ...], msg: str) -> ConfigError:
        name = ".".join(path) or "top level"
        return ConfigError(f"{self.where(path)}: {name}: {msg}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: tuple[str, ...], ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(value, arg, path, ctx)
            except ConfigError as err:
                errors.append(err)
        raise ctx.fail(path, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ctx.fail(path, f"must be {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ctx.fail(path, f"expected a mapping, got {value!r}")
        return _build(tp, value, path, ctx)
    if origin is list:
        if not isinstance(value, list):
            raise ctx.fail(path, f"expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, (*path, str(i)), ctx) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ctx.fail(path, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ctx.fail(path, f"expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, doc: dict[str, Any], path: tuple[str, ...], ctx: _Ctx) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in fields or key == "base_dir":
            known = ", ".join(k for k in fields if k != "base_dir")
            raise ctx.fail((*path, str(key)), f"unknown key; known keys here: {known}")
        kwargs[key] = _convert(value, hints[key], (*path, key), ctx)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ctx.fail(path, f"missing required key(s) {', '.join(missing)}")
    return cls(**kwargs)


def _normalize_shorthands(doc: dict[str, Any]) -> dict[str, Any]:
    """Accept ``loss: [..terms..]`` and ``early_stopping: 5`` shorthands."""
    doc = dict(doc)
    if isinstance(doc.get("loss"), list):
        doc["loss"] = {"terms": doc["loss"]}
    if isinstance(doc.get("early_stopping"), int) and not isinstance(
        doc.get("early_stopping"), bool
    ):
        doc["early_stopping"] = {"patience": doc["early_stopping"]}
    return doc


def config_from_dict(
    doc: dict[str, Any], *, source: str = "config", lines: dict[tuple[str, ...], int] | None = None
) -> TrainConfig:
    """Validate a mapping (as from YAML) into a :class:`TrainConfig`.

    Raises
    ------
    ConfigError
        Unknown key, wrong type, missing required key or out-of-range value.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a training config must be a mapping of keys")
    ctx = _Ctx(source, lines or {})
    cfg: TrainConfig = _build(TrainConfig, _normalize_shorthands(doc), (), ctx)
    return cfg


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Load a training config YAML; relative paths in it are relative to its folder.

    ``overrides`` replace top-level keys (the CLI's ``--epochs`` etc.).

    Raises
    ------
    ConfigError
        Missing or unparsable file, or an invalid config (see :func:`config_from_dict`).
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"training config {p} does not exist; check the path")
    text = p.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML ({str(err).splitlines()[0]}); fix it") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{p} must hold a mapping of keys (data, scheme, bands, ...)")
    doc = {**doc, **{k: v for k, v in overrides.items() if v is not None}}
    cfg = config_from_dict(doc, source=str(p), lines=lines)
    cfg.base_dir = str(p.resolve().parent)
    return cfg
