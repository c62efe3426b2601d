"""Train the demo bundle shipped with geoseg: ``landcover-nlcd8``.

A small U-Net (ResNet-18 encoder cut at depth 3, about 0.9 M parameters) trained
on one Landsat-8 Level-1 scene of Zion National Park against NLCD 2011 labels
generalized to 8 classes (``data/zion``). It exists so that geoseg has a real,
honest model to demonstrate and test with; it is not a production land-cover
model, and the model card it writes says so.

The run is seeded and deterministic on CPU: the same seed, thread count and
library versions give the same weights and the same metrics, so the shipped
bundle can be reproduced with::

    python scripts/train_sample_model.py

Validation is spatial, never random pixels: a contiguous band of rows (the top
25 % of the scene by default) is held out, separated from the training rows by a
gap wider than any training chip's reach into it, so no chip straddles both.
Training chips are normalized with :func:`geoseg.normalize.build_normalizer`
from the very spec stored in the bundle, so training and inference cannot
disagree about preprocessing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import segmentation_models_pytorch as smp
import torch
from numpy.typing import NDArray

from geoseg.bundle import ModelBundle, load_bundle
from geoseg.models import build_model
from geoseg.normalize import Normalizer, build_normalizer, validate_normalization
from geoseg.schemes import ClassInfo, load_scheme

ROOT = Path(__file__).resolve().parent.parent
IMAGE = Path("data/zion/landsat8_2015-08-18_b2345.tif")
LABELS = Path("data/zion/nlcd2011_8class.tif")
DEFAULT_OUT = Path("geoseg/bundles/landcover-nlcd8.bundle")
DEFAULT_CARD = Path("docs/models/landcover-nlcd8.md")

NAME = "landcover-nlcd8"
ARCHITECTURE = "Unet"
ENCODER = "resnet18"
ARCH_PARAMS: dict[str, Any] = {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}
BANDS = ["blue", "green", "red", "nir"]
INPUT_UNITS = "Landsat-8 Collection 1 Level-1 DN (uint16)"
NODATA_DN = 65535
IGNORE = 255
"""Training label for pixels without an NLCD label (0) or with nodata input."""
DEPTH_MULTIPLE = 8
"""Input sides must be multiples of 2**encoder_depth for the U-Net skips to align."""
CHIP_SIZES = (128, 160, 192, 224, 256)


@dataclass(frozen=True)
class Split:
    """Row ranges ``[start, stop)`` of the training and validation regions."""

    train: tuple[int, int]
    val: tuple[int, int]
    holdout: str
    gap: int

    def describe(self, rows: int, cols: int) -> str:
        """One sentence for the card and provenance."""
        return (
            f"spatial: validation = rows {self.val[0]}-{self.val[1] - 1} ({self.holdout} "
            f"{(self.val[1] - self.val[0]) / rows:.0%} of the scene), training = rows "
            f"{self.train[0]}-{self.train[1] - 1}, all {cols} columns; the {self.gap} rows "
            "between them are used by neither"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    p.add_argument("--steps-per-epoch", type=int, default=40, help="batches per epoch (default 40)")
    p.add_argument("--batch-size", type=int, default=8, help="chips per batch (default 8)")
    p.add_argument(
        "--lr", type=float, default=3e-3, help="peak learning rate, one-cycle (default 3e-3)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch CPU threads (default 2; results are reproducible per thread count)",
    )
    p.add_argument(
        "--holdout",
        choices=("top", "bottom"),
        default="top",
        help="which rows to hold out for validation (default top; see the card)",
    )
    p.add_argument("--holdout-fraction", type=float, default=0.25)
    p.add_argument("--gap", type=int, default=64, help="rows between train and validation (>= 32)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"bundle path (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--card",
        type=Path,
        default=DEFAULT_CARD,
        help=f"model card markdown path (default {DEFAULT_CARD})",
    )
    args = p.parse_args(argv)
    if args.gap < 32:
        p.error("--gap must be at least 32 rows so no chip straddles train and validation")
    if not 0.05 <= args.holdout_fraction <= 0.5:
        p.error("--holdout-fraction must be in [0.05, 0.5]")
    return args


# -- data --------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_data(root: Path) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """DN as float32 ``(bands, rows, cols)`` with nodata set to 0 (as ``Scene.read``
    fills it at inference), and training labels ``0..7`` with ``IGNORE``."""
    with rasterio.open(root / IMAGE) as ds:
        raw = ds.read()
    with rasterio.open(root / LABELS) as ds:
        nlcd = ds.read(1)
    if raw.shape[1:] != nlcd.shape:
        raise SystemExit(f"{IMAGE} {raw.shape[1:]} and {LABELS} {nlcd.shape} are not on one grid")
    valid = (raw != NODATA_DN).all(axis=0)
    image = raw.astype(np.float32)
    image[:, ~valid] = 0.0
    labels = np.where((nlcd >= 1) & (nlcd <= 8) & valid, nlcd.astype(np.int16) - 1, IGNORE)
    return image, labels.astype(np.uint8)


def make_split(rows: int, holdout: str, fraction: float, gap: int) -> Split:
    n_val = int(round(rows * fraction))
    if holdout == "top":
        return Split(train=(n_val + gap, rows), val=(0, n_val), holdout=holdout, gap=gap)
    return Split(train=(0, rows - n_val - gap), val=(rows - n_val, rows), holdout=holdout, gap=gap)


def normalization_spec(image: NDArray[np.float32], labels: NDArray[np.uint8]) -> dict[str, Any]:
    """Per-band mean/std in DN over the valid pixels of the training region."""
    valid = labels != IGNORE  # IGNORE also marks nodata input
    px = image[:, valid].astype(np.float64)
    spec = {
        "type": "fixed",
        "mean": [round(float(v), 2) for v in px.mean(axis=1)],
        "std": [round(float(v), 2) for v in px.std(axis=1)],
    }
    return validate_normalization(spec, len(BANDS))


def class_weights(counts: NDArray[np.int64], cap: float = 10.0) -> NDArray[np.float32]:
    """Inverse square-root frequency, capped, scaled so the mean pixel weight is 1.

    The square root (not plain inverse frequency) because the chip sampler
    already over-samples rare classes; the cap keeps a class with a few hundred
    pixels from dominating the loss.
    """
    freq = counts / counts.sum()
    w = np.sqrt(freq.max() / np.maximum(freq, 1e-12))
    w = np.minimum(w, cap)
    w /= (freq * w).sum()
    return w.astype(np.float32)


class ChipSampler:
    """Random square training chips (with flips and 90° rotations) from a region.

    Half the chips are placed on a pixel of a uniformly drawn class so that the
    rare classes (water, wetlands, herbaceous) are seen at all; the others are
    placed uniformly.
    """

    def __init__(
        self,
        image: NDArray[np.float32],
        labels: NDArray[np.uint8],
        rng: np.random.Generator,
        n_classes: int,
    ) -> None:
        self.image, self.labels, self.rng = image, labels, rng
        flat = labels.ravel()
        self.by_class = [np.flatnonzero(flat == c) for c in range(n_classes)]
        self.by_class = [ix for ix in self.by_class if ix.size]

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        size = int(self.rng.choice(CHIP_SIZES))
        rows, cols = self.labels.shape
        xs, ys = [], []
        for _ in range(n):
            if self.rng.random() < 0.5:
                pool = self.by_class[int(self.rng.integers(len(self.by_class)))]
                r, c = divmod(int(pool[self.rng.integers(pool.size)]), cols)
                r0 = int(np.clip(r - self.rng.integers(size), 0, rows - size))
                c0 = int(np.clip(c - self.rng.integers(size), 0, cols - size))
            else:
                r0 = int(self.rng.integers(rows - size + 1))
                c0 = int(self.rng.integers(cols - size + 1))
            x = self.image[:, r0 : r0 + size, c0 : c0 + size]
            y = self.labels[r0 : r0 + size, c0 : c0 + size]
            k = int(self.rng.integers(4))
            x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
            if self.rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, ::-1]
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)).long()


# -- metrics -----------------------------------------------------------------


def confusion(
    truth: NDArray[np.uint8], pred: NDArray[np.integer[Any]], n: int
) -> NDArray[np.int64]:
    """``cm[t, p]`` over pixels whose truth is not ``IGNORE``."""
    keep = truth != IGNORE
    idx = truth[keep].astype(np.int64) * n + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def scores(cm: NDArray[np.int64], names: Sequence[str]) -> dict[str, Any]:
    """Per-class IoU/F1/precision/recall, mIoU and macro F1 over classes present, OA."""
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (support + predicted - tp)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = tp / support
        f1 = 2 * tp / (support + predicted)
    present = support > 0
    per_class = {
        name: {
            "pixels": int(support[i]),
            "iou": float(iou[i]),
            "f1": float(f1[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
        }
        for i, name in enumerate(names)
        if present[i]
    }
    return {
        "miou": float(iou[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "overall_accuracy": float(tp.sum() / cm.sum()),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def predict_region(model: torch.nn.Module, x: NDArray[np.float32]) -> NDArray[np.int64]:
    """Argmax of one whole-region forward pass (reflect-padded to a multiple of 8)."""
    _, rows, cols = x.shape
    pr, pc = -rows % DEPTH_MULTIPLE, -cols % DEPTH_MULTIPLE
    xp = np.pad(x, ((0, 0), (0, pr), (0, pc)), mode="reflect")
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(xp))[None])
    return logits[0, :, :rows, :cols].argmax(dim=0).numpy()


# -- training ----------------------------------------------------------------


def train(
    args: argparse.Namespace,
    model: torch.nn.Module,
    sampler: ChipSampler,
    weights: NDArray[np.float32],
    val_x: NDArray[np.float32],
    val_y: NDArray[np.uint8],
    names: Sequence[str],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], int]:
    """Train; return the best-on-validation state, the epoch log and the best epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    total = args.epochs * args.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=total, pct_start=0.15
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights), ignore_index=IGNORE)
    best_state, best_miou, best_epoch, log = copy.deepcopy(model.state_dict()), -1.0, 0, []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        losses = []
        for _ in range(args.steps_per_epoch):
            x, y = sampler.batch(args.batch_size)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        val = scores(confusion(val_y, predict_region(model, val_x), len(names)), names)
        entry = {
            "epoch": epoch,
            "train_loss": round(float(np.mean(losses)), 4),
            "val_miou": round(val["miou"], 4),
            "val_oa": round(val["overall_accuracy"], 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log.append(entry)
        mark = ""
        if val["miou"] > best_miou:
            best_miou, best_epoch, best_state = (
                val["miou"],
                epoch,
                copy.deepcopy(model.state_dict()),
            )
            mark = "  *best"
        print(
            f"epoch {epoch:3d}/{args.epochs}  train loss {entry['train_loss']:.4f}  "
            f"val mIoU {entry['val_miou']:.4f}  val OA {entry['val_oa']:.4f}  "
            f"({entry['seconds']:.0f} s){mark}",
            flush=True,
        )
    return best_state, log, best_epoch


def batch_invariant(
    model: torch.nn.Module, x: NDArray[np.float32], n: int = 8, size: int = 256
) -> bool:
    """Forward of ``n`` chips as one batch equals forwarding them one by one, exactly."""
    rows, cols = x.shape[1:]
    step_r = max(1, (rows - size) // max(1, n // 2 - 1))
    step_c = max(1, (cols - size) // 3)
    origins = [
        (min(i * step_r, rows - size), min(j * step_c, cols - size))
        for i in range(n // 4 or 1)
        for j in range(4)
    ][:n]
    chips = torch.from_numpy(np.stack([x[:, r : r + size, c : c + size] for r, c in origins]))
    model.eval()
    with torch.inference_mode():
        batched = model(chips)
        single = torch.cat([model(chips[i : i + 1]) for i in range(len(chips))])
    return bool(torch.equal(batched, single))


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# -- model card --------------------------------------------------------------


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}"


def summary_row(label: str, m: dict[str, Any]) -> str:
    """One markdown table row: mIoU, macro F1 and overall accuracy in percent."""
    vals = (m["miou"], m["macro_f1"], m["overall_accuracy"])
    return f"| {label} | " + " | ".join(_pct(v) for v in vals) + " |"


def confusion_notes(cm: NDArray[np.int64], names: Sequence[str]) -> str:
    """Markdown bullets naming where each poorly recalled class goes, from ``cm``."""
    lines = []
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    for i, name in enumerate(names):
        if support[i] == 0 or cm[i, i] >= 0.5 * support[i]:
            continue
        off = cm[i].copy()
        off[i] = 0
        j = int(np.argmax(off))
        lines.append(
            f"- **{name}**: only {100 * cm[i, i] / support[i]:.0f} % of the {support[i]:,} "
            f"held-out NLCD {name} pixels are recognized; {100 * off[j] / support[i]:.0f} % "
            f"are predicted as {names[j]}."
        )
    for j, name in enumerate(names):
        if predicted[j] > 0 and cm[j, j] < 0.5 * predicted[j]:
            col = cm[:, j].copy()
            col[j] = 0
            i = int(np.argmax(col))
            lines.append(
                f"- **{name} is over-predicted**: {predicted[j]:,} held-out pixels are "
                f"predicted {name}, {100 * cm[j, j] / predicted[j]:.0f} % of them correctly; "
                f"most of the rest are NLCD {names[i]}."
            )
    return "\n".join(lines)


def render_card(
    *,
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    baseline_class: str,
    oracle: dict[str, Any],
    oracle_class: str,
    train_counts: dict[str, int],
    spec: dict[str, Any],
    split_text: str,
    args: argparse.Namespace,
    best_epoch: int,
    weights: NDArray[np.float32],
    names: Sequence[str],
    n_params: int,
    invariant: bool,
) -> str:
    rows = []
    for i, name in enumerate(names):
        m = metrics["per_class"].get(name)
        if m is None:
            rows.append(f"| {i + 1} {name} | {train_counts[name]:,} | 0 | – | – | – | – |")
            continue
        rows.append(
            f"| {i + 1} {name} | {train_counts[name]:,} | {m['pixels']:,} | {_pct(m['iou'])} | "
            f"{_pct(m['f1'])} | {_pct(m['precision'])} | {_pct(m['recall'])} |"
        )
    cm = np.asarray(metrics["confusion"])
    cm_rows = [
        f"| **{names[i]}** | " + " | ".join(f"{v:,}" for v in cm[i]) + " |"
        for i in range(len(names))
    ]
    cmd = "python scripts/train_sample_model.py"
    if args.epochs != 12:
        cmd += f" --epochs {args.epochs}"
    return f"""# Model card: `{NAME}`

**A small demo model.** It was trained on *one* Landsat-8 scene of Zion National
Park (Utah, 2015-08-18) so that geoseg ships a real model to demonstrate and test
with. It is not a general land-cover product: expect it to be wrong away from
this scene, and check its maps before using them for anything.

## Model

- Architecture: U-Net, ResNet-18 encoder cut at depth 3, decoder channels 64/32/16
  (segmentation-models-pytorch `{smp.__version__}`), {n_params:,} parameters, trained from
  random initialization (no ImageNet weights). Plain convolutions and eval-mode batch
  norm: the output does not depend on the batch size (forward of 8 chips as a batch vs
  one by one on CPU: {"bit-identical" if invariant else "NOT identical"}).
- Input: 4 bands in this order — blue, green, red, nir — Landsat-8 OLI B2, B3, B4, B5
  as **Collection 1 Level-1 digital numbers (uint16, nodata 65535)**, 30 m pixels.
- Normalization (`fixed`, in DN, from the valid training pixels):
  mean = {spec["mean"]}, std = {spec["std"]}.
  Surface reflectance, top-of-atmosphere reflectance, Collection 2 DN (different
  scaling), other sensors (Sentinel-2, aerial RGB) or other band orders **will not
  work**: the numbers fall outside what the model has seen and the map is garbage.
- Output: 8 classes, NLCD generalized (id = model channel + 1): 1 water,
  2 developed, 3 barren, 4 forest, 5 shrubland, 6 herbaceous, 7 cultivated,
  8 wetlands. Suggested chip 256 px with 32 px overlap.

## Training data

- Image: `{IMAGE}` — Landsat-8 scene LC80380342015230LGN00, 1128 × 1428 px, EPSG:32612.
- Labels: `{LABELS}` — NLCD 2011 land cover generalized to 8 classes on the same grid.
  Both CC0 / US-Government public domain via spDataLarge (see `data/README.md`).
- The labels are not ground truth: NLCD 2011 has its own errors (its published
  overall accuracy is in the low-to-mid 80 % range at Anderson level II, lower for
  shrubland/grassland/barren boundaries in arid terrain), it is 4 years older than
  the image (2011 vs 2015), and its 30 m pixels are already smoothed. Agreement
  with NLCD is therefore capped well below 100 % even for a perfect model, and
  the metrics below measure agreement with NLCD, not accuracy on the ground.

## Training procedure

- Split — {split_text}.
  The top band is held out by default because the southern
  (bottom) part of the scene holds almost all wetland pixels; holding it out would
  leave about 300 wetland pixels to train on.
- Random chips of 128–256 px from the training rows, half of them centred on a
  pixel of a uniformly drawn class; random 90° rotations and flips.
- Loss: cross-entropy, pixels without a label ignored, class weights (inverse
  square-root training frequency, capped at 10×):
  {", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights, strict=True))}.
- AdamW (weight decay 1e-4), one-cycle learning rate peaking at {args.lr}, batch
  {args.batch_size}, {args.epochs} epochs × {args.steps_per_epoch} batches; the weights of the
  epoch with the best validation mIoU (epoch {best_epoch}) were kept. Note that this
  choice, and the few settings tried while writing the script, used the validation
  region, so its numbers are slightly optimistic.
- CPU only, {args.threads} threads, seed {args.seed}, `torch.use_deterministic_algorithms(True)`,
  torch `{torch.__version__}`; 8–10 min on 2 idle CPU cores, about 20 min on a busy
  shared machine (seconds per epoch are in the provenance).

## Validation (spatially held-out rows, whole region, agreement with NLCD 2011)

| class | train px | val px | IoU % | F1 % | precision % | recall % |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

| | mIoU % | macro F1 % | overall accuracy % |
|---|---:|---:|---:|
{summary_row("this model", metrics)}
{summary_row(f'majority baseline: always "{baseline_class}" (training majority)', baseline)}
{summary_row(f'oracle majority: always "{oracle_class}" (validation majority)', oracle)}

mIoU and macro F1 average the classes present in the validation region. The
held-out rows are mostly forest while the training rows are mostly shrubland, so
the honest trivial baseline (predict the training majority) scores badly on
overall accuracy; the oracle row, which peeks at the validation labels, is the
harder reference for overall accuracy. The validation region was predicted in
one forward pass; geoseg's chipped inference (256 px chips, 32 px overlap)
differs from it only near chip edges.

Confusion matrix (rows = NLCD, columns = prediction, pixels):

| NLCD \\ predicted | {" | ".join(names)} |
|---|{"---:|" * len(names)}
{chr(10).join(cm_rows)}

## Known failure modes

{confusion_notes(np.asarray(metrics["confusion"]), names)}
- **Rare classes.** Water, developed, herbaceous, cultivated and wetlands are each
  under 2 % of the scene (a few hundred to about twenty thousand pixels) and
  spatially clustered; their validation scores rest on a handful of patches and
  move noticeably between epochs and settings. Do not trust this model's areas for
  them.
- **Distribution shift between regions.** The training rows are mostly shrubland,
  the held-out rows (higher, northern terrain) mostly forest; the model carries
  the boundary between the two poorly into terrain it has not seen. NLCD itself
  is least reliable on the shrubland/forest/barren boundaries of arid terrain.
- **Developed** land here is mostly roads and small settlements, thin features at
  30 m; expect them to be missed.
- **One date, one scene.** Late-summer phenology, one sun angle, one atmosphere;
  other seasons or regions are out of distribution.
- **Not tested:** clouds, cloud shadows, snow and nodata (none in the training
  scene); expect arbitrary classes there.

## Reproduce

```
{cmd}
```

The run is deterministic for a given seed, thread count and library versions; the
weights hash, the epoch log and all metrics are recorded in the bundle's provenance
(`geoseg.load_bundle("{NAME}").meta["provenance"]`).
"""


# -- main --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    scheme: tuple[ClassInfo, ...] = load_scheme("nlcd8")
    names = [c.name for c in scheme]
    if [c.id for c in scheme] != list(range(1, 9)):
        raise SystemExit("catalogs/nlcd8.yaml must list ids 1..8 in order (model channel = id - 1)")

    image, labels = read_data(ROOT)
    rows, cols = labels.shape
    split = make_split(rows, args.holdout, args.holdout_fraction, args.gap)
    tr, va = slice(*split.train), slice(*split.val)
    train_y, val_y = labels[tr], labels[va]
    spec = normalization_spec(image[:, tr], train_y)
    normalizer: Normalizer = build_normalizer(spec)
    # The same Normalizer geoseg's engine applies to each (bands, rows, cols) read:
    # an element-wise float32 map, so normalizing the region once equals per chip.
    train_x = normalizer(np.ascontiguousarray(image[:, tr]))
    val_x = normalizer(np.ascontiguousarray(image[:, va]))
    del image

    counts = np.bincount(train_y[train_y != IGNORE], minlength=len(names)).astype(np.int64)
    weights = class_weights(counts)
    train_counts = {n: int(c) for n, c in zip(names, counts, strict=True)}
    print(f"split: {split.describe(rows, cols)}")
    print(f"normalization: mean {spec['mean']} std {spec['std']}")
    print("train pixels: " + ", ".join(f"{n} {c}" for n, c in train_counts.items()))
    print(
        "class weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights, strict=True))
    )

    model = build_model(
        ARCHITECTURE,
        encoder=ENCODER,
        in_channels=len(BANDS),
        classes=len(names),
        params=ARCH_PARAMS,
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {ARCHITECTURE}/{ENCODER} {ARCH_PARAMS}, {n_params:,} parameters")
    sampler = ChipSampler(train_x, train_y, rng, len(names))
    t_train = time.perf_counter()
    best_state, log, best_epoch = train(args, model, sampler, weights, val_x, val_y, names)
    train_s = time.perf_counter() - t_train
    model.load_state_dict(best_state)
    model.eval()

    pred = predict_region(model, val_x)
    metrics = scores(confusion(val_y, pred, len(names)), names)
    majority = int(np.argmax(counts))
    baseline = scores(confusion(val_y, np.full(val_y.shape, majority), len(names)), names)
    val_major = int(np.argmax(np.bincount(val_y[val_y != IGNORE], minlength=len(names))))
    oracle = scores(confusion(val_y, np.full(val_y.shape, val_major), len(names)), names)
    invariant = batch_invariant(model, val_x)
    print(f"best epoch {best_epoch}; training {train_s / 60:.1f} min")
    print(f"{'class':<12}{'val px':>9}{'IoU':>8}{'F1':>8}{'prec':>8}{'recall':>8}")
    for name, m in metrics["per_class"].items():
        print(
            f"{name:<12}{m['pixels']:>9}{m['iou']:>8.3f}{m['f1']:>8.3f}"
            f"{m['precision']:>8.3f}{m['recall']:>8.3f}"
        )
    print(
        f"model     mIoU {metrics['miou']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
        f"OA {metrics['overall_accuracy']:.4f}"
    )
    print(
        f"baseline  mIoU {baseline['miou']:.4f}  macro F1 {baseline['macro_f1']:.4f}  "
        f"OA {baseline['overall_accuracy']:.4f}  (always '{names[majority]}', train majority)"
    )
    print(
        f"oracle    mIoU {oracle['miou']:.4f}  macro F1 {oracle['macro_f1']:.4f}  "
        f"OA {oracle['overall_accuracy']:.4f}  (always '{names[val_major]}', validation majority)"
    )
    print(f"batch invariance (8 chips batched vs one by one, torch.equal): {invariant}")

    card = render_card(
        metrics=metrics,
        baseline=baseline,
        baseline_class=names[majority],
        oracle=oracle,
        oracle_class=names[val_major],
        train_counts=train_counts,
        spec=spec,
        split_text=split.describe(rows, cols),
        args=args,
        best_epoch=best_epoch,
        weights=weights,
        names=names,
        n_params=n_params,
        invariant=invariant,
    )
    provenance = {
        "script": "scripts/train_sample_model.py",
        "command": " ".join(["python", "scripts/train_sample_model.py", *(argv or sys.argv[1:])]),
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "training_data": {
            "image": {"path": str(IMAGE), "sha256": sha256_file(ROOT / IMAGE)},
            "labels": {
                "path": str(LABELS),
                "sha256": sha256_file(ROOT / LABELS),
                "mapping": "NLCD8 id 1..8 -> model channel 0..7; 0 = no label, ignored",
            },
        },
        "split": {
            "description": split.describe(rows, cols),
            "train_rows": list(split.train),
            "val_rows": list(split.val),
            "gap_rows": split.gap,
            "holdout": split.holdout,
        },
        "training": {
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "batch_size": args.batch_size,
            "chip_sizes": list(CHIP_SIZES),
            "optimizer": "AdamW wd=1e-4, OneCycleLR",
            "max_lr": args.lr,
            "loss": "cross-entropy, ignore_index=255, class weights",
            "class_weights": [round(float(w), 4) for w in weights],
            "seed": args.seed,
            "threads": args.threads,
            "best_epoch": best_epoch,
            "train_pixels": train_counts,
            "log": log,
            "train_seconds": round(train_s, 1),
        },
        "metrics": {
            "validation": metrics,
            "majority_baseline": {**baseline, "class": names[majority]},
            "oracle_majority_baseline": {**oracle, "class": names[val_major]},
            "batch_invariant": invariant,
        },
        "weights_sha256": weights_sha256(best_state),
        "versions": {
            "torch": torch.__version__,
            "segmentation_models_pytorch": smp.__version__,
            "numpy": np.__version__,
            "rasterio": rasterio.__version__,
            "python": platform.python_version(),
        },
    }
    bundle = ModelBundle.create(
        name=NAME,
        architecture=ARCHITECTURE,
        encoder=ENCODER,
        arch_params=ARCH_PARAMS,
        model=model,
        bands=BANDS,
        classes=scheme,
        normalization=spec,
        chip=256,
        overlap=32,
        resolution_m=30,
        input_units=INPUT_UNITS,
        description=(
            "Demo land-cover model: 8 generalized NLCD classes from Landsat-8 L1 DN "
            "(blue, green, red, nir), trained on one Zion NP scene; see the card."
        ),
        card=card,
        provenance=provenance,
    )
    out = args.out if args.out.is_absolute() else ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle.save(out)
    card_path = args.card if args.card.is_absolute() else ROOT / args.card
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(card, encoding="utf-8")

    # The saved file must rebuild the very model just trained.
    reloaded = load_bundle(out).build_model()
    probe = torch.from_numpy(np.ascontiguousarray(val_x[:, :256, :256]))[None]
    with torch.inference_mode():
        same = torch.equal(reloaded(probe), model(probe))
    if not same:
        raise SystemExit(f"{out}: the reloaded bundle does not reproduce the trained model")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, reload reproduces outputs: {same})")
    print(f"wrote {card_path}")
    print(f"weights sha256 {provenance['weights_sha256']}")
    print(f"total wall time {(time.perf_counter() - t_start) / 60:.1f} min")
    print(
        json.dumps({"miou": round(metrics["miou"], 4), "oa": round(metrics["overall_accuracy"], 4)})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
