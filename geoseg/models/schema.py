"""What a bundle's metadata is: its keys (:class:`BundleMeta`), shared checks, its hash.

A bundle's header holds one JSON object, :class:`BundleMeta`. The keys every
bundle has (``name``, ``kind``, ``bands``, ``classes``, ``normalization``,
``chip``, ``overlap``) are checked here, the same way for every kind; what
only one kind has (a torch ``architecture``, an ONNX ``input_size``, an
``index`` spec) is checked by that kind (:mod:`geoseg.models.kinds`). The
hash (:func:`digest`) covers the metadata and every tensor.

At run time the metadata stays a plain ``dict`` (it is JSON, and tools
written for older bundles index it freely); :class:`BundleMeta` is for the
type checker and for readers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Mapping
from typing import Any, Required, TypedDict

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError
from geoseg.io.normalize import validate_normalization
from geoseg.schemes import parse_classes

FORMAT = "geoseg-bundle"
FORMAT_VERSION = 1
ONNX_TENSOR = "onnx"
"""Name of the one ``uint8`` tensor that holds an ONNX bundle's model bytes."""
BUNDLE_SUFFIX = ".bundle"

MAX_CHIP = 4096
"""Largest chip a bundle may ask for: a 4096² chip of 16 classes is already 1 GiB of scores."""

MAX_LABEL = 200
"""Longest bundle or band name (they are printed in messages and records)."""

ONNX_KEYS = ("input_size", "output", "layout")
"""Keys that describe an ONNX model made by another tool; no other kind may carry them."""


class ThresholdSpec(TypedDict, total=False):
    """An index bundle's threshold: ``{mode: fixed, value}`` or ``{mode: otsu, bins}``.

    A threshold resolved from Otsu on a scene is ``fixed`` and says where it came
    from in ``otsu`` (scene, valid pixels, bins, the hash of the Otsu bundle).
    """

    mode: Required[str]
    value: float
    bins: int
    otsu: dict[str, Any]


class IndexSpec(TypedDict):
    """An index bundle's ``index`` metadata: the whole model."""

    name: str
    threshold: ThresholdSpec
    steepness: float


class BundleMeta(TypedDict, total=False):
    """The metadata of a bundle, as in its header (see ``docs/bundles.md``).

    Every key is checked on create and on load; the required ones are in every
    bundle, the others only when they apply (``architecture`` for torch,
    ``input_size``/``output``/``layout`` for some ONNX models, ``index`` for
    index bundles, ``domain`` once recorded by training, ``sha256`` once hashed).
    """

    format: Required[str]
    format_version: int
    name: Required[str]
    description: str
    kind: Required[str]  # torch, onnx or index: geoseg.models.kinds.KINDS
    architecture: str | None
    encoder: str | None
    arch_params: dict[str, Any]
    bands: Required[list[str]]
    input_units: str
    normalization: Required[dict[str, Any]]  # as geoseg.io.normalize checks it
    classes: Required[list[dict[str, Any]]]  # {id, name, color}, in model output order
    chip: Required[int]
    overlap: Required[int]
    resolution_m: float | None
    provenance: dict[str, Any]
    card: str
    input_size: list[int]  # [rows, cols]
    output: str  # logits or probs
    layout: str  # NCHW or NHWC
    index: IndexSpec
    domain: dict[str, Any]  # what the model was trained on: geoseg.sensors.domain
    sha256: str


def digest(meta: Mapping[str, Any], tensors: Mapping[str, NDArray[Any]]) -> str:
    """SHA-256 over the metadata (all but ``sha256``) and every tensor's name, type and bytes.

    Examples
    --------
    >>> digest({"name": "a"}, {}) == digest({"name": "a", "sha256": "x"}, {})
    True
    >>> digest({"name": "a"}, {}) == digest({"name": "a"}, {"w": np.zeros(1)})
    False
    """
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def whole(value: Any, key: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``, else a :class:`BundleError` naming ``key``.

    Examples
    --------
    >>> whole(256.0, "chip", 1, MAX_CHIP)
    256
    """
    is_whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not is_whole:
        raise BundleError(f"bundle '{key}' must be a whole number of pixels, got {value!r}")
    if not lo <= value <= hi:
        shown = f"{value:.3g}" if isinstance(value, float) else f"{value}"[:20]
        raise BundleError(f"bundle '{key}' is {shown} pixels; it must be in {lo}..{hi}")
    return int(value)


def is_label(text: Any) -> bool:
    """A name printed in messages and records: no newline or terminal escape can hide in it.

    Examples
    --------
    >>> is_label("water"), is_label("evil\\x1b[2J"), is_label("")
    (True, False, False)
    """
    return isinstance(text, str) and 0 < len(text) <= MAX_LABEL and text.isprintable()


def check_normalization(spec: Any, n_bands: int) -> dict[str, Any]:
    """Validated normalization whose every number is finite (NaN passes ``std <= 0``)."""
    if not isinstance(spec, Mapping):
        raise BundleError(
            "bundle 'normalization' must be a mapping, e.g. {type: percentile, low: 2, high: 98}"
        )
    try:
        out = validate_normalization(spec, n_bands)
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, BundleError):
            raise
        raise BundleError(
            f"bundle 'normalization' has a value that is not a number: {err}"
        ) from err
    for key, value in out.items():
        values = value if isinstance(value, list) else [value]
        if isinstance(value, bool | str) or not all(isinstance(v, float) for v in values):
            continue
        if not all(math.isfinite(v) for v in values):
            raise BundleError(f"normalization '{key}' must be finite numbers, got {value}")
    if any(s <= 0 for s in out.get("std", [])) or out.get("scale", 1.0) == 0:
        raise BundleError(
            f"normalization std must be positive and scale non-zero, got std {out.get('std')}, "
            f"scale {out.get('scale', 1.0)}"
        )
    return out


def check_no_onnx_keys(meta: Mapping[str, Any]) -> None:
    """Refuse the ONNX-only keys (:data:`ONNX_KEYS`) in a bundle of another kind."""
    keys = [k for k in ONNX_KEYS if k in meta]
    if keys and meta["kind"] != "onnx":
        raise BundleError(f"bundle keys {', '.join(keys)} apply to ONNX bundles only")


def _check_header(meta: Any, kinds: Collection[str]) -> dict[str, Any]:
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
        raise BundleError("not a geoseg bundle (metadata 'format' missing)")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"bundle 'format_version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"bundle format {version} is newer than this geoseg "
            f"understands ({FORMAT_VERSION}); upgrade geoseg"
        )
    out = dict(meta)
    for key in ("name", "kind", "bands", "classes", "normalization", "chip", "overlap"):
        if key not in out:
            raise BundleError(f"bundle metadata lacks '{key}'")
    if not is_label(out["name"]):
        raise BundleError(
            f"bundle 'name' must be printable text of at most {MAX_LABEL} characters, "
            f"got {out['name']!r}"
        )
    if out["kind"] not in kinds:
        raise BundleError(f"bundle kind must be one of {', '.join(kinds)}, got {out['kind']!r}")
    return out


def check_common(meta: Any, kinds: Collection[str]) -> dict[str, Any]:
    """A copy of ``meta`` with the keys every kind shares checked and cleaned.

    ``kinds`` are the kind names a bundle may have. Key order is kept: a
    bundle's JSON, and so its bytes, do not change by being checked.

    Raises
    ------
    BundleError
        Not a geoseg bundle, a newer format, or a shared key missing or invalid.
    """
    out = _check_header(meta, kinds)
    bands = out["bands"]
    if not isinstance(bands, list) or not bands or not all(is_label(b) for b in bands):
        raise BundleError("bundle 'bands' must be a non-empty list of band names")
    out["normalization"] = check_normalization(out["normalization"], len(bands))
    if not isinstance(out["classes"], list):
        raise BundleError("bundle 'classes' must be a list of {id, name, color}")
    parse_classes(out["classes"])
    out["chip"] = whole(out["chip"], "chip", 1, MAX_CHIP)
    out["overlap"] = whole(out["overlap"], "overlap", 0, MAX_CHIP)
    if out["overlap"] >= out["chip"]:
        raise BundleError(
            f"bundle chip {out['chip']} / overlap {out['overlap']} are not a valid chip grid: "
            "overlap must be smaller than chip"
        )
    resolution = out.get("resolution_m")
    if resolution is not None and not (
        isinstance(resolution, int | float) and math.isfinite(resolution) and resolution > 0
    ):
        raise BundleError(f"bundle 'resolution_m' must be a positive number, got {resolution!r}")
    if not isinstance(out.get("arch_params") or {}, Mapping):
        raise BundleError("bundle 'arch_params' must be a mapping")
    return out
