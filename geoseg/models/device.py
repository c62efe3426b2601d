"""What every predictor is, and where and how precisely it runs: device and precision.

A :class:`Predictor` takes normalized float32 chips ``(n, bands, rows, cols)``
and returns class scores ``(n, classes, rows, cols)`` as float32. The helpers
here are shared by every kind of bundle (:mod:`geoseg.models.kinds`): choosing
the device, checking ``--precision``, streaming batches, and bounding the
input of one forward pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, Protocol, get_args

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import BundleError, InputError


class Predictor(Protocol):
    """Anything that maps normalized chips to class probabilities."""

    n_classes: int
    device: str
    logits: bool  # True: predict() returns logits (softmax not applied)

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        """``(n, bands, r, c)`` normalized input -> ``(n, classes, r, c)`` class scores."""
        ...


Precision = Literal["fp32", "bf16", "fp16"]
"""A forward-pass precision: float32, or autocast to bfloat16 / float16 (CUDA only)."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
"""Every :data:`Precision`, in the order ``--precision`` lists them."""


INT8_REFUSAL = (
    "int8 is not offered: static (QDQ, calibrated) int8 with ONNX Runtime measured 1.78-2.19x "
    "the speed of its fp32 on the shipped bundles, and landcover-nlcd8 kept only 99.26-99.33 % "
    "of pixels, short of the 2x and 99.5 % it must reach (benchmarks/README.md); use fp32 "
    "(on CPU it runs on ONNX Runtime, --backend auto)"
)
"""Why there is no int8: the measured numbers, in the error a user sees."""


def check_precision(precision: str, device: str) -> str:
    """Validate ``--precision`` for ``device``; returns it.

    Raises
    ------
    InputError
        Unknown precision, int8 (measured, not offered), or float16 asked for on a CPU.
    """
    if precision not in PRECISIONS:
        why = f": {INT8_REFUSAL}" if precision == "int8" else ""
        raise InputError(
            f"--precision must be one of {', '.join(PRECISIONS)}, got '{precision}'{why}"
        )
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
