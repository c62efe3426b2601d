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

from geoseg.errors import BundleError, InputError, MissingDependencyError
from geoseg.models.bundle import ONNX_TENSOR, ModelBundle


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

        from geoseg.models.arch import NATIVE_ARCHITECTURES

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
    """An ONNX model from a bundle, run with ONNX Runtime.

    Models made by other tools often have a fixed batch size or a fixed input
    size. The forward pass adapts to them instead of letting ONNX Runtime fail:
    chips go in groups of the fixed batch (the last group padded with zero
    chips), and chips smaller than the fixed input are padded with zeros at the
    bottom and right (a normalized zero, as for nodata) and the scores cropped
    back. ``layout: NHWC`` models get their input and output transposed.
    """

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
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.name = bundle.name
        self.n_classes = len(bundle.classes)
        self.device = device
        self.logits = returns_logits(bundle)
        self.nhwc = bundle.meta.get("layout") == "NHWC"
        dims = _nchw(list(inp.shape), nhwc=self.nhwc)
        if len(dims) != 4:
            raise BundleError(
                f"bundle '{bundle.name}': the ONNX model takes a {len(dims)}-D input; geoseg "
                "feeds 4-D chips (n, bands, rows, cols), or (n, rows, cols, bands) with layout NHWC"
            )
        self.channels = dims[1] if isinstance(dims[1], int) else None
        self.batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
        self.size = _fixed_size(dims, bundle)

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        n, _, rows, cols = chips.shape
        x = self._pad_size(chips)
        step = self.batch or n
        check_input_bytes(self.name, (step, *x.shape[1:]))
        parts = [self._run(_pad_batch(x[k : k + step], step)) for k in range(0, n, step)]
        y = np.concatenate(parts)[:n] if len(parts) > 1 else parts[0][:n]
        out: NDArray[np.float32] = np.ascontiguousarray(y[:, :, :rows, :cols])
        return out

    def _pad_size(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        """Chips padded with zeros (bottom, right) to a fixed model input size."""
        if self.size is None or chips.shape[2:] == self.size:
            return chips
        rows, cols = self.size
        if chips.shape[2] > rows or chips.shape[3] > cols:
            raise BundleError(
                f"bundle '{self.name}': the ONNX model takes a fixed {rows}x{cols} input, "
                f"smaller than the {chips.shape[2]}x{chips.shape[3]} chips; pass --chip "
                f"{min(rows, cols)} (or less)"
            )
        pad = ((0, 0), (0, 0), (0, rows - chips.shape[2]), (0, cols - chips.shape[3]))
        return np.pad(chips, pad)

    def _run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        feed = x.transpose(0, 2, 3, 1) if self.nhwc else x
        try:
            (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(feed)})[:1]
        except Exception as err:  # onnxruntime raises its own untyped errors
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise BundleError(
                f"bundle '{self.name}': the ONNX model fails on input {tuple(feed.shape)}: {first}"
            ) from err
        y = np.asarray(y, dtype=np.float32)
        if self.nhwc and y.ndim == 4:
            y = y.transpose(0, 3, 1, 2)
        if y.ndim != 4 or y.shape[0] != x.shape[0] or y.shape[1:] != (self.n_classes, *x.shape[2:]):
            raise BundleError(
                f"ONNX model returned shape {tuple(y.shape)} for input {tuple(feed.shape)}; "
                f"expected (n, {self.n_classes} classes, {x.shape[2]}, {x.shape[3]}) — "
                "the model does not match the bundle's class scheme"
                + (" or its layout (NHWC)" if self.nhwc else "")
            )
        out: NDArray[np.float32] = y
        return out


MAX_INPUT_BYTES = 4 << 30
"""Largest float32 input one forward pass may take (a fixed batch is padded up to it)."""


def check_input_bytes(name: str, shape: tuple[int, ...]) -> None:
    """Refuse a forward-pass input larger than :data:`MAX_INPUT_BYTES` before allocating it.

    Raises
    ------
    BundleError
        A model's fixed batch (or input size) would need more memory than that.
    """
    size = 4 * int(np.prod(shape, dtype=np.int64))
    if size > MAX_INPUT_BYTES:
        raise BundleError(
            f"bundle '{name}': one forward pass would take input {shape}, "
            f"{size / 2**30:.1f} GiB (at most {MAX_INPUT_BYTES >> 30} GiB); export the model "
            "with a smaller or dynamic batch size"
        )


def _nchw(dims: list[Any], *, nhwc: bool) -> list[Any]:
    """Input dims in (n, channels, rows, cols) order."""
    return [dims[0], dims[3], dims[1], dims[2]] if nhwc and len(dims) == 4 else dims


def _fixed_size(dims: list[Any], bundle: ModelBundle) -> tuple[int, int] | None:
    """The model's fixed (rows, cols): from the graph, else the bundle's ``input_size``."""
    declared = bundle.meta.get("input_size")
    graph = (dims[2], dims[3]) if all(isinstance(d, int) and d > 0 for d in dims[2:]) else None
    if graph is not None and declared is not None and list(graph) != list(declared):
        raise BundleError(
            f"bundle '{bundle.name}': input_size {declared[0]}x{declared[1]} differs from the "
            f"ONNX model's fixed input {graph[0]}x{graph[1]}; set input_size: {list(graph)}"
        )
    if graph is not None:
        return graph
    return (int(declared[0]), int(declared[1])) if declared is not None else None


def _pad_batch(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    if len(x) == size:
        return x
    return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), dtype=x.dtype)])


def onnx_input_size(data: bytes, *, layout: str = "NCHW") -> tuple[int, int] | None:
    """The fixed ``(rows, cols)`` input of ONNX model bytes, or None if it takes any size.

    Raises
    ------
    BundleError
        The bytes are not an ONNX model ONNX Runtime can load.
    """
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BundleError(f"the ONNX model does not load: {first}") from err
    dims = _nchw(list(session.get_inputs()[0].shape), nhwc=layout == "NHWC")
    if len(dims) == 4 and all(isinstance(d, int) and d > 0 for d in dims[2:]):
        return int(dims[2]), int(dims[3])
    return None


def check_onnx_bundle(bundle: ModelBundle) -> tuple[int, int] | None:
    """Run an ONNX bundle once on zeros to check its input and output shapes.

    Returns
    -------
    tuple of int or None
        The model's fixed ``(rows, cols)`` input, if it has one.

    Raises
    ------
    BundleError
        The model does not take ``len(bands)`` channels, takes a fixed input
        smaller than the bundle's chip, or does not return one channel per
        class at input resolution.
    """
    p = OnnxPredictor(bundle)
    raw = list(p.session.get_inputs()[0].shape)
    n_bands = len(bundle.bands)
    if not bundle.meta.get("layout") and len(raw) == 4 and raw[3] == n_bands != raw[1]:
        raise BundleError(
            f"the ONNX model takes input shaped {raw}, bands last; set layout: NHWC in the metadata"
        )
    if p.channels is not None and p.channels != len(bundle.bands):
        raise BundleError(
            f"ONNX model takes {p.channels} input channels but the bundle lists "
            f"{len(bundle.bands)} bands ({', '.join(bundle.bands)})"
            + (
                ""
                if bundle.meta.get("layout")
                else "; if it takes (n, rows, cols, bands), set layout: NHWC"
            )
        )
    check_chip(bundle, bundle.chip, fixed=p.size, key="chip")
    shape = (p.batch or 1, len(bundle.bands), bundle.chip, bundle.chip)
    check_input_bytes(bundle.name, (shape[0], shape[1], *(p.size or shape[2:])))
    p.predict(np.zeros(shape, np.float32))
    return p.size


def check_chip(
    bundle: ModelBundle,
    chip: int,
    *,
    fixed: tuple[int, int] | None = None,
    key: str = "--chip",
) -> None:
    """Refuse a chip larger than the bundle's fixed ONNX input size, before any work.

    Raises
    ------
    BundleError
        ``chip`` exceeds the fixed input (``fixed``, else the bundle's ``input_size``).
    """
    size = fixed or bundle.meta.get("input_size")
    if size is None or chip <= min(size):
        return
    hint = (
        f"set chip: {min(size)} (or less) in the metadata"
        if key == "chip"
        else (f"pass --chip {min(size)} (or less)")
    )
    raise BundleError(
        f"bundle '{bundle.name}': the ONNX model takes a fixed {size[0]}x{size[1]} input, "
        f"smaller than the {chip}-pixel chip; {hint}"
    )


def returns_logits(bundle: ModelBundle) -> bool:
    """Whether the bundle's predictor returns logits (else probabilities)."""
    if bundle.kind == "onnx":
        if bundle.meta.get("output") == "probs":
            return False
        return bool((bundle.meta.get("arch_params") or {}).get("apply_softmax", True))
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
            if bundle.kind == "index":  # spectral-index baselines: geoseg.models.indices
                from geoseg.models.indices import IndexPredictor

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
