"""The input domain of a training run: what the bundle it makes will have seen.

Measured on the training zones only (never the validation region) from the raw
pixels, before normalization: per band the 1st, 50th and 99th percentiles of a
seeded sample of valid pixels, the data type, the pixel sizes of the images and
the share of each class among the training labels. ``geoseg predict`` compares
each scene with it (:mod:`geoseg.sensors.domain`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from geoseg.sensors.domain import InputDomain, pixel_size_m, sample_percentiles
from geoseg.sensors.presets import detect_preset
from geoseg.train.config import TrainConfig
from geoseg.train.data import TrainingImage

SAMPLE_PIXELS = 1 << 20
"""At most this many training pixels (a seeded draw) go into the percentiles."""


def training_domain(
    images: Sequence[TrainingImage], counts: Sequence[int], cfg: TrainConfig
) -> InputDomain:
    """The :class:`~geoseg.sensors.domain.InputDomain` of the training zones of ``images``.

    ``counts`` are the training labels per class; ``sensors`` come from the config's
    ``sensor`` (when it has one), else from the images' file names.
    """
    sensors = _sensors(images, cfg)
    if getattr(cfg, "units", "raw") == "reflectance":  # raw already went through presets
        from geoseg.sensors.presets import get_preset

        kinds = {get_preset(str(img.sensor)).quantity for img in images}
        domain = measure_domain(
            images,
            bands=cfg.bands,
            counts=counts,
            sensors=sensors,
            quantity=kinds.pop() if len(kinds) == 1 else "scaled",
            seed=cfg.seed,
        )
        return dataclasses.replace(domain, dtype=None)  # the files' types do not matter
    return measure_domain(images, bands=cfg.bands, counts=counts, sensors=sensors, seed=cfg.seed)


def _sensors(images: Sequence[TrainingImage], cfg: TrainConfig) -> tuple[str, ...]:
    converted = sorted({img.sensor for img in images if img.sensor})
    if converted:
        return tuple(converted)
    named = getattr(cfg, "sensor", None)
    if named:
        return (str(named),)
    found = {p.name for img in images if (p := detect_preset(img.scene.path)) is not None}
    return tuple(sorted(found))


def measure_domain(
    images: Sequence[TrainingImage],
    *,
    bands: Sequence[str],
    counts: Sequence[int],
    sensors: Sequence[str] = (),
    quantity: str | None = None,
    seed: int = 0,
) -> InputDomain:
    """The domain of the training zones of ``images`` with the label counts given."""
    dtypes = {str(img.raw.dtype) for img in images}
    sizes = [_pixel_size(img) for img in images]
    known = [s for s in sizes if s is not None]
    total = sum(counts)
    common = dict(
        bands=tuple(bands),
        resolution_m=(min(known), max(known)) if known else None,
        class_fractions=tuple(c / total for c in counts) if total else None,
        sensors=tuple(sensors),
    )
    if len(dtypes) > 1:  # images in other units: their values are not one distribution
        return InputDomain(quantity=quantity or "mixed", **common)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    sample = np.concatenate(
        [
            img.raw[:, img.valid & img.train_zone if img.train_zone.size else img.valid]
            for img in images
        ],
        axis=1,
    )
    if sample.shape[1] > SAMPLE_PIXELS:
        sample = sample[:, rng.choice(sample.shape[1], SAMPLE_PIXELS, replace=False)]
    p01, p50, p99 = sample_percentiles(sample)
    integer = np.issubdtype(images[0].raw.dtype, np.integer)
    return InputDomain(
        quantity=quantity or ("dn" if integer else "unknown"),
        dtype=dtypes.pop(),
        p01=p01,
        p50=p50,
        p99=p99,
        **common,  # type: ignore[arg-type]
    )


def _pixel_size(img: TrainingImage) -> float | None:
    scene = img.scene
    if scene.crs is None:
        return None
    rows, _ = scene.shape
    lat = None
    if scene.crs.is_geographic:
        lat = scene.transform.f + scene.transform.e * rows / 2
    size = pixel_size_m(scene.crs, scene.transform, lat)
    return round(size, 3) if size is not None else None
