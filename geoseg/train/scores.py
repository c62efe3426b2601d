"""Scores of an evaluation: the result of ``geoseg eval``, as text tables, JSON and PNG.

:func:`geoseg.train.evaluate.evaluate` counts pixels into an :class:`EvalResult`;
this module only presents results (one, or several bundles side by side).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.analysis.metrics import SCORES, ConfusionMatrix
from geoseg.records import write_record
from geoseg.schemes import ClassInfo

OTHER = "other"
"""Matrix column of predictions outside the scored classes (with a class subset)."""


@dataclass
class EvalResult:
    """Scores of one prediction against one truth raster."""

    prediction: str
    truth: str
    classes: tuple[ClassInfo, ...]
    matrix: ConfusionMatrix
    reprojected: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Row/column names of the confusion matrix."""
        return self.matrix.names

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (NaN scores become ``null``)."""
        return {
            "prediction": self.prediction,
            "truth": self.truth,
            "truth_reprojected": self.reprojected,
            "classes": [c.to_dict() for c in self.classes],
            **self.matrix.to_dict(),
            **self.extra,
        }

    def table(self) -> str:
        """Per-class scores, mIoU, OA and the confusion matrix as plain text."""
        return format_result(self)


# -- presentation ---------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "   -  " if v is None or math.isnan(v) else f"{v:6.3f}"


def format_result(res: EvalResult) -> str:
    """Text table: per-class scores, mIoU, OA, confusion matrix (rows truth)."""
    cm = res.matrix
    pc = cm.per_class()
    width = max(8, *(len(n) for n in cm.names))
    head = f"{'class':<{width}}  {'support':>10}  " + "  ".join(f"{k:>9}" for k in SCORES)
    lines = [head, "-" * len(head)]
    for i, name in enumerate(cm.names):
        if name == OTHER:
            continue
        scores = "  ".join(f"{_fmt(pc[k][i]):>9}" for k in SCORES)
        lines.append(f"{name:<{width}}  {int(cm.support[i]):>10}  {scores}")
    lines += [
        "",
        f"mIoU {_fmt(cm.miou).strip()}   overall accuracy {_fmt(cm.overall_accuracy).strip()}   "
        f"pixels {cm.total}" + ("   (truth reprojected, nearest)" if res.reprojected else ""),
        "",
        "confusion matrix (rows: truth, columns: prediction)",
    ]
    m = cm.matrix
    cw = max(width, *(len(str(v)) for v in m.ravel()))
    lines.append(f"{'':<{width}}  " + "  ".join(f"{n:>{cw}}" for n in cm.names))
    for i, name in enumerate(cm.names):
        if name == OTHER:
            continue
        lines.append(f"{name:<{width}}  " + "  ".join(f"{int(v):>{cw}}" for v in m[i]))
    return "\n".join(lines)


def write_json(results: EvalResult | Sequence[EvalResult], path: str | os.PathLike[str]) -> Path:
    """Write one result (an object) or several (a list) as JSON, atomically."""
    if isinstance(results, EvalResult):
        doc: Any = results.to_dict()
    else:
        doc = [r.to_dict() for r in results]
    return write_record(path, doc)


def write_png(
    results: EvalResult | Sequence[EvalResult],
    path: str | os.PathLike[str],
    *,
    titles: Sequence[str] | None = None,
) -> Path:
    """Confusion matrices as a PNG: colors are row-normalized (recall), cells show counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geoseg.atomic import atomic_path

    items = [results] if isinstance(results, EvalResult) else list(results)
    n = len(items)
    k = max(len(r.names) for r in items)
    fig, axes = plt.subplots(
        1, n, figsize=(1.2 + 0.9 * k * n + 0.6 * n, 1.6 + 0.8 * k), squeeze=False
    )
    for j, (res, ax) in enumerate(zip(items, axes[0], strict=True)):
        m = res.matrix.matrix.astype(np.float64)
        rows = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for (r, c), v in np.ndenumerate(m):
            ax.text(
                c,
                r,
                f"{int(v)}\n{frac[r, c]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if frac[r, c] > 0.6 else "black",
            )
        ax.set_xticks(range(len(res.names)), res.names, rotation=45, ha="right")
        ax.set_yticks(range(len(res.names)), res.names)
        ax.set_xlabel("prediction")
        ax.set_ylabel("truth")
        title = titles[j] if titles else Path(res.prediction).name
        ax.set_title(f"{title}\nmIoU {_fmt(res.matrix.miou).strip()}", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(str(tmp), dpi=110, format="png")
    plt.close(fig)
    return out


def format_comparison(results: Sequence[EvalResult]) -> str:
    """One row per model: mIoU, OA and per-class IoU / F1."""
    names = [n for n in results[0].names if n != OTHER]
    cols = ["mIoU", "OA"] + [f"IoU {n}" for n in names] + [f"F1 {n}" for n in names]
    labels = [str(r.extra.get("model", Path(r.prediction).name)) for r in results]
    width = max(5, *(len(m) for m in labels))
    cw = max(8, *(len(c) for c in cols))
    lines = [f"{'model':<{width}}  " + "  ".join(f"{c:>{cw}}" for c in cols)]
    lines.append("-" * len(lines[0]))
    for label, r in zip(labels, results, strict=True):
        pc = r.matrix.per_class()
        idx = [r.names.index(n) for n in names]
        vals = [r.matrix.miou, r.matrix.overall_accuracy]
        vals += [pc["iou"][i] for i in idx] + [pc["f1"][i] for i in idx]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{_fmt(v):>{cw}}" for v in vals))
    lines.append(f"\npixels scored: {results[0].matrix.total} (truth {results[0].truth})")
    return "\n".join(lines)
