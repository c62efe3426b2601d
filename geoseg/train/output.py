"""What a training run leaves behind: the bundle, its model card, the record and curves.

The bundle is the ``predict`` format (:class:`geoseg.models.bundle.ModelBundle`); its
``provenance`` records the training data (paths and SHA-256), the split, the
epochs and the validation metrics, and its ``card`` is the Markdown model card
that ``geoseg bundle info`` prints.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from geoseg.atomic import atomic_path
from geoseg.models.bundle import ModelBundle
from geoseg.models.card import domain_text
from geoseg.records import write_record
from geoseg.train.data import data_record
from geoseg.train.domain import training_domain
from geoseg.train.loop import TrainResult, record_path
from geoseg.versions import TRAIN, versions


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _domain(res: TrainResult, cfg: Any) -> Any:
    """The training domain, with the validation mean confidence the run measured."""
    import dataclasses

    domain = training_domain(res.prepared.images, res.prepared.counts, cfg)
    conf = res.extra.get("val_mean_confidence")
    return dataclasses.replace(domain, val_mean_confidence=round(conf, 4)) if conf else domain


def weights_sha256(state: dict[str, Any]) -> str:
    """SHA-256 over a state dict's names and bytes (what "same weights" means)."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _json_safe(v: Any) -> Any:
    """NaN and infinities as ``None`` (strict JSON has neither)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def build_record(res: TrainResult) -> dict[str, Any]:
    """The training record: config, data hashes, split, per-epoch history, timings."""
    prep = res.prepared
    config = res.cfg.to_dict()
    config.pop("base_dir", None)  # a local absolute path: says nothing about the model
    record: dict[str, Any] = _json_safe(
        {
            "bundle": res.cfg.bundle_name,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": config,
            "data": data_record(prep.images, res.cfg),
            "split": prep.split,
            "normalization": prep.normalization,
            "classes": [c.name for c in prep.classes],
            "train_pixels": dict(zip((c.name for c in prep.classes), prep.counts, strict=True)),
            "class_weights": prep.class_weights,
            "device": res.device,
            "epochs_run": len(res.history),
            "best_epoch": res.best_epoch,
            "stopped_early": res.stopped_early,
            "resumed_from_epoch": res.resumed_from,
            "history": res.history,
            "validation": res.best_val,
            "weights_sha256": weights_sha256(res.best_state),
            "seconds": res.seconds,
            "versions": versions(TRAIN),
        }
    )
    return record


def write_curves(history: list[dict[str, Any]], path: Path) -> Path:
    """Loss and validation mIoU/OA per epoch as a PNG (matplotlib, Agg)."""
    # a bare Figure renders with the Agg canvas and never touches pyplot's global state
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(title="training loss", xlabel="epoch")
    for key, label in (("miou", "val mIoU"), ("overall_accuracy", "val OA")):
        vals = [h["val"][key] if h["val"][key] is not None else math.nan for h in history]
        ax2.plot(epochs, vals, marker="o", label=label)
    ax2.set(title="validation", xlabel="epoch", ylim=(0, 1))
    ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def render_card(res: TrainResult, domain: dict[str, Any]) -> str:
    """The Markdown model card: data, labels, bands, split, metrics, caveats.

    ``domain`` is the bundle's recorded input domain (``InputDomain.to_dict()``).
    """
    cfg, prep = res.cfg, res.prepared
    val = res.best_val or {}
    lines = [
        f"# {cfg.bundle_name}",
        "",
        cfg.description or "A segmentation model trained with `geoseg train`.",
        "",
        "## Inputs",
        "",
        f"- Bands, in order: {', '.join(cfg.bands)}"
        + (f" ({cfg.input_units})" if cfg.input_units else ""),
        f"- Normalization: `{json.dumps(prep.normalization)}`",
        f"- Chip {cfg.model.bundle_chip} px, overlap {cfg.model.overlap} px"
        + (f", trained at {cfg.resolution_m} m" if cfg.resolution_m else ""),
        f"- Model: {cfg.model.architecture} / {cfg.model.encoder} {cfg.model.arch_params}",
        "- Input domain (checked before every prediction; far outside it is refused): "
        + domain_text(domain),
        "",
        "## Training data",
        "",
    ]
    for d in data_record(prep.images, cfg):
        lines.append(
            f"- image `{d['image']}` (sha256 {d['image_sha256'][:12]}…), labels "
            f"`{d['labels']}` (sha256 {d['labels_sha256'][:12]}…)"
            + (f", class attribute `{d['label_field']}`" if d["label_field"] else "")
        )
    lines += [
        "- Labelled training pixels: "
        + ", ".join(f"{c.name} {n}" for c, n in zip(prep.classes, prep.counts, strict=True)),
        f"- Split: {prep.split['description']}; {prep.split['val_labelled_px']} labelled "
        "validation pixels",
        f"- Epochs: {len(res.history)} of {cfg.epochs} (best: {res.best_epoch}"
        + (", stopped early" if res.stopped_early else "")
        + f"), seed {cfg.seed}, loss "
        + " + ".join(f"{t.weight:g}·{t.name}" for t in cfg.loss.terms),
        "",
        "## Validation ("
        + ("a whole region held out" if prep.split["method"] == "region" else "spatially held out")
        + ")",
        "",
        f"mIoU {_pct(val.get('miou'))} %, macro F1 {_pct(val.get('macro_f1'))} %, overall "
        f"accuracy {_pct(val.get('overall_accuracy'))} % over {val.get('pixels', 0)} pixels.",
        "",
        "| class | pixels | IoU % | F1 % | precision % | recall % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in (val.get("per_class") or {}).items():
        lines.append(
            f"| {name} | {m['support']} | {_pct(m['iou'])} | {_pct(m['f1'])} | "
            f"{_pct(m['precision'])} | {_pct(m['recall'])} |"
        )
    lines += [
        "",
        "Scores come from the best epoch's confusion matrix over every labelled validation "
        "pixel, each held-out window predicted in one forward pass with the rest of the "
        "scene masked as nodata. Classes without validation pixels show n/a: they were "
        "not evaluated.",
    ]
    if cfg.card_notes:
        lines += ["", cfg.card_notes.rstrip()]
    return "\n".join(lines) + "\n"


def write_outputs(res: TrainResult) -> dict[str, Path]:
    """Write the bundle, record JSON, curves PNG and (if asked) the Markdown card."""
    cfg, prep = res.cfg, res.prepared
    record = build_record(res)
    domain = _domain(res, cfg).to_dict()
    card = render_card(res, domain)
    provenance = {
        "tool": "geoseg train",
        "date": record["date"],
        "training_data": record["data"],
        "split": prep.split,
        "epochs": {
            "configured": cfg.epochs,
            "run": len(res.history),
            "best": res.best_epoch,
            "stopped_early": res.stopped_early,
        },
        "validation": res.best_val,
        "train_pixels": record["train_pixels"],
        "class_weights": prep.class_weights,
        "config": record["config"],
        "weights_sha256": record["weights_sha256"],
        "versions": record["versions"],
    }
    bundle = ModelBundle.create(
        name=cfg.bundle_name,
        architecture=cfg.model.architecture,
        encoder=cfg.model.encoder,
        arch_params=cfg.model.arch_params,
        model=res.model,
        bands=cfg.bands,
        classes=prep.classes,
        normalization=prep.normalization,
        chip=cfg.model.bundle_chip,
        overlap=cfg.model.overlap,
        resolution_m=cfg.resolution_m,
        input_units=cfg.input_units,
        description=cfg.description,
        card=card,
        provenance=provenance,
    ).with_meta(domain=domain)
    out = cfg.path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"bundle": bundle.save(out)}
    rec_dir = cfg.record_dir
    rec_dir.mkdir(parents=True, exist_ok=True)
    rec = record_path(cfg)
    write_record(rec, record)
    paths["record"] = rec
    paths["curves"] = write_curves(res.history, rec_dir / "curves.png")
    if cfg.card:
        card_path = cfg.path(cfg.card)
        card_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(card_path) as tmp:
            tmp.write_text(card, encoding="utf-8")
        paths["card"] = card_path
    return paths
