"""The ``onnx`` kind: an ONNX model, as bytes in one tensor, run with ONNX Runtime.

ONNX models made by other tools come with their own conventions: a fixed batch
or input size, probabilities instead of logits, channels last. The metadata
says which (``input_size``, ``output``, ``layout``, checked here), and
:class:`OnnxPredictor` adapts to them, so the engine always sees
``(n, classes, chip, chip)`` scores. A new ONNX bundle is run once on zeros
(:func:`check_onnx_bundle`) before it is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError, InputError, MissingDependencyError
from geoseg.models.device import check_input_bytes
from geoseg.models.schema import MAX_CHIP, ONNX_TENSOR, whole

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle

ONNX_OUTPUTS = ("logits", "probs")
ONNX_LAYOUTS = ("NCHW", "NHWC")


def check_onnx_meta(out: dict[str, Any]) -> None:
    """Check an ONNX bundle's optional input/output conventions; cleans ``input_size``.

    They are present only when set, so the hashes of bundles without them hold.

    Raises
    ------
    BundleError
        ``input_size`` not ``[rows, cols]`` of whole pixels at least ``chip``, or an
        unknown ``output`` or ``layout``.
    """
    if "input_size" in out:
        size = out["input_size"]
        pair = size if isinstance(size, list) and len(size) == 2 else None
        if pair is None:
            raise BundleError(f"bundle 'input_size' must be [rows, cols], got {size!r}")
        rows, cols = (whole(v, "input_size", 1, MAX_CHIP) for v in pair)
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
        self.logits = onnx_returns_logits(bundle.meta)
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


def onnx_returns_logits(meta: Mapping[str, Any]) -> bool:
    """Whether an ONNX bundle's model returns logits (else probabilities: no softmax again)."""
    if meta.get("output") == "probs":
        return False
    return bool((meta.get("arch_params") or {}).get("apply_softmax", True))


def make_onnx_predictor(bundle: ModelBundle, device: str, precision: str) -> OnnxPredictor:
    """The :class:`OnnxPredictor` of an ONNX bundle (the kind registry's hook).

    Raises
    ------
    InputError
        A precision other than fp32: an ONNX model runs as exported.
    """
    if precision != "fp32":
        raise InputError(
            f"bundle '{bundle.name}' is ONNX and runs as exported; --precision {precision} "
            "applies to torch bundles (drop it, or export the ONNX model in that precision)"
        )
    return OnnxPredictor(bundle, device)


def check_new_onnx_bundle(bundle: ModelBundle) -> ModelBundle:
    """A new ONNX bundle, run once on zeros, with the model's fixed input size recorded.

    ``predict`` checks ``--chip`` against a recorded ``input_size`` before any work.
    """
    fixed = check_onnx_bundle(bundle)
    if fixed is not None and "input_size" not in bundle.meta:
        return bundle.with_meta(input_size=list(fixed))
    return bundle
