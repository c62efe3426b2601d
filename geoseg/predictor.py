"""Batched forward passes: torch (CPU/CUDA) or ONNX Runtime, probabilities out.

A :class:`Predictor` takes normalized float32 chips ``(n, bands, rows, cols)``
and returns class probabilities ``(n, classes, rows, cols)`` as float32.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from geoseg.bundle import ONNX_TENSOR, ModelBundle
from geoseg.errors import BundleError, InputError, MissingDependencyError


class Predictor(Protocol):
    """Anything that maps normalized chips to class probabilities."""

    n_classes: int
    device: str
    logits: bool  # True: predict() returns logits (softmax not applied)

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        """``(n, bands, r, c)`` normalized input -> ``(n, classes, r, c)`` class scores."""
        ...


PRECISIONS = ("fp32", "bf16", "fp16")
"""Forward-pass precisions: float32, or autocast to bfloat16 / float16 (CUDA only)."""


def check_precision(precision: str, device: str) -> str:
    """Validate ``--precision`` for ``device``; returns it.

    Raises
    ------
    InputError
        Unknown precision, or float16 asked for on a CPU.
    """
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "fp16" and not device.startswith("cuda"):
        raise InputError(
            "--precision fp16 needs a CUDA GPU (CPUs have no fast float16 kernels); "
            "use --precision bf16 or fp32 on CPU"
        )
    return precision


def predict_stream(
    predictor: Predictor, batches: Iterable[NDArray[np.float32]]
) -> Iterator[NDArray[np.float32]]:
    """Class scores for each batch of ``batches``, in order.

    A predictor with its own ``predict_stream`` (the torch one on CUDA) overlaps
    the preparation of the next batch with the forward pass of the current one;
    any other predictor runs one batch after the other.
    """
    stream = getattr(predictor, "predict_stream", None)
    if stream is not None:
        yield from stream(batches)
        return
    for x in batches:
        yield predictor.predict(x)


def resolve_device(device: str) -> str:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:i`` into a concrete device string.

    Raises
    ------
    InputError
        CUDA asked for but not available, or an unknown device name.
    """
    import torch

    device = device.strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"--device {device} asked for, but no CUDA GPU is available; use --device cpu"
            )
        if ":" in device:
            idx = device.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise InputError(
                    f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)"
                )
        return device
    raise InputError(f"unknown --device '{device}'; use auto, cpu, cuda or cuda:N")


class TorchPredictor:
    """A torch model from a bundle on one device; returns logits.

    Softmax is left to the blending step, which needs probabilities only where
    chips overlap (and for confidence): the argmax of logits is the argmax of
    probabilities.

    On CUDA, chips go up from page-locked (pinned) host memory with
    asynchronous copies, and :meth:`predict_stream` keeps the GPU busy: it
    launches a batch's forward pass, then lets the caller read and normalize the
    next batch on the CPU and queues its upload while the GPU still computes,
    and only then waits for the first batch's scores. ``precision`` ``bf16`` or
    ``fp16`` runs the forward pass under :func:`torch.autocast` (mixed
    precision: convolutions in 16 bits, reductions in 32); scores come back as
    float32 either way.
    """

    logits = True

    def __init__(self, bundle: ModelBundle, device: str = "cpu", precision: str = "fp32") -> None:
        import torch

        from geoseg.models import NATIVE_ARCHITECTURES

        check_precision(precision, device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(
                f"device {device} asked for, but this process sees no CUDA GPU "
                "(on a Dask worker: is CUDA_VISIBLE_DEVICES set right?); use --device cpu"
            )
        self.device = device
        self.precision = precision
        self.n_classes = len(bundle.classes)
        self._cuda = device.startswith("cuda")
        self._autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
            precision
        ]
        # channels-last lets oneDNN/cuDNN pick their fastest kernels for deep conv
        # nets (about 30% less time per chip on CPU here); for the tiny native nets
        # the layout conversions cost more than they save. A fixed rule, not a
        # timing, so the same bundle always takes the same path.
        deep = bundle.meta.get("architecture") not in NATIVE_ARCHITECTURES
        self.memory_format = torch.channels_last if deep else torch.contiguous_format
        self.model = bundle.build_model().to(device, memory_format=self.memory_format)
        self._torch = torch

    def _upload(self, chips: NDArray[np.float32]) -> Any:
        """Chips as a tensor on the device (pinned + asynchronous on CUDA)."""
        x = self._torch.from_numpy(np.ascontiguousarray(chips))
        if self._cuda:
            # pin_memory() draws on torch's caching host allocator: same-shape
            # batches reuse the same page-locked buffers
            x = x.pin_memory().to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format)

    def _forward(self, x: Any) -> Any:
        torch = self._torch
        if self._autocast_dtype is None:
            return self.model(x)
        with torch.autocast(
            device_type="cuda" if self._cuda else "cpu", dtype=self._autocast_dtype
        ):
            return self.model(x)

    def _download(self, y: Any) -> NDArray[np.float32]:
        out: NDArray[np.float32] = y.float().contiguous().cpu().numpy()
        return out

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        with self._torch.inference_mode():
            return self._download(self._forward(self._upload(chips)))

    def predict_stream(
        self, batches: Iterable[NDArray[np.float32]]
    ) -> Iterator[NDArray[np.float32]]:
        """Scores per batch; on CUDA the next batch is prepared while this one runs."""
        if not self._cuda:
            for chips in batches:
                yield self.predict(chips)
            return
        torch = self._torch
        todo = iter(batches)
        with torch.inference_mode():
            first = next(todo, None)
            x = None if first is None else self._upload(first)
            while x is not None:
                y = self._forward(x)  # queued on the GPU; returns at once
                nxt = next(todo, None)  # the caller reads + normalizes on the CPU meanwhile
                x = None if nxt is None else self._upload(nxt)
                yield self._download(y)  # waits for this batch only


class OnnxPredictor:
    """An ONNX model from a bundle, run with ONNX Runtime."""

    def __init__(self, bundle: ModelBundle, device: str = "cpu", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise MissingDependencyError(
                "ONNX bundles need onnxruntime: pip install onnxruntime"
            ) from err
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if device.startswith("cuda") else []
        providers.append("CPUExecutionProvider")
        try:
            self.session = ort.InferenceSession(
                bundle.tensors[ONNX_TENSOR].tobytes(), sess_options=opts, providers=providers
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise BundleError(f"bundle '{bundle.name}': ONNX model does not load: {err}") from err
        self.input_name = self.session.get_inputs()[0].name
        self.n_classes = len(bundle.classes)
        self.device = device
        # arch_params.apply_softmax false: the ONNX model already returns probabilities
        self.logits = bool(bundle.meta.get("arch_params", {}).get("apply_softmax", True))

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(chips)})[:1]
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 4 or y.shape[1] != self.n_classes or y.shape[2:] != chips.shape[2:]:
            raise BundleError(
                f"ONNX model returned shape {tuple(y.shape)} for input {tuple(chips.shape)}; "
                f"expected (n, {self.n_classes} classes, {chips.shape[2]}, {chips.shape[3]}) — "
                "the model does not match the bundle's class scheme"
            )
        out: NDArray[np.float32] = y
        return out


def check_onnx_bundle(bundle: ModelBundle) -> None:
    """Run an ONNX bundle once on zeros to check its input and output shapes.

    Raises
    ------
    BundleError
        The model does not take ``len(bands)`` channels or does not return one
        channel per class at input resolution.
    """
    p = OnnxPredictor(bundle)
    inp = p.session.get_inputs()[0]
    dims = list(inp.shape)
    size = bundle.chip
    for i in (2, 3):
        if isinstance(dims[i], int):
            size = dims[i]
    n = dims[0] if isinstance(dims[0], int) else 1
    c = dims[1]
    if isinstance(c, int) and c != len(bundle.bands):
        raise BundleError(
            f"ONNX model takes {c} input channels but the bundle lists {len(bundle.bands)} bands "
            f"({', '.join(bundle.bands)})"
        )
    p.predict(np.zeros((n, len(bundle.bands), size, size), dtype=np.float32))


def returns_logits(bundle: ModelBundle) -> bool:
    """Whether the bundle's predictor returns logits (else probabilities)."""
    if bundle.kind == "onnx":
        return bool(bundle.meta.get("arch_params", {}).get("apply_softmax", True))
    return True


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
    if bundle.kind == "onnx" and precision != "fp32":
        raise InputError(
            f"bundle '{bundle.name}' is ONNX and runs as exported; --precision {precision} "
            "applies to torch bundles (drop it, or export the ONNX model in that precision)"
        )
    key = (bundle.sha256, device, precision)
    with _cache_lock:
        pred = _cache.get(key)
        if pred is None:
            if bundle.kind == "index":  # spectral-index baselines: geoseg.indices
                from geoseg.indices import IndexPredictor

                pred = IndexPredictor(bundle, device)
            else:
                pred = (
                    OnnxPredictor(bundle, device)
                    if bundle.kind == "onnx"
                    else TorchPredictor(bundle, device, precision)
                )
            _cache[key] = pred
            LOADS.append(bundle.sha256)
        return pred


def warm(bundle_ref: str, device: str = "cpu", precision: str = "fp32") -> str:
    """Build the predictor of a bundle path or name in this process; returns its hash.

    For ``client.run(warm, path)`` on Dask workers before timing a run.
    """
    from geoseg.bundle import load_bundle

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
