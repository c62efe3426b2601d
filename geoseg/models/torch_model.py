"""The ``torch`` kind: an architecture of :mod:`geoseg.models.arch` and its weights.

The bundle's tensors are the model's state dict; ``architecture``, ``encoder``
and ``arch_params`` say what to build. Building one never fetches weights and
is bounded in size (:func:`geoseg.models.arch.check_arch_params`, checked with
the metadata before any weights are used). :class:`TorchPredictor` runs it on
CPU or CUDA, in float32 or under autocast.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError, InputError
from geoseg.models.arch import NATIVE_ARCHITECTURES, build_model, check_arch_params
from geoseg.models.device import check_precision
from geoseg.models.schema import check_no_onnx_keys

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle


def check_torch_meta(meta: dict[str, Any]) -> None:
    """Check a torch bundle's ``architecture`` and ``arch_params`` (bounded model size).

    Raises
    ------
    BundleError
        No architecture, ``arch_params`` that would build a model of unbounded
        size, or keys that only ONNX bundles have.
    """
    if not isinstance(meta.get("architecture"), str):
        raise BundleError("a torch bundle needs an 'architecture'")
    check_arch_params(meta["architecture"], meta.get("arch_params") or {})
    check_no_onnx_keys(meta)


def torch_detail(meta: Mapping[str, Any]) -> str:
    """``Unet / resnet18``: what ``geoseg bundle info`` shows after the kind."""
    return f"{meta.get('architecture')} / {meta.get('encoder')}"


def load_state(model: Any, tensors: Mapping[str, Any], name: str) -> None:
    """Load ``tensors`` into ``model`` strictly (every weight, no extra one).

    Raises
    ------
    BundleError
        The weights do not fit the architecture (the bundle ``name`` is named).
    """
    import torch

    state = {k: torch.as_tensor(np.asarray(v)) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BundleError(
            f"weights of bundle '{name}' do not fit its architecture: {str(err).splitlines()[0]}"
        ) from err


def state_tensors(
    model: Any,
    *,
    name: str,
    architecture: str | None,
    encoder: str | None,
    in_channels: int,
    classes: int,
    arch_params: Mapping[str, Any] | None,
    state_dict: Mapping[str, Any] | None,
) -> dict[str, NDArray[Any]]:
    """A bundle's tensors from a torch ``model``, or from a fresh one with ``state_dict``.

    With ``model`` None the architecture is built (fresh weights), and
    ``state_dict``, if given, loaded into it.
    """
    if model is None:
        model = build_model(
            str(architecture),
            encoder=encoder,
            in_channels=in_channels,
            classes=classes,
            params=arch_params,
        )
        if state_dict is not None:
            load_state(model, state_dict, name)
    return {k: v.detach().cpu().contiguous().numpy().copy() for k, v in model.state_dict().items()}


def build_torch_model(bundle: ModelBundle) -> Any:
    """The torch model of a torch bundle with its weights loaded (eval mode, CPU)."""
    meta = bundle.meta
    model = build_model(
        str(meta["architecture"]),
        encoder=meta.get("encoder"),
        in_channels=len(bundle.bands),
        classes=len(bundle.classes),
        params=meta.get("arch_params"),
    )
    load_state(model, bundle.tensors, bundle.name)
    return model


def make_torch_predictor(bundle: ModelBundle, device: str, precision: str) -> TorchPredictor:
    """The :class:`TorchPredictor` of a torch bundle (the kind registry's hook)."""
    return TorchPredictor(bundle, device, precision)


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
        self.model = build_torch_model(bundle).to(device, memory_format=self.memory_format)
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
