"""The metadata file of ``geoseg bundle create``: read it, check it, fill in defaults.

A user describes a model in a small YAML or JSON file (see ``docs/bundles.md``
and ``geoseg bundle template``). Two spellings are accepted for normalization:
the bundle's own ``normalization:`` mapping, or the flat ``mean``/``std``
(``scale``, ``offset``) that other tools write, which means fixed normalization.
Classes may be full entries (``id``, ``name``, ``color``), a list of names (ids
from 0, colors from a palette), a mapping ``id: name``, or a catalog ``scheme``.

Every missing or malformed key is one :class:`~geoseg.errors.InputError` that
names the key and shows a line that would be right.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geoseg.errors import InputError

EXAMPLES: dict[str, str] = {
    "name": "name: my-water-model",
    "description": "description: water from Sentinel-2 L2A, 10 m",
    "bands": "bands: [blue, green, red, nir]",
    "classes": (
        "classes: [{id: 0, name: land, color: '#a6a6a6'}, {id: 1, name: water, "
        "color: '#1f78b4'}] (or just [land, water])"
    ),
    "scheme": "scheme: water (a catalog name, or a class-scheme .yaml file)",
    "normalization": (
        "normalization: {type: fixed, mean: [0.1, 0.1, 0.1, 0.2], std: [0.05, 0.05, 0.05, 0.1]}"
        " (or {type: percentile, low: 2, high: 98})"
    ),
    "mean": "mean: [0.1, 0.1, 0.1, 0.2] (one number per band, with std)",
    "std": "std: [0.05, 0.05, 0.05, 0.1] (one positive number per band, with mean)",
    "scale": "scale: 0.0001 (raw values are multiplied by it before mean/std)",
    "offset": "offset: 0 (added after scale, before mean/std)",
    "chip": "chip: 256 (pixels, the model's input size)",
    "overlap": "overlap: 32 (pixels shared by neighbouring chips, less than chip)",
    "resolution_m": "resolution_m: 10",
    "input_units": "input_units: reflectance",
    "card": "card: '# My model\\nTrained on …'",
    "provenance": "provenance: {trained_by: me, data: my-labels-v2}",
    "architecture": "architecture: Unet (with --weights; or pass --arch)",
    "encoder": "encoder: resnet18",
    "arch_params": "arch_params: {encoder_depth: 4}",
    "input_size": "input_size: 256 (or [rows, cols]: an ONNX model's fixed input)",
    "output": "output: logits (or probs, when the ONNX model ends in a softmax)",
    "layout": "layout: NCHW (or NHWC: the ONNX model takes (n, rows, cols, bands))",
}
_DERIVED = ("format", "format_version", "kind", "sha256")  # `bundle info --json` output
_FLAT_NORMALIZATION = ("mean", "std", "scale", "offset")
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
)  # fmt: skip


def read_metadata(path: str) -> dict[str, Any]:
    """The mapping in a JSON (``.json``) or YAML metadata file.

    Raises
    ------
    InputError
        Missing file, unparsable text, or not a mapping.
    """
    import yaml

    from geoseg.yamlsafe import safe_load

    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"metadata file {path} does not exist; start from `geoseg bundle template`"
        )
    try:
        text = p.read_text(encoding="utf-8")
        # bounded aliases and depth: a metadata file can be hostile (geoseg.yamlspec)
        doc = (
            json.loads(text)
            if p.suffix == ".json"
            else safe_load(text, f"cannot parse metadata {path}")
        )
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).replace("\n", " ")
        raise InputError(f"cannot parse metadata file {path}: {first}") from err
    if not isinstance(doc, dict):
        raise InputError(
            f"metadata file {path} must hold a mapping such as: {EXAMPLES['bands']}; "
            "see `geoseg bundle template`"
        )
    return {k: v for k, v in doc.items() if v is not None}  # `key: null` means not given


def _bad(key: str, problem: str) -> InputError:
    return InputError(f"metadata '{key}' {problem}; e.g. {EXAMPLES[key]}")


def _finite(v: Any) -> bool:
    """A real number a float can hold (YAML ``.nan``, ``.inf`` and 400-digit ints are not)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return math.isfinite(v) if isinstance(v, float) else abs(v) < 10**300


def _numbers(doc: Mapping[str, Any], key: str, n: int) -> list[float]:
    vals = doc[key]
    ok = isinstance(vals, list) and all(_finite(v) for v in vals)
    if not ok or len(vals) != n:
        raise _bad(key, f"needs {n} finite numbers (one per band), got {vals!r}")
    return [float(v) for v in vals]


def _number(doc: Mapping[str, Any], key: str) -> float:
    v = doc[key]
    if not _finite(v):
        raise _bad(key, f"must be a finite number, got {v!r}")
    return float(v)


def _bands(doc: Mapping[str, Any]) -> list[str]:
    if "bands" not in doc:
        raise _bad("bands", "is missing: list the input bands in the model's order")
    bands = doc["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) and b for b in bands):
        raise _bad("bands", f"must be a list of band names, got {bands!r}")
    return bands


def _normalization(doc: Mapping[str, Any], n: int) -> dict[str, Any]:
    flat = [k for k in _FLAT_NORMALIZATION if k in doc]
    if "normalization" in doc:
        if flat:
            raise _bad("normalization", f"is given twice (also as {', '.join(flat)}): keep one")
        norm = doc["normalization"]
        if not isinstance(norm, Mapping) or norm.get("type") not in ("fixed", "percentile"):
            raise _bad(
                "normalization", f"must be a mapping with type fixed or percentile, got {norm!r}"
            )
        for key in ("mean", "std"):
            if key in norm:
                _numbers(norm, key, n)
        return dict(norm)
    if not flat:
        raise _bad("normalization", "is missing (or give mean and std)")
    for key in ("mean", "std"):
        if key not in doc:
            raise _bad(key, "is missing: fixed normalization needs both mean and std")
    out: dict[str, Any] = {"type": "fixed", "mean": _numbers(doc, "mean", n)}
    out["std"] = _numbers(doc, "std", n)
    if any(s <= 0 for s in out["std"]):
        raise _bad("std", f"must be positive, got {out['std']}")
    for key in ("scale", "offset"):
        if key in doc:
            out[key] = _number(doc, key)
    if out.get("scale") == 0:
        raise _bad("scale", "must not be 0 (every pixel would look the same)")
    return out


def _classes(doc: Mapping[str, Any]) -> Any:
    from geoseg.schemes import load_scheme, parse_classes

    if "classes" in doc and "scheme" in doc:
        raise _bad("classes", "and 'scheme' are both given: keep one")
    if "scheme" in doc:
        if not isinstance(doc["scheme"], str):
            raise _bad("scheme", f"must be a name or a path, got {doc['scheme']!r}")
        return load_scheme(doc["scheme"])
    if "classes" not in doc:
        raise _bad("classes", "is missing (or give a 'scheme')")
    classes = doc["classes"]
    if isinstance(classes, Mapping):  # {0: land, 1: water}, as id2label maps are written
        try:
            pairs = sorted((int(k), v) for k, v in classes.items())
        except (TypeError, ValueError) as err:
            raise _bad("classes", f"as a mapping must map ids to names, got {classes!r}") from err
        return [_entry(i, v) for i, v in pairs]
    if isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes):
        return [_entry(i, name) for i, name in enumerate(classes)]
    if not isinstance(classes, list) or not all(isinstance(c, Mapping) for c in classes):
        raise _bad("classes", f"must be a list of {{id, name, color}} or of names, got {classes!r}")
    try:
        return [c.to_dict() for c in parse_classes(classes)]
    except InputError as err:
        raise _bad("classes", f"is malformed: {err}") from err


def _entry(i: int, name: Any) -> dict[str, Any]:
    if not isinstance(name, str):
        raise _bad("classes", f"names must be text, got {name!r}")
    return {"id": i, "name": name, "color": _PALETTE[i % len(_PALETTE)]}


def _check_keys(doc: Mapping[str, Any]) -> None:
    known = {*EXAMPLES, *_DERIVED}
    for key in doc:
        if key not in known:
            near = difflib.get_close_matches(str(key), list(EXAMPLES), n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise InputError(
                f"metadata key '{key}' is not known; {hint}see `geoseg bundle template` "
                "for every key"
            )


def _whole(doc: Mapping[str, Any], key: str) -> int | list[int]:
    v = doc[key]
    items = v if key == "input_size" and isinstance(v, list) else [v]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < (key != "overlap"):
            raise _bad(key, f"must be a whole number of pixels, got {v!r}")
    return v if isinstance(v, list) else int(v)


def bundle_arguments(doc: Mapping[str, Any], *, out: Path, onnx: bool) -> dict[str, Any]:
    """Keyword arguments for :meth:`ModelBundle.create` from a user's metadata.

    ``name`` defaults to the stem of ``out``. ``input_size``, ``output`` and
    ``layout`` are for ONNX models only.

    Raises
    ------
    InputError
        A key is unknown, missing or malformed; the message shows a valid line.
    """
    doc = {k: v for k, v in doc.items() if v is not None}  # `key: null` means not given
    _check_keys(doc)
    bands = _bands(doc)
    args: dict[str, Any] = {
        "name": doc.get("name", out.stem),
        "bands": bands,
        "classes": _classes(doc),
        "normalization": _normalization(doc, len(bands)),
    }
    if not isinstance(args["name"], str) or not args["name"].strip():
        raise _bad("name", f"must be text, got {args['name']!r}")
    for key in ("chip", "overlap", "input_size"):
        if key in doc:
            args[key] = _whole(doc, key)
    size = args.get("input_size")
    if "chip" not in args and size is not None:  # a fixed-size model: chips of its size
        args["chip"] = size if isinstance(size, int) else min(size)
    if "overlap" not in args and "chip" in args:
        args["overlap"] = min(64, args["chip"] // 8)
    for key in ("description", "card", "input_units", "encoder", "architecture"):
        if key in doc and not isinstance(doc[key], str):
            raise _bad(key, f"must be text, got {doc[key]!r}")
    for key in ("provenance", "arch_params"):
        if key in doc and not isinstance(doc[key], Mapping):
            raise _bad(key, f"must be a mapping, got {doc[key]!r}")
    if "resolution_m" in doc and (_number(doc, "resolution_m") <= 0):
        raise _bad("resolution_m", "must be positive")
    onnx_keys = [k for k in ("input_size", "output", "layout") if k in doc]
    if onnx_keys and not onnx:
        raise _bad(onnx_keys[0], "describes an ONNX model; use it with --onnx")
    for key in ("output", "layout"):
        choices = ("logits", "probs") if key == "output" else ("NCHW", "NHWC")
        if key in doc and doc[key] not in choices:
            raise _bad(key, f"must be {' or '.join(choices)}, got {doc[key]!r}")
    passed = ("description", "card", "input_units", "provenance", "arch_params", "resolution_m")
    args.update({k: doc[k] for k in (*passed, "output", "layout") if k in doc})
    return args


TEMPLATE = """\
# geoseg bundle metadata: describe your model, then
#   geoseg bundle create --onnx model.onnx --metadata meta.yaml -o model.bundle
# (or --arch Unet --encoder resnet18 --weights state.safetensors for a torch model).
# Full reference: docs/bundles.md. Keys marked (required) must be there.

name: my-model                 # shown in outputs and run records [the -o file's stem]
description: what it maps, from which sensor, at what resolution

# (required) input bands, in the order the model expects them. Scenes whose band
# descriptions carry these names are matched by name; otherwise by position.
bands: [blue, green, red, nir]

# (required) classes in the model's output order: id (0..254), name, color.
# Also accepted: classes: [land, water]  (ids from 0, palette colors),
# or scheme: water  (a catalog of geoseg, or a class-scheme .yaml file).
classes:
  - {id: 0, name: land, color: "#a6a6a6"}
  - {id: 1, name: water, color: "#1f78b4"}

# (required) how raw pixels become model input, exactly as in training:
#   fixed:      (x * scale + offset - mean) / std, per band
#   percentile: per scene and band, stretch low..high percentiles to 0..1
# The flat form (mean: [...] and std: [...] at the top level, with optional scale
# and offset) means fixed normalization too.
normalization:
  type: fixed
  mean: [0.0, 0.0, 0.0, 0.0]
  std: [1.0, 1.0, 1.0, 1.0]
  scale: 1.0
  offset: 0.0
# normalization: {type: percentile, low: 2, high: 98}

chip: 256                      # model input size in pixels (1..4096)
overlap: 32                    # pixels shared by neighbouring chips (less than chip)
resolution_m: 10               # pixel size the model was trained at (informative)
input_units: reflectance       # informative

# ONNX models made by other tools (leave out what does not apply):
# input_size: 256              # fixed input [rows, cols]; smaller chips are zero-padded
# output: logits               # or probs: the model already ends in a softmax
# layout: NCHW                 # or NHWC: input (n, rows, cols, bands), output likewise

card: |
  # My model
  Trained on ..., evaluated on ..., known limits ...
"""
"""A commented metadata file to start from (``geoseg bundle template``)."""
