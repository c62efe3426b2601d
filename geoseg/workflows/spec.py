"""Workflow files: one YAML file per job, validated into dataclasses before anything runs.

Every workflow names its ``kind`` and, for that kind, its ``inputs``; the rest
is shared: the ``model`` (a shipped bundle name or a bundle path), ``predict``
options (the fields of :class:`geoseg.pipeline.predict.PredictOptions`), the ``engine``
(``local``, ``{workers: N}`` or ``{scheduler: tcp://host:8786}``),
``vectorize`` options, ``report`` and ``out``. Landcover adds ``stats`` (zones),
flood and deforestation add ``change``.

The sections (``engine``, ``vectorize``, ``stats``, ``change``, ``inputs``) are
the dataclasses of :mod:`geoseg.workflows.sections`; this module puts them
together per kind and validates a file against its model. Paths are relative to
the workflow file's folder. Errors name the file and the
line: ``flood.yaml line 12: unknown key 'mmu' in change; known keys: …``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geoseg.errors import BundleError, InputError, SpecError
from geoseg.pipeline.options import PredictOptions
from geoseg.safepath import safe_name

# the sections moved to geoseg.workflows.sections in 0.2; importable from here for one release
from geoseg.workflows.sections import (
    DEFAULT_FOREST_RULES as DEFAULT_FOREST_RULES,
)
from geoseg.workflows.sections import (
    VECTOR_FORMATS as VECTOR_FORMATS,
)
from geoseg.workflows.sections import (
    BatchInputs,
    EngineSpec,
    FloodChangeSpec,
    FloodInputs,
    ForestChangeSpec,
    LandcoverInputs,
    SeriesInputs,
    StatsSpec,
    VectorizeSpec,
)
from geoseg.workflows.sections import (
    DatedScene as DatedScene,
)
from geoseg.yamlspec import OutputPath, Source, build, read_yaml

Kind = Literal["landcover", "flood", "deforestation", "batch"]
KINDS: tuple[str, ...] = ("landcover", "flood", "deforestation", "batch")
# predict options the workflow itself decides: polygons are made by the vectorize step
# (with the workflow's options) and --overwrite comes from ``geoseg run``
_RESERVED_PREDICT = ("overwrite", "vector", "vector_format")
PREDICT_LIMITS: dict[str, tuple[int, int]] = {
    "batch_size": (1, 4096),
    "block": (1, 65_536),
    "threads": (1, 1024),
}
"""Ranges ``geoseg run --check`` holds predict options to (the chip: PredictOptions' own
check; the overlap: below the chip). Whether a run fits in memory is checked when it runs."""


@dataclass(kw_only=True)
class WorkflowSpec:
    """What every workflow has; subclasses add ``inputs`` and their own sections."""

    kind: Kind
    model: str
    """A shipped bundle name (``geoseg bundle list``) or a bundle file."""
    title: str | None = None
    predict: PredictOptions = field(default_factory=PredictOptions)
    engine: EngineSpec = field(default_factory=EngineSpec)
    vectorize: VectorizeSpec = field(default_factory=VectorizeSpec)
    report: bool = True
    out: OutputPath | None = None
    """Output folder [``results/<workflow file name>`` under the current folder]."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (for the run record)."""
        import dataclasses

        return dataclasses.asdict(self)


@dataclass(kw_only=True)
class LandcoverSpec(WorkflowSpec):
    """Class map, styled polygons and area tables (optionally per zone) for one scene."""

    inputs: LandcoverInputs
    stats: StatsSpec = field(default_factory=StatsSpec)


@dataclass(kw_only=True)
class FloodSpec(WorkflowSpec):
    """Flood extent, permanent and total water from a pre- and a post-event scene."""

    inputs: FloodInputs
    change: FloodChangeSpec = field(default_factory=FloodChangeSpec)


@dataclass(kw_only=True)
class DeforestationSpec(WorkflowSpec):
    """Forest change between the first and last date and the year of loss over the series."""

    inputs: SeriesInputs
    change: ForestChangeSpec = field(default_factory=ForestChangeSpec)


@dataclass(kw_only=True)
class BatchSpec(WorkflowSpec):
    """A folder, glob or STAC catalog of scenes: resumable, one manifest, a summary table."""

    inputs: BatchInputs


SPEC_CLASSES: dict[str, type[WorkflowSpec]] = {
    "landcover": LandcoverSpec,
    "flood": FloodSpec,
    "deforestation": DeforestationSpec,
    "batch": BatchSpec,
}

AnySpec = LandcoverSpec | FloodSpec | DeforestationSpec | BatchSpec


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: the spec, where it came from, and its resolved model and output."""

    spec: WorkflowSpec
    source: Source
    model: str
    """The bundle name or resolved path."""
    out: Path

    @property
    def kind(self) -> str:
        """``landcover``, ``flood``, ``deforestation`` or ``batch``."""
        return self.spec.kind


def load_workflow(
    path: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None
) -> Workflow:
    """Read and validate a workflow file; nothing is run and nothing is written.

    ``out`` replaces the file's output folder (as ``geoseg run --out`` does).

    Raises
    ------
    SpecError
        Missing or unparsable file, unknown kind or key, wrong type, missing
        input file, unknown model (each with the file and line).

    Examples
    --------
    >>> wf = load_workflow("workflows/flood.yaml")
    >>> wf.kind, wf.model, wf.spec.predict.bands
    ('flood', 'mndwi-otsu', (4, 1))
    """
    doc, source = read_yaml(path, what="workflow")
    return workflow_from_dict(doc, source, default_name=Path(path).stem, out=out)


def workflow_from_dict(
    doc: Any,
    source: Source,
    *,
    default_name: str = "workflow",
    out: str | os.PathLike[str] | None = None,
) -> Workflow:
    """Validate a parsed workflow document (see :func:`load_workflow`).

    Without ``out`` (or the file's ``out``) the outputs go to ``results/<default_name>``,
    so ``default_name`` (the file's name) must be a safe file name.
    """
    if not isinstance(doc, dict):
        raise source.error((), "a workflow must be a mapping of keys (kind, inputs, model, …)")
    kind = doc.get("kind")
    if kind is None:
        raise source.error((), f"missing key 'kind'; use one of {', '.join(KINDS)}")
    if kind not in SPEC_CLASSES:
        raise source.error(
            ("kind",), f"unknown workflow kind {kind!r}; use one of {', '.join(KINDS)}"
        )
    for key in _RESERVED_PREDICT:
        if isinstance(doc.get("predict"), dict) and key in doc["predict"]:
            raise source.error(
                ("predict", key),
                f"predict.{key} is decided by the workflow (polygons come from the vectorize "
                "section, --overwrite from geoseg run); remove it",
            )
    spec = build(SPEC_CLASSES[kind], doc, source)
    model = _resolve_model(spec.model, source)
    _check_against_model(spec, model, source)
    if out is None and spec.out is not None:
        out = spec.out
    if out is None:
        try:
            name = safe_name(default_name, "workflow file name")
        except InputError as err:
            raise source.error((), f"{err}; set out in the file or pass --out") from err
        out = Path.cwd() / "results" / name
    return Workflow(spec, source, model, Path(out))


def _check_against_model(spec: WorkflowSpec, model: str, source: Source) -> None:
    """Mistakes the model reveals before anything runs: band count, class names."""
    from geoseg.models.bundle import load_bundle

    bundle = load_bundle(model)
    _check_predict_sizes(spec.predict, bundle.chip, source)
    names = bundle.classes
    bands = spec.predict.bands
    if bands is not None and len(bands) != len(bundle.bands):
        raise source.error(
            ("predict", "bands"),
            f"predict.bands selects {len(bands)} bands but model '{bundle.name}' reads "
            f"{len(bundle.bands)} ({', '.join(bundle.bands)}); list one scene band for each",
        )
    if spec.vectorize.classes is not None and spec.kind in ("flood", "deforestation"):
        raise source.error(
            ("vectorize", "classes"),
            f"vectorize.classes does not apply to {spec.kind} workflows: they choose their "
            "layers (flood, permanent and total water; loss and gain); remove it",
        )
    _check_names(spec.vectorize.classes, names, bundle.name, ("vectorize", "classes"), source)
    if isinstance(spec, FloodSpec):
        _check_names(spec.change.water, names, bundle.name, ("change", "water"), source)
    if isinstance(spec, DeforestationSpec):
        for rule, body in spec.change.rules.items():
            for side in ("from", "to"):
                listed = body[side] if isinstance(body[side], list) else [body[side]]
                path = ("change", "rules", rule, side)
                _check_names(listed, names, bundle.name, path, source)


def _check_predict_sizes(opts: PredictOptions, bundle_chip: int, source: Source) -> None:
    """Whole numbers in range: a file that asks for absurd sizes fails ``--check``, not a run."""
    for name, (lo, hi) in PREDICT_LIMITS.items():
        value = getattr(opts, name)
        if value is not None and not lo <= value <= hi:
            raise source.error(
                ("predict", name),
                f"predict.{name} must be a whole number from {lo} to {hi:,}, got {value}",
            )
    chip = opts.chip or bundle_chip
    if opts.overlap is not None and not 0 <= opts.overlap < chip:
        raise source.error(
            ("predict", "overlap"),
            f"predict.overlap must be from 0 to {chip - 1} (below the chip, {chip}), "
            f"got {opts.overlap}",
        )


def _check_names(
    wanted: Any, classes: Any, model: str, path: tuple[str, ...], source: Source
) -> None:
    """Class names (or ids) ``wanted`` must be classes of the model (``"*"``: any)."""
    names = {c.name.lower(): c.name for c in classes}
    ids = [c.id for c in classes]
    for w in wanted or ():
        known = w in ids if isinstance(w, int) else (w == "*" or str(w).lower() in names)
        if not known:
            raise source.error(
                path,
                f"{'.'.join(path)} names class {w!r}, which model '{model}' does not have; "
                f"its classes: {', '.join(f'{c.id} {c.name}' for c in classes)}",
            )


def _resolve_model(model: str, source: Source) -> str:
    from geoseg.models.bundle import load_bundle
    from geoseg.models.shipped import shipped_bundles

    if model in shipped_bundles():
        candidate = model
    else:
        resolved = source.resolve(model)
        candidate = str(resolved) if resolved.exists() else model
    try:
        load_bundle(candidate)
    except BundleError as err:
        raise source.error(("model",), f"model: {err}") from err
    return candidate


__all__ = [
    "KINDS",
    "AnySpec",
    "BatchInputs",
    "BatchSpec",
    "DatedScene",
    "DeforestationSpec",
    "EngineSpec",
    "FloodChangeSpec",
    "FloodInputs",
    "FloodSpec",
    "ForestChangeSpec",
    "LandcoverInputs",
    "LandcoverSpec",
    "SeriesInputs",
    "SpecError",
    "StatsSpec",
    "VectorizeSpec",
    "Workflow",
    "WorkflowSpec",
    "load_workflow",
    "workflow_from_dict",
]
