"""The predictor of a bundle, built once per process, whatever its kind.

:func:`get_predictor` asks the bundle's kind (:mod:`geoseg.models.kinds`) for a
:class:`~geoseg.models.device.Predictor` and keeps it, by bundle hash, device
and precision, so every block task of a process shares one model. The
predictors themselves live with their kind: :mod:`geoseg.models.torch_model`,
:mod:`geoseg.models.onnx_model`, :mod:`geoseg.models.spectral`; the device and
precision helpers in :mod:`geoseg.models.device`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from geoseg.models.device import MAX_INPUT_BYTES as MAX_INPUT_BYTES
from geoseg.models.device import PRECISIONS as PRECISIONS
from geoseg.models.device import Predictor as Predictor
from geoseg.models.device import check_input_bytes as check_input_bytes
from geoseg.models.device import check_precision as check_precision
from geoseg.models.device import predict_stream as predict_stream
from geoseg.models.device import resolve_device as resolve_device
from geoseg.models.kinds import kind_of
from geoseg.models.onnx_model import OnnxPredictor as OnnxPredictor
from geoseg.models.onnx_model import check_chip as check_chip
from geoseg.models.onnx_model import check_onnx_bundle as check_onnx_bundle
from geoseg.models.onnx_model import onnx_input_size as onnx_input_size
from geoseg.models.torch_model import TorchPredictor as TorchPredictor

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle


def returns_logits(bundle: ModelBundle) -> bool:
    """Whether the bundle's predictor returns logits (else probabilities)."""
    return kind_of(bundle.meta).returns_logits(bundle.meta)


_cache: dict[tuple[str, str, str], Predictor] = {}
LOADS: list[str] = []
"""Bundle hashes this process built a model for (tests use it: once per process)."""
_cache_lock = threading.Lock()


def get_predictor(bundle: ModelBundle, device: str = "cpu", precision: str = "fp32") -> Predictor:
    """The predictor for ``bundle`` on ``device``, built once per process.

    ``precision`` applies to torch bundles; ONNX bundles run as exported
    (float32 only) and index bundles compute in float32 whatever it says.
    """
    check_precision(precision, device)
    kind = kind_of(bundle.meta)
    key = (bundle.sha256, device, precision)
    with _cache_lock:
        pred = _cache.get(key)
        if pred is None:
            pred = kind.make_predictor(bundle, device, precision)
            _cache[key] = pred
            LOADS.append(bundle.sha256)
        return pred


def warm(bundle_ref: str, device: str = "cpu", precision: str = "fp32") -> str:
    """Build the predictor of a bundle path or name in this process; returns its hash.

    For ``client.run(warm, path)`` on Dask workers before timing a run.
    """
    from geoseg.models.bundle import load_bundle

    bundle = load_bundle(bundle_ref)
    get_predictor(bundle, device, precision)
    return bundle.sha256


def loaded_bundles() -> list[str]:
    """Hashes of the bundles this process built a model for, in order (one per build)."""
    return list(LOADS)


def predictor_info(pred: Any) -> dict[str, Any]:
    """What the run record says about a predictor."""
    return {
        "class": type(pred).__name__,
        "device": pred.device,
        "precision": getattr(pred, "precision", "fp32"),
    }
