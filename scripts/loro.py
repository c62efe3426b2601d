"""Leave-one-region-out scores of a training config: one fold per data entry.

Run from the repository root::

    python scripts/loro.py workflows/train-forest-water.yaml [--entries 1,2,3] [--out DIR]

Each fold is ``geoseg train CONFIG --hold-out K --out DIR/foldK.bundle``: the model of
fold K never trains on data entry K (a region, sensor and season of its own), and
every labelled pixel of entry K is its validation. The best epoch is picked on that
entry, so a fold's figure is the best the recipe reached there, an upper bound on what
one fixed epoch count would give; the figures say how the recipe travels between the
training regions, the independent scenes of ``scripts/benchmark_models.py`` say how the
shipped bundle does on regions no fold saw. Beside each fold: the share of the held-out
entry's most common class (the score of a model that always answers it, on the same
pixels). An entry whose labels are weak (an index threshold) gives agreement with that
index, not accuracy: weak labels never serve as truth, so leave such rows out of a card.
Writes ``DIR/loro.md`` and ``DIR/loro.json``; the fold bundles stay in DIR, and
a fold already there is reused (``--retrain`` trains it again). Training time is one
``geoseg train`` per fold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def fold_scores(record: Path) -> dict:
    rec = json.loads(record.read_text())
    val = rec["validation"]
    names = list(rec["classes"])  # class names, in id order
    conf = np.array(val["confusion"], dtype=np.int64)
    truth = conf.sum(axis=1)
    top = int(np.argmax(truth))
    return {
        "pixels": int(conf.sum()),
        "overall_accuracy": val["overall_accuracy"],
        "miou": val["miou"],
        "per_class_iou": {n: val["per_class"].get(n, {}).get("iou") for n in names},
        "truth_pixels": {n: int(t) for n, t in zip(names, truth, strict=True) if t},
        "majority": {"class": names[top], "accuracy": float(truth[top] / max(conf.sum(), 1))},
        "best_epoch": rec["best_epoch"],
        "image": rec["split"]["description"],
    }


def main() -> int:
    from geoseg.schemes import load_scheme
    from geoseg.train import load_config

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--entries", help="data entries to hold out one at a time (default: all)")
    p.add_argument("--out", type=Path, help="folder for the folds (default results/loro/NAME)")
    p.add_argument("--retrain", action="store_true", help="train folds already in --out again")
    args = p.parse_args()
    cfg = load_config(args.config)
    n = len(cfg.data)
    entries = [int(k) for k in args.entries.split(",")] if args.entries else list(range(1, n + 1))
    out = args.out or ROOT / "results" / "loro" / (cfg.name or Path(args.config).stem)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for k in entries:
        image = Path(cfg.data[k - 1].image).name
        print(f"fold {k}/{n}: holding out {image}", flush=True)
        bundle = out / f"fold{k}.bundle"
        record = Path(str(bundle) + ".train") / "record.json"
        if bundle.exists() and record.exists() and not args.retrain:
            print(f"  reusing {bundle} (--retrain to train it again)", flush=True)
            results[image] = fold_scores(record)
            continue
        cmd = [sys.executable, "-m", "geoseg", "train", args.config, "--hold-out", str(k),
               "--out", str(bundle)]  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:]
            print(f"  fold {k} failed: {' '.join(last)}", flush=True)
            results[image] = {"error": " ".join(last)}
            continue
        results[image] = fold_scores(record)
        r = results[image]
        print(
            f"  OA {r['overall_accuracy']:.3f}, mIoU {r['miou']:.3f} over {r['pixels']} px; "
            f"always {r['majority']['class']}: {r['majority']['accuracy']:.3f}",
            flush=True,
        )
    (out / "loro.json").write_text(json.dumps(results, indent=2) + "\n")
    scheme = cfg.scheme if "." not in cfg.scheme else str(cfg.path(cfg.scheme))  # as training
    classes = [c.name for c in load_scheme(scheme)]
    lines = [
        f"# Leave one region out: `{args.config}`",
        "",
        "Written by `python scripts/loro.py`. Each row: a model trained without that data "
        "entry, scored on all of its labelled pixels (best epoch picked there).",
        "",
        "| held out | pixels | overall accuracy | mIoU | "
        + " | ".join(f"IoU {c}" for c in classes)
        + " | always the commonest class |",
        "|---|---:|---:|---:|" + "---:|" * len(classes) + "---|",
    ]
    for image, r in results.items():
        if "error" in r:
            lines.append(f"| {image} | failed: {r['error']} |")
            continue
        ious = [r["per_class_iou"].get(c) for c in classes]
        lines.append(
            f"| {image} | {r['pixels']} | {r['overall_accuracy']:.3f} | {r['miou']:.3f} | "
            + " | ".join("n/a" if v is None else f"{v:.3f}" for v in ious)
            + f" | {r['majority']['accuracy']:.3f} ({r['majority']['class']}) |"
        )
    (out / "loro.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'loro.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
