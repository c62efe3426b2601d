"""The sections of a workflow file: engine, vectorize, stats, change and each kind's inputs.

Each is a dataclass that :func:`geoseg.yamlspec.build` fills from YAML and checks in
``__post_init__`` (a mistake is reported at the section's line);
:mod:`geoseg.workflows.spec` puts them together into one spec per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from geoseg.errors import InputError
from geoseg.yamlspec import InputGlob, InputPath

VECTOR_FORMATS = {"gpkg": "gpkg", "geojson": "geojson", "fgb": "fgb", "parquet": "parquet"}


@dataclass(kw_only=True)
class EngineSpec:
    """Where the model runs: ``local`` (threads), new local Dask ``workers``, or a ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None

    @staticmethod
    def yaml_shorthand(value: Any) -> Any:
        """``engine: local`` stands for the local engine."""
        if value == "local":
            return {}
        raise InputError(
            f"engine must be 'local', {{workers: N}} or {{scheduler: tcp://host:8786}}, "
            f"got {value!r}"
        )

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise InputError("give either workers or scheduler, not both")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1, got {self.workers}")
        if self.scheduler is not None and "://" not in self.scheduler:
            raise InputError(
                f"scheduler {self.scheduler!r} must be an address like tcp://host:8786"
            )

    def describe(self) -> str:
        """``local``, ``N local Dask workers`` or ``Dask scheduler ADDR``."""
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if self.workers:
            return f"{self.workers} local Dask workers"
        return "local"


@dataclass(kw_only=True)
class VectorizeSpec:
    """Polygons from the class rasters (see :func:`geoseg.vectorize`); ``false`` turns them off."""

    enabled: bool = True
    format: Literal["gpkg", "geojson", "fgb", "parquet"] = "gpkg"
    simplify: float | None = None
    """Coverage-safe simplification tolerance in metres (areas then differ slightly)."""
    min_area: float | None = None
    """Sieve, m²: smaller regions merge into their neighbour before polygonizing."""
    smooth: bool = False
    connectivity: Literal[4, 8] = 4
    classes: list[int | str] | None = None
    """Only these classes (names or ids) become polygons [all]."""

    @staticmethod
    def yaml_shorthand(value: Any) -> Any:
        """``vectorize: false`` (or ``true``) switches the step off (on, with defaults)."""
        if isinstance(value, bool):
            return {"enabled": value}
        raise InputError(f"vectorize must be true, false or a mapping of options, got {value!r}")

    def __post_init__(self) -> None:
        for name in ("simplify", "min_area"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise InputError(f"{name} must be >= 0 (metres / m²), got {v}")


@dataclass(kw_only=True)
class StatsSpec:
    """Area tables: per class, and per zone when ``zones`` are given."""

    zones: InputPath | None = None
    zone_field: str | None = None
    zones_layer: str | None = None

    def __post_init__(self) -> None:
        if self.zones is not None and not self.zone_field:
            raise InputError("zones need zone_field, the attribute that names each zone")


@dataclass(kw_only=True)
class FloodChangeSpec:
    """How the pre- and post-event water maps are compared (:func:`geoseg.change.flood_extent`)."""

    water: list[int | str] = field(default_factory=lambda: ["water"])
    """The water class(es) of the model, by name or id."""
    receded: bool = True
    """Also map water that was there before and is gone after."""
    mmu_m2: float = 0.0
    """Flood and receded patches smaller than this (m²) become dry."""
    connectivity: Literal[4, 8] = 4
    align: Literal["first", "none"] = "first"
    """``first``: a post scene on another grid is warped onto the pre grid (nearest)."""

    def __post_init__(self) -> None:
        if self.mmu_m2 < 0:
            raise InputError(f"mmu_m2 must be >= 0, got {self.mmu_m2}")
        if not self.water:
            raise InputError("water needs at least one class")


DEFAULT_FOREST_RULES: dict[str, dict[str, Any]] = {
    "loss": {"from": ["forest"], "to": ["non-forest"]},
    "gain": {"from": ["non-forest"], "to": ["forest"]},
}


@dataclass(kw_only=True)
class ForestChangeSpec:
    """Change rules between the first and the last date; ``loss`` also drives the year of loss."""

    rules: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_FOREST_RULES))
    """``{name: {from: [...], to: [...], color: '#rrggbb'}}``, first match wins; needs ``loss``."""
    mmu_m2: float = 0.0
    connectivity: Literal[4, 8] = 4
    align: Literal["first", "none"] = "first"

    def __post_init__(self) -> None:
        from geoseg.change import as_rules

        rules = as_rules(self.rules)
        if "loss" not in [r.name for r in rules]:
            raise InputError("rules need a rule named 'loss' (it gives the year of loss)")
        if self.mmu_m2 < 0:
            raise InputError(f"mmu_m2 must be >= 0, got {self.mmu_m2}")


@dataclass(kw_only=True)
class LandcoverInputs:
    """One scene."""

    scene: InputPath


@dataclass(kw_only=True)
class FloodInputs:
    """A pre-event and a post-event scene (any grids: the post map is put on the pre grid)."""

    pre: InputPath
    post: InputPath
    pre_date: str | None = None
    post_date: str | None = None
    pre_mask: InputPath | None = None
    """A QA or cloud mask of the pre-event scene (``predict.mask: auto`` finds each one's own)."""
    post_mask: InputPath | None = None
    """A QA or cloud mask of the post-event scene."""


@dataclass(kw_only=True)
class DatedScene:
    """One scene of a time series and its date (a year or an ISO date)."""

    date: int | str
    scene: InputPath
    mask: InputPath | None = None
    """A QA or cloud mask of this scene (``predict.mask: auto`` finds each one's own)."""


@dataclass(kw_only=True)
class SeriesInputs:
    """Two or more dated scenes, in time order."""

    series: list[DatedScene]

    def __post_init__(self) -> None:
        from geoseg.change import parse_dates

        if len(self.series) < 2:
            raise InputError("series needs at least two dated scenes (t0 and t1)")
        parse_dates([s.date for s in self.series], len(self.series))


@dataclass(kw_only=True)
class BatchInputs:
    """Scenes by path or glob, or the items of a STAC catalog."""

    scenes: InputGlob | list[InputGlob] | None = None
    """Paths or globs (one, or a list), e.g. ``/archive/**/*.tif``."""
    stac: InputPath | None = None
    asset: str | None = None
    """STAC: the multi-band asset key [bands found by their eo:bands common names]."""
    items: list[str] | None = None
    """STAC: only these item ids [all]."""
    on_missing_bands: Literal["skip", "fail"] = "fail"
    """STAC: an item without the model's bands is skipped (and listed) or fails the batch."""

    def __post_init__(self) -> None:
        if (self.scenes is None) == (self.stac is None):
            raise InputError("give either scenes (paths or globs) or stac (a catalog), not both")
        if isinstance(self.scenes, str):
            self.scenes = [self.scenes]
        if self.scenes is not None and not self.scenes:
            raise InputError("scenes is empty; list paths or globs")
        if self.stac is None and (self.asset or self.items):
            raise InputError("asset and items apply to a stac input only")
