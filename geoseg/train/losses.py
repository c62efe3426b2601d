"""Losses from the field, combined as a weighted sum; all ignore label 255.

Cross-entropy (with class weights), Dice, Focal and Lovász-softmax, the last
three from segmentation-models-pytorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.train.config import LossConfig
from geoseg.train.labels import IGNORE


def auto_class_weights(counts: NDArray[np.int64], cap: float = 10.0) -> NDArray[np.float32]:
    """Inverse square-root pixel frequency, capped, scaled to a mean pixel weight of 1.

    The square root (not plain inverse frequency) and the cap keep a class with
    a few hundred pixels from dominating the loss.

    Examples
    --------
    >>> [round(float(w), 3) for w in auto_class_weights(np.array([900, 100]))]
    [0.833, 2.5]
    """
    freq = counts / max(int(counts.sum()), 1)
    w = np.sqrt(freq.max() / np.maximum(freq, 1e-12))
    w = np.minimum(w, cap)
    w /= max(float((freq * w).sum()), 1e-12)
    out: NDArray[np.float32] = w.astype(np.float32)
    return out


def resolve_class_weights(cfg: LossConfig, counts: NDArray[np.int64]) -> list[float] | None:
    """The class weights a config asks for (``auto``, explicit, or none)."""
    from geoseg.errors import ConfigError

    if cfg.class_weights == "none":
        return None
    if cfg.class_weights == "auto":
        return [round(float(v), 4) for v in auto_class_weights(counts)]
    weights = [float(v) for v in cfg.class_weights]
    if len(weights) != len(counts):
        raise ConfigError(
            f"loss.class_weights has {len(weights)} values for {len(counts)} classes; "
            "give one per class or 'auto'"
        )
    return weights


def build_loss(cfg: LossConfig, class_weights: Sequence[float] | None) -> Any:
    """A callable ``loss(logits, target)``: the weighted sum of the configured terms."""
    import segmentation_models_pytorch as smp
    import torch

    terms: list[tuple[float, Any]] = []
    for term in cfg.terms:
        fn: Any
        if term.name == "ce":
            w = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
            fn = torch.nn.CrossEntropyLoss(weight=w, ignore_index=IGNORE)
        elif term.name == "dice":
            fn = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE)
        elif term.name == "focal":
            fn = smp.losses.FocalLoss("multiclass", ignore_index=IGNORE)
        else:
            fn = smp.losses.LovaszLoss("multiclass", ignore_index=IGNORE)
        terms.append((term.weight, fn))

    class Combined(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fns = torch.nn.ModuleList([fn for _, fn in terms])
            self.weights = [w for w, _ in terms]

        def forward(self, logits: Any, target: Any) -> Any:
            if not bool((target != IGNORE).any()):
                return (logits * 0.0).sum()  # nothing labelled: a zero loss, not NaN
            total = logits.new_zeros(())
            for w, fn in zip(self.weights, self.fns, strict=True):
                total = total + w * fn(logits.float(), target)
            return total

    return Combined()
