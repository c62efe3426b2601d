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

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError
from geoseg.models.card import card_text
from geoseg.models.kinds import KINDS as KINDS
from geoseg.models.kinds import finish_meta as finish_meta
from geoseg.models.kinds import kind_of, validate_meta
from geoseg.models.onnx_model import ONNX_LAYOUTS as ONNX_LAYOUTS
from geoseg.models.onnx_model import ONNX_OUTPUTS as ONNX_OUTPUTS
from geoseg.models.schema import BUNDLE_SUFFIX as BUNDLE_SUFFIX
from geoseg.models.schema import FORMAT as FORMAT
from geoseg.models.schema import FORMAT_VERSION as FORMAT_VERSION
from geoseg.models.schema import MAX_CHIP as MAX_CHIP
from geoseg.models.schema import MAX_LABEL as MAX_LABEL
from geoseg.models.schema import ONNX_TENSOR as ONNX_TENSOR
from geoseg.models.schema import BundleMeta as BundleMeta
from geoseg.models.schema import digest
from geoseg.models.shipped import resolve_bundle_path as resolve_bundle_path
from geoseg.models.shipped import shipped_bundles as shipped_bundles
from geoseg.models.torch_model import build_torch_model, state_tensors
from geoseg.schemes import ClassInfo, parse_classes


@dataclass(frozen=True)
class ModelBundle:
    """A model and everything needed to run it on a scene.

    Create one with :meth:`create`, write it with :meth:`save`, read one with
    :func:`load_bundle`.
    """

    meta: BundleMeta
    """The checked metadata; a plain ``dict`` at run time (see :class:`BundleMeta`)."""
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
        return str(self.meta.get("sha256") or digest(self.meta, self.tensors))

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
        checked = validate_meta(meta)
        tensors: dict[str, NDArray[Any]]
        if onnx is not None:
            tensors = {ONNX_TENSOR: np.frombuffer(onnx, dtype=np.uint8).copy()}
        else:
            tensors = state_tensors(
                model,
                name=name,
                architecture=architecture,
                encoder=encoder,
                in_channels=len(bands),
                classes=len(infos),
                arch_params=arch_params,
                state_dict=state_dict,
            )
        checked["sha256"] = digest(checked, tensors)
        return kind_of(checked).check_new(cls(meta=cast(BundleMeta, checked), tensors=tensors))

    def with_meta(self, **changes: Any) -> ModelBundle:
        """A copy with metadata fields replaced (hash recomputed)."""
        return ModelBundle(
            meta=finish_meta({**self.meta, **changes}, self.tensors), tensors=self.tensors
        )

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
        return build_torch_model(self)

    def card_text(self) -> str:
        """A human-readable summary plus the model card (:func:`geoseg.models.card.card_text`)."""
        return card_text(self)


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
    checked = validate_meta(meta)
    expected = checked.get("sha256")
    actual = digest(checked, tensors)
    if expected != actual:
        raise BundleError(
            f"{path} fails its integrity check (sha256 {actual[:12]}… != recorded "
            f"{str(expected)[:12]}…): the file was modified or damaged; re-download or re-create it"
        )
    return ModelBundle(meta=cast(BundleMeta, checked), tensors=tensors)
