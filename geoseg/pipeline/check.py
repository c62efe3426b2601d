"""Before inferring: which bands, in which units, and whether the bundle knows such data.

:func:`open_for_predict` opens a scene for a run and checks all that can be checked
before inferring (bands, units, domain, mask, chip grid, a CRS for polygons);
:func:`plan_input` is the one place ``predict`` learns what it was given. It picks
the scene bands for the bundle's inputs (:mod:`geoseg.sensors.bands`), the sensor
preset (``--sensor`` or detected), folds the preset's conversion to reflectance
into the normalization when the bundle was trained on reflectance, and compares
a decimated sample of the scene with the bundle's recorded domain
(:mod:`geoseg.sensors.domain`): far outside is a :class:`~geoseg.sensors.domain.DomainError`
unless ``allow_domain_shift``; milder shifts come back as warnings for the CLI,
the run record and the report.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import DomainError, SceneError
from geoseg.grid.chips import ChipGrid
from geoseg.io.normalize import scene_sample
from geoseg.io.scene import Scene, open_scene
from geoseg.models.bundle import ModelBundle
from geoseg.models.onnx_model import check_chip as check_fixed_input
from geoseg.pipeline.maskmodel import load_mask_bundle, mask_options, resolve_mask
from geoseg.pipeline.options import PredictOptions, chip_overlap
from geoseg.sensors.bands import BandChoice, FileBands, choose_bands, resolve_preset
from geoseg.sensors.domain import REFLECTANCE, InputDomain, check_scene, pixel_size_m
from geoseg.sensors.presets import SensorPreset, get_preset, preset_offset

SAMPLE_PIXELS = 1 << 18
"""Pixels of the decimated read the domain check compares (about 512 x 512)."""


SHIFT_HINT = (
    "pass --sensor if the scene is another product than its name says, use a bundle "
    "trained on such data, or pass --allow-domain-shift to run anyway (it is recorded)"
)


@dataclass(frozen=True)
class InputPlan:
    """What predict will feed the bundle, and what it found on the way."""

    scene: Scene
    choice: BandChoice | None  # None: --bands chose
    preset: SensorPreset | None
    normalization: Mapping[str, Any]  # the bundle's, with a preset's conversion folded in
    warnings: tuple[str, ...] = ()
    refused_but_allowed: tuple[str, ...] = ()
    sample_pixels: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-ready, for the run record."""
        return {
            "bands": self.choice.record() if self.choice else {"how": "--bands"},
            "sensor": self.preset.describe() if self.preset else None,
            "domain_warnings": list(self.warnings),
            "domain_shift_allowed": list(self.refused_but_allowed),
        }


def bundle_domain(meta: Mapping[str, Any]) -> InputDomain | None:
    """The domain a bundle's metadata records (``None`` for bundles that record none)."""
    data = meta.get("domain")
    return InputDomain.from_dict(data) if isinstance(data, Mapping) else None


def plan_input(
    path: str | os.PathLike[str],
    bundle: Any,
    *,
    bands: Sequence[int | str] | None = None,
    sensor: str | None = None,
    allow_domain_shift: bool = False,
    allow_no_crs: bool = False,
) -> InputPlan:
    """Open ``path`` for ``bundle`` with the right bands, and check it against its domain.

    Raises
    ------
    SceneError
        Band roles unknown or missing, or ``--sensor`` contradicting the file.
    DomainError
        The scene lies far outside the bundle's domain (and ``allow_domain_shift`` is off).
    """
    text = os.fspath(path)
    domain = bundle_domain(bundle.meta)
    choice: BandChoice | None = None
    scene = open_scene(text, bands=bands, allow_no_crs=allow_no_crs)  # a readable raster?
    if bands is not None:
        preset = resolve_preset(FileBands.read(text), sensor)
    else:
        choice = choose_bands(
            FileBands.read(text),
            bundle.bands,
            sensor=sensor,
            bundle_sensors=domain.sensors if domain else (),
            bundle_name=bundle.name,
        )
        if choice.bands is not None:
            scene = open_scene(text, bands=list(choice.bands), allow_no_crs=allow_no_crs)
        preset = choice.preset
    spec = _normalization(bundle.meta["normalization"], domain, preset, scene)
    if domain is None:
        return InputPlan(scene, choice, preset, spec)
    sample = scene_sample(scene, SAMPLE_PIXELS)
    converted = _to_domain_units(sample, domain, preset, scene)
    lat = _center_lat(scene)
    check = check_scene(
        domain,
        sample=converted,
        resolution_m=pixel_size_m(scene.crs, scene.transform, lat),
        dtype=scene.dtype if converted is sample else None,
        compare_values=spec["type"] == "fixed",
    )
    if check.refuse and not allow_domain_shift:
        check.raise_if_refused(bundle.name, hint=SHIFT_HINT)
    return InputPlan(
        scene,
        choice,
        preset,
        spec,
        warnings=tuple(check.warn),
        refused_but_allowed=tuple(check.refuse),
        sample_pixels=int(sample.shape[1]),
    )


def match_bands(
    path: str,
    bundle: ModelBundle,
    bands: Sequence[int | str] | None = None,
    *,
    allow_no_crs: bool = False,
) -> Scene:
    """Open ``path`` with the bands ``bundle`` expects, by count or by band name.

    ``bands`` (``--bands``) must select as many bands as the bundle has inputs;
    without it, band names matching the bundle's are picked in its order, and a
    scene with exactly as many bands is taken as it is.

    Raises
    ------
    SceneError
        The band count does not match, with what to do (``--bands``, stacking
        single-band files, or an alpha band that is data).
    """
    want = bundle.bands
    if bands is not None:
        scene = open_scene(path, bands=bands, allow_no_crs=allow_no_crs)
        if len(scene.bands) != len(want):
            raise SceneError(
                f"--bands selects {len(scene.bands)} bands of {path} but bundle "
                f"'{bundle.name}' expects {len(want)} ({', '.join(want)})"
            )
        return scene
    scene = open_scene(path, allow_no_crs=allow_no_crs)
    names = [n.lower() for n in scene.band_names]
    if all(b.lower() in names for b in want):
        return open_scene(path, bands=list(want), allow_no_crs=allow_no_crs)
    if len(scene.bands) == len(want):
        return scene
    alpha = [i for i in range(1, scene.count + 1) if i not in scene.bands]
    if alpha and scene.count == len(want):
        raise SceneError(
            f"{path} has {scene.count} bands but band {alpha[0]} is marked as alpha "
            f"(transparency), leaving {len(scene.bands)} for a bundle that expects {len(want)} "
            f"({', '.join(want)}); if band {alpha[0]} is data, pass "
            f"--bands {','.join(str(i) for i in range(1, scene.count + 1))}"
        )
    hint = (
        "stack the band files into one scene first (gdalbuildvrt -separate scene.vrt "
        "b1.tif b2.tif ...)"
        if len(scene.bands) == 1 < len(want)
        else "pass --bands to select them"
    )
    raise SceneError(
        f"{path} has {len(scene.bands)} bands ({', '.join(scene.band_names)}) but bundle "
        f"'{bundle.name}' expects {len(want)} ({', '.join(want)}); {hint}"
    )


def open_for_predict(path: str, bundle: ModelBundle, opts: PredictOptions) -> Scene:
    """Open one scene and check everything about it that can be checked before inferring.

    Which band feeds which input, the units and the bundle's domain
    (:func:`geoseg.pipeline.check.plan_input`), the mask, the chip grid, and a CRS for
    polygons: a scene without one (``--allow-no-crs``) can give a class raster, but
    polygons need a CRS, which would otherwise fail only after the whole inference.
    """
    plan = plan_input(
        path,
        bundle,
        bands=opts.bands,
        sensor=opts.sensor,
        allow_domain_shift=opts.allow_domain_shift,
        allow_no_crs=opts.allow_no_crs,
    )
    if plan.choice is not None and plan.choice.bands is None:  # inputs are not band roles
        scene = match_bands(path, bundle, None, allow_no_crs=opts.allow_no_crs)
    else:
        scene = _check_band_count(plan.scene, bundle)
    notes = plan.warnings + tuple(
        f"outside the bundle's domain, run anyway (--allow-domain-shift): {r}"
        for r in plan.refused_but_allowed
    )
    mask = resolve_mask(opts.mask, path, opts.mask_classes) if opts.mask else None
    scene = dataclasses.replace(
        scene, sensor=plan.preset.name if plan.preset else None, notes=notes, mask=mask
    )
    if mask is not None and mask.kind == "model":  # the mask bundle must read it too
        mask_bundle = load_mask_bundle(mask.path)
        open_for_predict(path, mask_bundle, mask_options(opts, bundle, mask_bundle))
    elif mask is not None:
        check_mask(scene)
    chip, overlap = chip_overlap(opts, bundle)
    check_fixed_input(bundle, chip)  # a fixed-size ONNX model: refuse a larger --chip now
    ChipGrid(scene.shape, chip, overlap, pad=opts.pad)
    if scene.crs is None and opts.vector:
        raise SceneError(
            f"{path} has no CRS and polygons need one; pass --no-vector to write the class "
            "raster alone, or assign a CRS (gdal_edit.py -a_srs EPSG:xxxx)"
        )
    return scene


def _check_band_count(scene: Scene, bundle: ModelBundle) -> Scene:
    want = bundle.bands
    if len(scene.bands) != len(want):
        raise SceneError(
            f"--bands selects {len(scene.bands)} bands of {scene.path} but bundle "
            f"'{bundle.name}' expects {len(want)} ({', '.join(want)})"
        )
    return scene


def check_mask(scene: Scene) -> None:
    """A mask that removes every pixel leaves nothing to predict: say so before inferring."""
    assert scene.mask is not None
    share = scene.mask_source().masked_share()
    if share >= 1.0:
        raise SceneError(
            f"mask {scene.mask.path} removes every pixel of {scene.path} "
            f"({', '.join(scene.mask.classes)}); nothing to predict — check --mask-classes"
        )


def normalization_for(meta: Mapping[str, Any], scene: Scene) -> Mapping[str, Any]:
    """A bundle's normalization for a scene opened by :func:`plan_input` (``scene.sensor``)."""
    preset = get_preset(scene.sensor) if scene.sensor else None
    return _normalization(meta["normalization"], bundle_domain(meta), preset, scene)


def _normalization(
    spec: Mapping[str, Any],
    domain: InputDomain | None,
    preset: SensorPreset | None,
    scene: Scene,
) -> Mapping[str, Any]:
    """The bundle's spec; for a reflectance bundle with fixed stats, the preset's conversion."""
    if domain is None:
        return spec
    return domain.units_normalization(spec, preset, lambda p: scene_offset(p, scene), scene.path)


def scene_offset(preset: SensorPreset, scene: Scene) -> float:
    """The offset (as reflectance) of ``scene``'s values: its metadata's, else the preset's."""
    if not preset.name.startswith("sentinel2"):
        return preset.offset  # no file to read: only Sentinel-2 states it per product
    import rasterio

    with rasterio.open(scene.path) as ds:
        return preset_offset(preset, {**ds.tags(), **ds.tags(1)})


def _to_domain_units(
    sample: NDArray[np.float64],
    domain: InputDomain,
    preset: SensorPreset | None,
    scene: Scene,
) -> NDArray[np.float64]:
    if domain.quantity in REFLECTANCE and preset is not None:
        return sample * preset.scale + scene_offset(preset, scene)
    return sample


def _center_lat(scene: Scene) -> float | None:
    if scene.crs is None or not scene.crs.is_geographic:
        return None
    return float(scene.transform.f + scene.transform.e * scene.shape[0] / 2)


__all__ = [
    "DomainError",
    "InputPlan",
    "bundle_domain",
    "match_bands",
    "normalization_for",
    "open_for_predict",
    "plan_input",
    "scene_sample",
]
