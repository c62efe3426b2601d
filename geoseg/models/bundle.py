"""Model bundles: one self-describing file, weights plus metadata, never pickle.

A bundle is a `safetensors <https://huggingface.co/docs/safetensors>`_ file. Its
header's ``__metadata__["geoseg"]`` holds JSON metadata (architecture, encoder,
input bands, normalization, class scheme, chip size, resolution, provenance,
model card); its tensors are the model weights, or, for an ONNX bundle, the
ONNX bytes as one ``uint8`` tensor named ``onnx``. A bundle of kind ``index``
(a spectral-index baseline, see :mod:`geoseg.models.indices`) has no tensors: its
``index`` metadata is the whole model. The metadata carries a
SHA-256 over itself and every tensor, checked on load, so a corrupted or
edited bundle is refused instead of producing silent garbage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError
from geoseg.io.normalize import validate_normalization
from geoseg.schemes import ClassInfo, parse_classes

log = logging.getLogger(__name__)

FORMAT = "geoseg-bundle"
FORMAT_VERSION = 1
ONNX_TENSOR = "onnx"
KINDS = ("torch", "onnx", "index")
BUNDLE_SUFFIX = ".bundle"


def shipped_bundles() -> dict[str, Path]:
    """Bundles shipped inside the package, by name."""
    root = resources.files("geoseg") / "bundles"
    return {
        Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(BUNDLE_SUFFIX)
    }


def _digest(meta: Mapping[str, Any], tensors: Mapping[str, NDArray[Any]]) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


MAX_CHIP = 4096
"""Largest chip a bundle may ask for: a 4096² chip of 16 classes is already 1 GiB of scores."""

ONNX_OUTPUTS = ("logits", "probs")
ONNX_LAYOUTS = ("NCHW", "NHWC")


def _whole(value: Any, key: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``, else a :class:`BundleError` naming ``key``."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise BundleError(f"bundle '{key}' must be a whole number of pixels, got {value!r}")
    if not lo <= value <= hi:
        shown = f"{value:.3g}" if isinstance(value, float) else f"{value}"[:20]
        raise BundleError(f"bundle '{key}' is {shown} pixels; it must be in {lo}..{hi}")
    return int(value)


def _check_normalization(spec: Any, n_bands: int) -> dict[str, Any]:
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


def _check_onnx_io(out: dict[str, Any]) -> None:
    """Optional ONNX input/output conventions (present only when set, so old hashes hold)."""
    keys = [k for k in ("input_size", "output", "layout") if k in out]
    if keys and out["kind"] != "onnx":
        raise BundleError(f"bundle keys {', '.join(keys)} apply to ONNX bundles only")
    if "input_size" in out:
        size = out["input_size"]
        pair = size if isinstance(size, list) and len(size) == 2 else None
        if pair is None:
            raise BundleError(f"bundle 'input_size' must be [rows, cols], got {size!r}")
        rows, cols = (_whole(v, "input_size", 1, MAX_CHIP) for v in pair)
        if out["chip"] > min(rows, cols):
            raise BundleError(
                f"bundle chip {out['chip']} is larger than the model's fixed input "
                f"{rows}x{cols}; set chip to at most {min(rows, cols)}"
            )
        out["input_size"] = [rows, cols]
    if out.get("output", "logits") not in ONNX_OUTPUTS:
        raise BundleError(f"bundle 'output' must be logits or probs, got {out['output']!r}")
    if out.get("layout", "NCHW") not in ONNX_LAYOUTS:
        raise BundleError(f"bundle 'layout' must be NCHW or NHWC, got {out['layout']!r}")


MAX_LABEL = 200


def _label(text: Any) -> bool:
    """A name printed in messages and records: no newline or terminal escape can hide in it."""
    return isinstance(text, str) and 0 < len(text) <= MAX_LABEL and text.isprintable()


def _check_header(meta: Any) -> dict[str, Any]:
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
    if not _label(out["name"]):
        raise BundleError(
            f"bundle 'name' must be printable text of at most {MAX_LABEL} characters, "
            f"got {out['name']!r}"
        )
    if out["kind"] not in KINDS:
        raise BundleError(f"bundle kind must be one of {', '.join(KINDS)}, got {out['kind']!r}")
    return out


def _validate_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = _check_header(meta)
    bands = out["bands"]
    if not isinstance(bands, list) or not bands or not all(_label(b) for b in bands):
        raise BundleError("bundle 'bands' must be a non-empty list of band names")
    out["normalization"] = _check_normalization(out["normalization"], len(bands))
    if not isinstance(out["classes"], list):
        raise BundleError("bundle 'classes' must be a list of {id, name, color}")
    parse_classes(out["classes"])
    out["chip"] = _whole(out["chip"], "chip", 1, MAX_CHIP)
    out["overlap"] = _whole(out["overlap"], "overlap", 0, MAX_CHIP)
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
    if out["kind"] == "torch" and not isinstance(out.get("architecture"), str):
        raise BundleError("a torch bundle needs an 'architecture'")
    if out["kind"] == "torch":
        from geoseg.models.arch import check_arch_params

        check_arch_params(out["architecture"], out.get("arch_params") or {})
    _check_onnx_io(out)
    if out["kind"] == "index":
        from geoseg.models.indices import validate_index_meta

        out["index"] = validate_index_meta(out)
    return out


def finish_meta(meta: Mapping[str, Any], tensors: Mapping[str, NDArray[Any]]) -> dict[str, Any]:
    """Validated metadata with its ``sha256`` over itself and ``tensors``."""
    out = _validate_meta(meta)
    out["sha256"] = _digest(out, tensors)
    return out


@dataclass(frozen=True)
class ModelBundle:
    """A model and everything needed to run it on a scene.

    Create one with :meth:`create`, write it with :meth:`save`, read one with
    :func:`load_bundle`.
    """

    meta: dict[str, Any]
    tensors: dict[str, NDArray[Any]] = field(repr=False)

    # -- metadata views -------------------------------------------------
    @property
    def name(self) -> str:
        """Bundle name."""
        return str(self.meta["name"])

    @property
    def kind(self) -> str:
        """``torch``, ``onnx`` or ``index``."""
        return str(self.meta["kind"])

    @property
    def bands(self) -> tuple[str, ...]:
        """Input band names, in model order."""
        return tuple(self.meta["bands"])

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        """Class scheme, in model output order."""
        return parse_classes(self.meta["classes"])

    @property
    def sha256(self) -> str:
        """Content hash over metadata and weights."""
        return str(self.meta.get("sha256") or _digest(self.meta, self.tensors))

    @property
    def chip(self) -> int:
        """Preferred chip size."""
        return int(self.meta["chip"])

    @property
    def overlap(self) -> int:
        """Preferred overlap."""
        return int(self.meta["overlap"])

    # -- construction ----------------------------------------------------
    @classmethod
    def create(
        cls,
        *,
        name: str,
        bands: Sequence[str],
        classes: Sequence[ClassInfo | Mapping[str, Any]],
        normalization: Mapping[str, Any],
        model: Any = None,
        architecture: str | None = None,
        encoder: str | None = None,
        arch_params: Mapping[str, Any] | None = None,
        state_dict: Mapping[str, Any] | None = None,
        onnx: bytes | None = None,
        chip: int = 512,
        overlap: int = 64,
        resolution_m: float | None = None,
        input_units: str = "",
        description: str = "",
        card: str = "",
        provenance: Mapping[str, Any] | None = None,
        input_size: int | Sequence[int] | None = None,
        output: str | None = None,
        layout: str | None = None,
    ) -> ModelBundle:
        """Create a bundle from a torch model/state dict or ONNX bytes.

        Exactly one of ``model``/``state_dict`` (with ``architecture``) or
        ``onnx`` is given. With neither, a torch bundle with freshly initialized
        weights is created (useful for tests and benchmarks).

        ``input_size`` (``[rows, cols]``, or one number for a square), ``output``
        (``logits`` or ``probs``) and ``layout`` (``NCHW`` or ``NHWC``) describe an
        ONNX model made by another tool: a model with a fixed input size gets its
        chips padded to that size, ``probs`` are not passed through a softmax
        again, and ``NHWC`` input and output are transposed. Each is stored only
        when given.

        Examples
        --------
        >>> b = ModelBundle.create(name="demo", architecture="Pointwise",
        ...     bands=["red", "nir"], classes=[{"id": 0, "name": "land", "color": "#aa8844"},
        ...     {"id": 1, "name": "water", "color": "#1f78b4"}],
        ...     normalization={"type": "percentile"})
        >>> b.kind, b.bands
        ('torch', ('red', 'nir'))
        """
        infos = parse_classes(c.to_dict() if isinstance(c, ClassInfo) else c for c in classes)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "kind": "onnx" if onnx is not None else "torch",
            "architecture": architecture,
            "encoder": encoder,
            "arch_params": dict(arch_params or {}),
            "bands": bands if isinstance(bands, str) else list(bands),
            "input_units": input_units,
            "normalization": (
                dict(normalization) if isinstance(normalization, Mapping) else normalization
            ),
            "classes": [c.to_dict() for c in infos],
            "chip": chip,
            "overlap": overlap,
            "resolution_m": resolution_m,
            "provenance": dict(provenance or {}),
            "card": card,
        }
        if input_size is not None:
            meta["input_size"] = (
                [input_size, input_size] if isinstance(input_size, int) else list(input_size)
            )
        meta.update({k: v for k, v in (("output", output), ("layout", layout)) if v is not None})
        meta = _validate_meta(meta)
        tensors: dict[str, NDArray[Any]]
        if onnx is not None:
            tensors = {ONNX_TENSOR: np.frombuffer(onnx, dtype=np.uint8).copy()}
        else:
            from geoseg.models.arch import build_model

            if model is None:
                model = build_model(
                    str(architecture),
                    encoder=encoder,
                    in_channels=len(bands),
                    classes=len(infos),
                    params=arch_params,
                )
                if state_dict is not None:
                    _load_state(model, state_dict, name)
            tensors = {
                k: v.detach().cpu().contiguous().numpy().copy()
                for k, v in model.state_dict().items()
            }
        meta["sha256"] = _digest(meta, tensors)
        bundle = cls(meta=meta, tensors=tensors)
        if onnx is not None:
            from geoseg.models.predictor import check_onnx_bundle

            fixed = check_onnx_bundle(bundle)
            if fixed is not None and "input_size" not in meta:  # recorded: predict checks --chip
                bundle = bundle.with_meta(input_size=list(fixed))
        return bundle

    def with_meta(self, **changes: Any) -> ModelBundle:
        """A copy with metadata fields replaced (hash recomputed)."""
        meta = _validate_meta({**self.meta, **changes})
        meta["sha256"] = _digest(meta, self.tensors)
        return ModelBundle(meta=meta, tensors=self.tensors)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bundle atomically (temporary name, then rename); makes its folder.

        Raises
        ------
        OutputError
            The file or its folder cannot be written (permissions, disk full).
        """
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        from geoseg.atomic import atomic_path
        from geoseg.io.writer import output_error
        from geoseg.outfile import make_parent

        path = Path(path)
        make_parent(path)
        try:
            with atomic_path(path) as tmp:
                save_file(self.tensors, str(tmp), metadata={"geoseg": json.dumps(self.meta)})
        except (OSError, SafetensorError) as err:
            raise output_error(path, err) from err
        return path

    def build_model(self) -> Any:
        """The torch model with its weights loaded (eval mode, CPU)."""
        if self.kind != "torch":
            raise BundleError(f"bundle '{self.name}' is of kind {self.kind}, not a torch model")
        from geoseg.models.arch import build_model

        model = build_model(
            self.meta["architecture"],
            encoder=self.meta.get("encoder"),
            in_channels=len(self.bands),
            classes=len(self.classes),
            params=self.meta.get("arch_params"),
        )
        _load_state(model, self.tensors, self.name)
        return model

    def card_text(self) -> str:
        """A human-readable summary plus the model card."""
        m = self.meta
        detail = ""
        if m["kind"] == "torch":
            detail = f": {m.get('architecture')} / {m.get('encoder')}"
        elif m["kind"] == "index":
            from geoseg.models.indices import threshold_text

            detail = f": {threshold_text(m['index'])}"
        lines = [
            f"bundle      {m['name']}  ({m['kind']}{detail})",
            f"sha256      {self.sha256}",
            f"bands       {', '.join(self.bands)}"
            + (f"  [{m['input_units']}]" if m.get("input_units") else ""),
            f"normalize   {json.dumps(m['normalization'])}",
            f"chip        {m['chip']} px, overlap {m['overlap']} px"
            + (f", trained at {m['resolution_m']} m" if m.get("resolution_m") else ""),
            "classes     " + ", ".join(f"{c.id}={c.name}" for c in self.classes),
        ]
        if isinstance(m.get("domain"), Mapping):
            lines.append(f"domain      {_domain_text(m['domain'])}")
        if m.get("description"):
            lines.append(f"about       {m['description']}")
        if m.get("card"):
            lines += ["", str(m["card"]).rstrip()]
        # a card is someone else's text: terminal escapes in it must not reach the terminal
        return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in "\n".join(lines))


def _domain_text(d: Mapping[str, Any]) -> str:
    """One line of what a bundle was trained on (its recorded input domain)."""
    parts = [str(d.get("quantity", "unknown"))]
    if d.get("dtype"):
        parts.append(str(d["dtype"]))
    if d.get("sensors"):
        parts.append("sensors " + ", ".join(map(str, d["sensors"])))
    if d.get("resolution_m"):
        lo, hi = d["resolution_m"]
        parts.append(f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m")
    if d.get("p01") and d.get("p99"):
        ranges = zip(d.get("bands", []), d["p01"], d["p99"], strict=False)
        parts.append("1st-99th pct " + ", ".join(f"{b} {lo:g}-{hi:g}" for b, lo, hi in ranges))
    return "; ".join(parts)


def _load_state(model: Any, tensors: Mapping[str, Any], name: str) -> None:
    import torch

    state = {k: torch.as_tensor(np.asarray(v)) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BundleError(
            f"weights of bundle '{name}' do not fit its architecture: {str(err).splitlines()[0]}"
        ) from err


def _looks_like_path(text: str) -> bool:
    seps = {os.sep, os.altsep or os.sep, "/"}
    return any(sep in text for sep in seps) or text.lower().endswith((BUNDLE_SUFFIX, ".onnx"))


def resolve_bundle_path(path_or_name: str | os.PathLike[str]) -> Path:
    """The file a bundle argument means: a shipped name wins unless it looks like a path.

    A plain word (``water``) is the shipped bundle of that name, even when the
    working folder happens to hold a file or folder called ``water``; write
    ``./water`` for that one. Anything with a path separator or a ``.bundle``
    suffix is a path.

    Raises
    ------
    BundleError
        No such file and no shipped bundle of that name, or the path is a folder
        or an ONNX model.
    """
    text = os.fspath(path_or_name)
    shipped = shipped_bundles()
    if not isinstance(path_or_name, Path) and not _looks_like_path(text) and text in shipped:
        if Path(text).exists():
            log.warning(
                "'%s' is the shipped bundle of that name; write ./%s for the %s in this folder",
                text,
                text,
                "folder" if Path(text).is_dir() else "file",
            )
        return shipped[text]
    path = Path(text)
    if path.is_dir():
        raise BundleError(f"{text} is a folder, not a bundle file; pass the .bundle file")
    if path.suffix.lower() == ".onnx" and path.exists():
        raise BundleError(
            f"{text} is an ONNX model, not a bundle; wrap it first: "
            f"geoseg bundle create --onnx {text} --metadata meta.yaml -o model.bundle"
        )
    if not path.exists():
        raise BundleError(
            f"no bundle file '{text}' and no shipped bundle of that name; shipped: "
            f"{', '.join(sorted(shipped)) or 'none'}"
        )
    return path


def load_bundle(path_or_name: str | os.PathLike[str]) -> ModelBundle:
    """Load a bundle by file path or by the name of a shipped bundle.

    Raises
    ------
    BundleError
        Unknown name, unreadable or corrupt file, or a failed hash check.

    Examples
    --------
    >>> load_bundle("landcover-nlcd8").bands
    ('blue', 'green', 'red', 'nir')
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    path = resolve_bundle_path(path_or_name)
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("geoseg")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise BundleError(
            f"{path} is not a readable bundle ({str(err).splitlines()[0]}); "
            "it may be truncated or corrupt — re-download or re-create it"
        ) from err
    if not raw:
        raise BundleError(
            f"{path} is a safetensors file without geoseg metadata; create a "
            "bundle with `geoseg bundle create`"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BundleError(f"{path} has unreadable metadata; re-create the bundle") from err
    meta = _validate_meta(meta)
    expected = meta.get("sha256")
    actual = _digest(meta, tensors)
    if expected != actual:
        raise BundleError(
            f"{path} fails its integrity check (sha256 {actual[:12]}… != recorded "
            f"{str(expected)[:12]}…): the file was modified or damaged; re-download or re-create it"
        )
    return ModelBundle(meta=meta, tensors=tensors)
