"""Segmentation metrics from a confusion matrix accumulated over a whole data set.

Per-chip or per-batch scores averaged together are biased (a chip with ten
pixels of a class weighs as much as one with ten thousand), so every metric
here comes from one :class:`ConfusionMatrix` that counts pixels over the whole
validation set (or scene) and is reduced once at the end.

Conventions
-----------
``matrix[t, p]`` counts pixels whose truth is class ``t`` and prediction is
class ``p`` (rows are truth, columns predictions). Pixels whose truth equals
``ignore_index`` are not counted at all. Predictions outside ``[0, n_classes)``
are an error (a model never emits them); truths outside that range other than
``ignore_index`` are an error too, so a wrong label mapping is never silently
scored.

A class with no *support* (no truth pixel) has no defined recall or IoU: its
per-class entry is ``NaN`` for every score, and it is left out of ``miou`` and
``macro_f1``. Such a class can still be *predicted* (false positives); those
pixels lower the precision and IoU of the classes whose truth they carry.

Examples
--------
>>> cm = ConfusionMatrix(3)
>>> cm.update([0, 1, 1, 1, 0, 2], [0, 0, 1, 1, 2, 255])  # pred, truth
>>> cm.matrix.tolist()
[[1, 1, 0], [0, 2, 0], [1, 0, 0]]
>>> round(cm.overall_accuracy, 4)
0.6
>>> s = cm.per_class()
>>> [round(v, 4) for v in s["iou"]]
[0.3333, 0.6667, 0.0]
>>> round(cm.miou, 4)
0.3333
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geoseg.errors import InputError

SCORES = ("iou", "f1", "precision", "recall")
"""The per-class scores :meth:`ConfusionMatrix.per_class` returns, in order."""


def _as_int_array(a: Any) -> NDArray[np.int64]:
    """A flat int64 numpy array from a numpy array, torch tensor or sequence."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor without importing torch
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise InputError(f"class arrays must be integers, got dtype {arr.dtype}; cast them first")
    return arr.astype(np.int64, copy=False).ravel()


class ConfusionMatrix:
    """Pixel counts ``matrix[truth, pred]`` accumulated with :func:`numpy.bincount`.

    Parameters
    ----------
    n_classes
        Number of classes; predictions and truths are ``0 .. n_classes - 1``.
    ignore_index
        Truth value that is not counted (unlabelled pixels, nodata).
    names
        Optional class names, used as keys by :meth:`to_dict`.
    """

    def __init__(
        self, n_classes: int, ignore_index: int = 255, *, names: Sequence[str] | None = None
    ) -> None:
        if n_classes < 1:
            raise InputError(f"n_classes must be at least 1, got {n_classes}")
        if names is not None and len(names) != n_classes:
            raise InputError(f"{len(names)} class names given for {n_classes} classes")
        self.n_classes = int(n_classes)
        self.ignore_index = int(ignore_index)
        self.names = list(names) if names is not None else [str(i) for i in range(n_classes)]
        self._m = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, pred: ArrayLike, truth: ArrayLike) -> None:
        """Count one batch of predictions against its truth (any equal shapes).

        Raises
        ------
        InputError
            Shapes differ, or a value is outside ``[0, n_classes)`` (truth may
            also be ``ignore_index``).
        """
        p, t = _as_int_array(pred), _as_int_array(truth)
        if p.shape != t.shape:
            raise InputError(f"pred has {p.size} pixels but truth has {t.size}; pass equal shapes")
        keep = t != self.ignore_index
        p, t = p[keep], t[keep]
        n = self.n_classes
        if t.size and (t.min() < 0 or t.max() >= n):
            raise InputError(
                f"truth value {int(t.max() if t.max() >= n else t.min())} is outside 0..{n - 1} "
                f"and not ignore_index {self.ignore_index}; map labels to class indices first"
            )
        if p.size and (p.min() < 0 or p.max() >= n):
            bad = int(p.max() if p.max() >= n else p.min())
            raise InputError(f"prediction value {bad} is outside 0..{n - 1}")
        self._m += np.bincount(t * n + p, minlength=n * n).reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts into this one (e.g. from another worker); returns self."""
        if other.n_classes != self.n_classes:
            raise InputError(
                f"cannot merge a {other.n_classes}-class matrix into a {self.n_classes}-class one"
            )
        self._m += other._m
        return self

    @property
    def matrix(self) -> NDArray[np.int64]:
        """A copy of the counts, ``[truth, pred]``."""
        return self._m.copy()

    @property
    def support(self) -> NDArray[np.int64]:
        """Truth pixels per class."""
        support: NDArray[np.int64] = self._m.sum(axis=1)
        return support

    @property
    def total(self) -> int:
        """Pixels counted (ignored pixels excluded)."""
        return int(self._m.sum())

    def per_class(self) -> dict[str, list[float]]:
        """IoU, F1, precision and recall per class; ``NaN`` where a class has no support.

        Precision of a supported class that is never predicted is 0 (not NaN):
        the class exists and the model missed all of it.
        """
        m = self._m.astype(np.float64)
        tp = np.diag(m)
        support, predicted = m.sum(axis=1), m.sum(axis=0)
        present = support > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = tp / (support + predicted - tp)
            f1 = 2 * tp / (support + predicted)
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = tp / support
        out: dict[str, list[float]] = {}
        for key, vals in zip(SCORES, (iou, f1, precision, recall), strict=True):
            out[key] = [float(v) if ok else math.nan for v, ok in zip(vals, present, strict=True)]
        return out

    def _mean_over_present(self, key: str) -> float:
        vals = [v for v in self.per_class()[key] if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    @property
    def miou(self) -> float:
        """Mean IoU over the classes with support (NaN when nothing was counted)."""
        return self._mean_over_present("iou")

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes with support (NaN when nothing was counted)."""
        return self._mean_over_present("f1")

    @property
    def overall_accuracy(self) -> float:
        """Correct pixels over counted pixels (NaN when nothing was counted)."""
        total = self._m.sum()
        return float(np.trace(self._m) / total) if total else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; NaN scores become ``None`` (JSON has no NaN).

        Examples
        --------
        >>> cm = ConfusionMatrix(2, names=["water", "land"])
        >>> cm.update([1, 1, 0], [1, 1, 1])
        >>> d = cm.to_dict()
        >>> d["per_class"]["water"]["iou"] is None, d["per_class"]["land"]["support"]
        (True, 3)
        """
        pc = self.per_class()
        support = self.support

        def clean(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "n_classes": self.n_classes,
            "ignore_index": self.ignore_index,
            "pixels": self.total,
            "miou": clean(self.miou),
            "macro_f1": clean(self.macro_f1),
            "overall_accuracy": clean(self.overall_accuracy),
            "per_class": {
                name: {"support": int(support[i]), **{k: clean(pc[k][i]) for k in SCORES}}
                for i, name in enumerate(self.names)
            },
            "confusion": self._m.tolist(),
        }

    def __repr__(self) -> str:
        return f"ConfusionMatrix(n_classes={self.n_classes}, pixels={self.total})"
