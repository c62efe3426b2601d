"""What a predict run is asked for: :class:`PredictOptions`, one field per CLI flag.

Every option is checked when the object is made, so a bad value is refused
before any scene is opened; what depends on the scene or the bundle (band
roles, units, the chip grid) is checked by :func:`geoseg.pipeline.check.open_for_predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from geoseg.engine.backend import Backend, check_backend
from geoseg.engine.resources import check_chip
from geoseg.errors import InputError
from geoseg.grid.blend import BLENDS, Blend
from geoseg.io.masks import parse_classes as parse_mask_classes
from geoseg.models.bundle import ModelBundle
from geoseg.models.device import INT8_REFUSAL, PRECISIONS, Precision
from geoseg.pipeline.outputs import VectorFormat
from geoseg.sensors.presets import get_preset

Overviews = Literal["nearest", "mode"]
OVERVIEWS: tuple[Overviews, ...] = get_args(Overviews)
"""Resampling of the class raster's overviews (``--overviews``)."""


@dataclass(frozen=True)
class PredictOptions:
    """Options of a predict run (CLI flags map one to one).

    ``blend``, ``overviews`` and ``precision`` are also checked when the object
    is made (a value from a workflow file or a plain call is refused with the
    flag's name). ``vector_format`` is only typed: no CLI flag sets it, and an
    unknown one is refused by the vectorizer when the polygons are written.
    """

    chip: int | None = None
    overlap: int | None = None
    block: int | None = None
    batch_size: int | None = None
    blend: Blend = "smooth"
    bands: tuple[int | str, ...] | None = None
    device: str = "auto"
    confidence: bool = False
    vector: bool = True
    overwrite: bool = False
    allow_no_crs: bool = False
    allow_mixed_crs: bool = False
    pad: bool = True
    threads: int | None = None
    vector_format: VectorFormat = "gpkg"
    overviews: Overviews = "nearest"
    precision: Precision = "fp32"
    sensor: str | None = None
    allow_domain_shift: bool = False
    mask: str | None = None
    mask_classes: tuple[str, ...] | None = None
    backend: Backend = "auto"

    def __post_init__(self) -> None:
        check_backend(self.backend)
        if self.precision not in PRECISIONS:
            why = f": {INT8_REFUSAL}" if str(self.precision) == "int8" else ""
            raise InputError(
                f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'{why}"
            )
        if self.overviews not in OVERVIEWS:
            raise InputError(
                f"--overviews must be one of {', '.join(OVERVIEWS)}, got '{self.overviews}'"
            )
        if self.blend not in BLENDS:
            raise InputError(f"--blend must be one of {', '.join(BLENDS)}, got '{self.blend}'")
        for name in ("batch_size", "block"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or value < 1:
                raise InputError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        check_chip(self.chip)
        if self.sensor is not None:
            get_preset(self.sensor)  # an unknown name is refused before any work
        if self.mask_classes is not None:
            parse_mask_classes(self.mask_classes)
        if self.bands is not None and not self.bands:
            raise InputError(
                "--bands names no band; give 1-based indexes or names such as 3,2,1 "
                "or red,green,blue, or omit it to use the bundle's band names"
            )


def chip_overlap(opts: PredictOptions, bundle: ModelBundle) -> tuple[int, int]:
    """Chip edge and overlap of a run: the options', else the bundle's.

    The bundle's overlap is capped below the chip, so a smaller ``--chip`` alone
    still gives a valid grid.
    """
    chip = opts.chip or bundle.chip
    overlap = opts.overlap if opts.overlap is not None else min(bundle.overlap, chip - 1)
    return chip, overlap
