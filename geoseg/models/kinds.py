"""The registry of bundle kinds: what each kind checks in its metadata and how it runs.

A bundle's ``kind`` says what its tensors are: ``torch`` (the state dict of an
architecture), ``onnx`` (an ONNX model's bytes) or ``index`` (no tensors; the
metadata is the model). Everything that depends on the kind goes through one
:class:`BundleKind` in :data:`BUNDLE_KINDS`, so the bundle file format
(:mod:`geoseg.models.bundle`) never imports a forward pass, and the predictor
cache (:mod:`geoseg.models.predictor`) never asks which kind it has::

    schema ◄── torch_model, onnx_model, spectral ◄── kinds ◄── bundle ◄── predictor, indices

A new kind is one module with these hooks and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from numpy.typing import NDArray

from geoseg.models.onnx_model import (
    check_new_onnx_bundle,
    check_onnx_meta,
    make_onnx_predictor,
    onnx_returns_logits,
)
from geoseg.models.schema import BundleMeta, check_common, digest
from geoseg.models.spectral import check_index_meta, index_detail, make_index_predictor
from geoseg.models.torch_model import check_torch_meta, make_torch_predictor, torch_detail

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle
    from geoseg.models.device import Predictor


def _same(bundle: ModelBundle) -> ModelBundle:
    return bundle


def _no_detail(meta: Mapping[str, Any]) -> str:
    return ""


def _logits(meta: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class BundleKind:
    """What one kind of bundle checks and how it runs.

    Attributes
    ----------
    name
        The ``kind`` in the metadata.
    check_meta
        Checks (and cleans, in place) the keys of this kind, after the keys every
        kind shares (:func:`geoseg.models.schema.check_common`); raises
        :class:`~geoseg.errors.BundleError`.
    make_predictor
        ``(bundle, device, precision)`` to a new :class:`~geoseg.models.device.Predictor`.
    returns_logits
        Whether the predictor returns logits (softmax still to apply) or probabilities.
    detail
        A few words after the kind in ``geoseg bundle info`` (``Unet / resnet18``).
    check_new
        Run on a bundle just created (an ONNX model is run once on zeros); returns
        it, with metadata it derived.
    """

    name: str
    check_meta: Callable[[dict[str, Any]], None]
    make_predictor: Callable[[ModelBundle, str, str], Predictor]
    returns_logits: Callable[[Mapping[str, Any]], bool] = _logits
    detail: Callable[[Mapping[str, Any]], str] = _no_detail
    check_new: Callable[[ModelBundle], ModelBundle] = _same


BUNDLE_KINDS: dict[str, BundleKind] = {
    k.name: k
    for k in (
        BundleKind("torch", check_torch_meta, make_torch_predictor, detail=torch_detail),
        BundleKind(
            "onnx",
            check_onnx_meta,
            make_onnx_predictor,
            returns_logits=onnx_returns_logits,
            check_new=check_new_onnx_bundle,
        ),
        BundleKind("index", check_index_meta, make_index_predictor, detail=index_detail),
    )
}
KINDS = tuple(BUNDLE_KINDS)
"""The kind names a bundle may have.

Examples
--------
>>> KINDS
('torch', 'onnx', 'index')
"""


def kind_of(meta: Mapping[str, Any]) -> BundleKind:
    """The :class:`BundleKind` of checked metadata (``meta["kind"]``).

    Examples
    --------
    >>> kind_of({"kind": "onnx"}).returns_logits({"output": "probs"})
    False
    """
    return BUNDLE_KINDS[meta["kind"]]


def validate_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A checked, cleaned copy of bundle metadata: the shared keys, then the kind's own.

    Raises
    ------
    BundleError
        Not a geoseg bundle, an unknown kind, or any key missing or invalid.
    """
    out = check_common(meta, KINDS)
    kind_of(out).check_meta(out)
    return out


def finish_meta(meta: Mapping[str, Any], tensors: Mapping[str, NDArray[Any]]) -> BundleMeta:
    """Validated metadata with its ``sha256`` over itself and ``tensors``."""
    out = validate_meta(meta)
    out["sha256"] = digest(out, tensors)
    return cast(BundleMeta, out)
