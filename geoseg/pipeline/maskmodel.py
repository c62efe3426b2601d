"""``--mask NAME``: a mask bundle (such as the shipped ``cloud``) for scenes without a QA layer.

A *mask bundle* is a bundle whose classes are Fmask codes (0 clear, 1 water,
2 cloud shadow, 3 snow, 4 cloud; at least ``cloud``), so its class raster is an
Fmask raster. ``predict --mask cloud`` checks before anything runs that the mask
bundle can read the scene (its bands, units and domain, like any bundle), then
runs it first, into ``<out>/_masks/<scene>_classes.tif`` with its run record
beside it, and masks the scene's run with that raster as an ``fmask`` mask.
``--mask-classes`` picks which classes mask: cloud alone by default
(:data:`MODEL_DEFAULT_CLASSES`), ``cloud,shadow,snow`` for more.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from geoseg.errors import InputError
from geoseg.io.masks import MaskSpec, parse_classes
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.models.schema import BUNDLE_SUFFIX
from geoseg.models.shipped import shipped_bundles
from geoseg.pipeline.options import PredictOptions

FMASK_CODES = {0: "clear", 1: "water", 2: "shadow", 3: "snow", 4: "cloud"}
"""The class ids a mask bundle may have, with the names they must carry."""

MODEL_DEFAULT_CLASSES = ("cloud", "fill")
"""What a mask bundle masks unless ``--mask-classes`` says more: cloud only. The shipped
``cloud`` bundle's shadow class is not reliable enough to mask by default (it scored
0 IoU on the test dates' shadows and reads open sea as shadow; docs/models/cloud.md)."""

MASKS_FOLDER = "_masks"
"""Where a mask bundle's class raster and run record go, inside the output folder."""


def is_mask_bundle_ref(mask: str) -> bool:
    """Whether ``--mask`` names a bundle: a ``.bundle`` path or a shipped bundle's name.

    >>> is_mask_bundle_ref("cloud"), is_mask_bundle_ref("scene_QA_PIXEL.TIF")
    (True, False)
    """
    if mask.lower().endswith(BUNDLE_SUFFIX):
        return True
    return os.sep not in mask and "/" not in mask and mask in shipped_bundles()


def resolve_mask(
    mask: str, scene_path: str, classes: str | Sequence[str] | None = None
) -> MaskSpec:
    """``--mask PATH|auto|BUNDLE`` for a scene; a bundle gives a ``model`` spec."""
    if mask != "auto" and is_mask_bundle_ref(mask):
        picked = parse_classes(classes) if classes else MODEL_DEFAULT_CLASSES
        return MaskSpec(mask, "model", picked)
    return MaskSpec.resolve(mask, scene_path, classes)


def load_mask_bundle(ref: str) -> ModelBundle:
    """The mask bundle ``ref``, checked to speak Fmask codes.

    Raises
    ------
    InputError
        Its classes are not Fmask codes with those names, or it has no ``cloud``.
    """
    bundle = load_bundle(ref)
    wrong = [f"{c.id} {c.name}" for c in bundle.classes if FMASK_CODES.get(c.id) != c.name.lower()]
    if wrong or not any(c.id == 4 for c in bundle.classes):
        raise InputError(
            f"bundle '{bundle.name}' is not a mask bundle: --mask takes a bundle whose classes "
            "are Fmask codes (0 clear, 2 shadow, 3 snow, 4 cloud), such as the shipped "
            f"'cloud'; its classes are {', '.join(f'{c.id} {c.name}' for c in bundle.classes)}"
        )
    return bundle


def mask_options(
    opts: PredictOptions, main: ModelBundle, mask_bundle: ModelBundle
) -> PredictOptions:
    """The options of the mask bundle's run on a scene that ``opts`` predicts with ``main``.

    Same sensor, engine settings and domain policy; its own chip and overlap, no
    polygons, no confidence, no mask of its own. Where ``--bands`` told which file
    band feeds each of ``main``'s inputs, the mask bundle's inputs of the same names
    are read from the same file bands.
    """
    bands = None
    if opts.bands is not None and len(opts.bands) == len(main.bands):
        role = dict(zip((b.lower() for b in main.bands), opts.bands, strict=True))
        if all(b.lower() in role for b in mask_bundle.bands):
            bands = tuple(role[b.lower()] for b in mask_bundle.bands)
    return dataclasses.replace(
        opts,
        bands=bands,
        chip=None,
        overlap=None,
        confidence=False,
        vector=False,
        overwrite=True,
        mask=None,
        mask_classes=None,
    )
