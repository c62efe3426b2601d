"""The training loop: seeded, deterministic on CPU, resumable, best-on-validation.

Every random draw comes from one seeded NumPy generator (chips, augmentations)
and torch's seeded generator (initial weights); with
``torch.use_deterministic_algorithms`` on CPU the same config, seed and thread
count give the same weights bit for bit. After each epoch a checkpoint
(:mod:`geoseg.train.checkpoint`) holds every state, so a run interrupted after
epoch *k* and resumed continues exactly as if it had never stopped.

Length: about 410 lines, most of them :func:`train` itself and the state it saves
and restores (:class:`_State`); the two change together, so they stay together.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.analysis.metrics import ConfusionMatrix
from geoseg.errors import CheckpointError
from geoseg.schemes import ClassInfo, load_scheme
from geoseg.train.augment import make_batch
from geoseg.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from geoseg.train.config import TrainConfig
from geoseg.train.data import (
    ChipSampler,
    TrainingImage,
    class_counts,
    load_images,
    normalize_images,
    resolve_normalization,
    split_images,
    val_input,
    val_windows,
)
from geoseg.train.labels import IGNORE
from geoseg.train.losses import build_loss, resolve_class_weights

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, Any]], None]
"""Called after each epoch's checkpoint with ``(epoch, entry)``; may raise to stop."""


@dataclass
class Prepared:
    """Everything the loop needs that comes from the data, computed once."""

    classes: tuple[ClassInfo, ...]
    images: list[TrainingImage]
    split: dict[str, Any]
    normalization: dict[str, Any]
    counts: list[int]
    class_weights: list[float] | None
    sampler: ChipSampler
    windows: list[tuple[int, tuple[int, int, int, int]]]


@dataclass
class TrainResult:
    """What a run produced: the best weights and the history behind them."""

    cfg: TrainConfig
    prepared: Prepared
    model: Any
    best_state: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    best_val: dict[str, Any]
    device: str
    stopped_early: bool
    resumed_from: int | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def prepare_data(cfg: TrainConfig) -> Prepared:
    """Load, label, split and normalize the training data; set up the chip sampler."""
    classes = load_scheme(cfg.scheme if "." not in cfg.scheme else str(cfg.path(cfg.scheme)))
    images = load_images(cfg, classes)
    split = split_images(images, cfg)
    spec = resolve_normalization(images, cfg)
    normalize_images(images, spec)
    counts = class_counts(images, len(classes))
    sampler = ChipSampler(images, cfg, len(classes))
    windows = [(k, w) for k, img in enumerate(images) for w in val_windows(img, cfg.split.block)]
    return Prepared(
        classes=classes,
        images=images,
        split=split,
        normalization=spec,
        counts=[int(c) for c in counts],
        class_weights=resolve_class_weights(cfg.loss, counts),
        sampler=sampler,
        windows=windows,
    )


@contextlib.contextmanager
def deterministic(seed: int, threads: int | None) -> Iterator[None]:
    """Seed Python, NumPy and torch; deterministic kernels and a fixed thread count."""
    import torch

    was = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may draw from the legacy RNG
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)
        torch.set_num_threads(old_threads)


def build_optimizer(cfg: TrainConfig, model: Any, total_steps: int) -> tuple[Any, Any]:
    """The optimizer and (per-step) scheduler a config asks for."""
    import torch

    oc = cfg.optimizer
    params = model.parameters()
    opt: Any
    if oc.name == "adamw":
        opt = torch.optim.AdamW(params, lr=oc.lr, weight_decay=oc.weight_decay)
    elif oc.name == "adam":
        opt = torch.optim.Adam(params, lr=oc.lr, weight_decay=oc.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=oc.lr, momentum=oc.momentum, weight_decay=oc.weight_decay)
    sched: Any = None
    if cfg.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=oc.lr, total_steps=total_steps, pct_start=0.15
        )
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return opt, sched


def _validation_logits(
    model: Any, prep: Prepared, device: str, amp: bool
) -> Iterator[tuple[Any, NDArray[np.uint8]]]:
    """``(logits, truth)`` of every validation window, the model in eval mode."""
    import torch

    model.eval()
    with torch.inference_mode():
        for k, window in prep.windows:
            x, y = val_input(prep.images[k], window)
            xt = torch.from_numpy(x)[None].to(device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits = model(xt)
            yield logits[0], y


def evaluate(model: Any, prep: Prepared, device: str, amp: bool) -> ConfusionMatrix:
    """Confusion matrix of the model over every validation window."""
    cm = ConfusionMatrix(len(prep.classes), names=[c.name for c in prep.classes])
    for logits, y in _validation_logits(model, prep, device, amp):
        cm.update(logits.argmax(0).cpu().numpy(), y)
    return cm


def validation_confidence(model: Any, prep: Prepared, device: str, amp: bool) -> float | None:
    """Mean confidence (the winning class's softmax probability) over labelled validation pixels.

    Recorded in the bundle's domain (``val_mean_confidence``): ``predict --confidence``
    flags a scene whose mean confidence falls far below it (results look degenerate).
    ``None`` without validation pixels.
    """
    import torch

    total, count = 0.0, 0
    for logits, y in _validation_logits(model, prep, device, amp):
        conf = torch.softmax(logits.float(), 0).max(0).values.cpu().numpy()
        labelled = y != IGNORE
        total += float(conf[labelled].sum(dtype=np.float64))
        count += int(labelled.sum())
    return total / count if count else None


def steps_per_epoch(cfg: TrainConfig, sampler: ChipSampler) -> int:
    """Optimizer steps in one epoch."""
    n = cfg.sampling.chips_per_epoch
    if cfg.sampling.mode == "grid":
        n = min(n, len(sampler.grid))
    return max(1, math.ceil(n / cfg.batch))


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="batch",
        leave=True,
        file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()),
    )


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    max_epochs_this_run: int | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    prepared: Prepared | None = None,
) -> TrainResult:
    """Train a model as ``cfg`` says; return the best-on-validation weights and history.

    Parameters
    ----------
    cfg
        The training configuration.
    resume
        Continue from ``<record dir>/checkpoint.safetensors`` if it exists.
    max_epochs_this_run
        Stop (with a checkpoint) after this many epochs of this call: a planned
        interruption, continued later with ``resume=True``.
    on_epoch
        Called after each epoch's checkpoint is written; may raise (e.g.
        ``KeyboardInterrupt``) to stop.
    progress
        Draw a progress bar on a TTY.
    prepared
        Data from :func:`prepare_data` (to share between runs in tests).
    """
    from geoseg.models.arch import build_model
    from geoseg.models.device import resolve_device

    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    with deterministic(cfg.seed, cfg.threads):
        import torch

        prep = prepared or prepare_data(cfg)
        model = build_model(
            cfg.model.architecture,
            encoder=cfg.model.encoder,
            in_channels=len(cfg.bands),
            classes=len(prep.classes),
            params=cfg.model.arch_params,
        ).to(device)
        steps = steps_per_epoch(cfg, prep.sampler)
        opt, sched = build_optimizer(cfg, model, steps * cfg.epochs)
        amp = cfg.amp and device.startswith("cuda")
        scaler = torch.amp.GradScaler("cuda") if amp else None
        loss_fn = build_loss(cfg.loss, prep.class_weights).to(device)
        rng = np.random.default_rng(cfg.seed)
        state = _State(best_state=_cpu_state(model))
        ckpt = cfg.record_dir / CHECKPOINT
        resumed_from = None
        if resume and ckpt.exists():
            state.best_state, progress_doc = load_checkpoint(
                ckpt,
                model=model,
                optimizer=opt,
                scheduler=sched,
                scaler=scaler,
                rng=rng,
                device=device,
            )
            if progress_doc.get("config_sha256") != config_sha256(cfg):
                raise CheckpointError(
                    f"{ckpt} was written by a different training configuration; resume with "
                    "the same config, or delete it (or drop --resume) to start over"
                )
            state.load(progress_doc)
            resumed_from = state.epoch
            log.info("resumed from %s after epoch %d", ckpt, state.epoch)
        run_epochs = 0
        while state.epoch < cfg.epochs and not state.stopped_early:
            if max_epochs_this_run is not None and run_epochs >= max_epochs_this_run:
                break
            epoch = state.epoch + 1
            te = time.perf_counter()
            chips = prep.sampler.epoch(rng)
            model.train()
            losses = []
            bar = _progress_bar(steps, f"epoch {epoch}/{cfg.epochs}", progress)
            for s in range(steps):
                refs = chips[s * cfg.batch : (s + 1) * cfg.batch] or chips[: cfg.batch]
                x, y = make_batch(
                    prep.images,
                    refs,
                    chip=cfg.model.chip,
                    aug=cfg.augment,
                    rng=rng,
                    bands=cfg.bands,
                )
                x, y = x.to(device), y.to(device)
                with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                    loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                if sched is not None:
                    sched.step()
                losses.append(float(loss.item()))
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_miou=state.last_miou)
            t_train = time.perf_counter() - te
            cm = evaluate(model, prep, device, amp)
            entry = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "lr": float(opt.param_groups[0]["lr"]),
                "val": cm.to_dict(),
                "seconds": {"train": t_train, "val": time.perf_counter() - te - t_train},
            }
            improved = state.record(entry, cfg.early_stopping.min_delta)
            if improved:
                state.best_state = _cpu_state(model)
            if cfg.early_stopping.patience and state.stale >= cfg.early_stopping.patience:
                state.stopped_early = True
            bar.set_postfix(loss=f"{entry['train_loss']:.4f}", val_miou=state.last_miou)
            bar.close()
            log.info(
                "epoch %d/%d loss %.4f val mIoU %s%s",
                epoch,
                cfg.epochs,
                entry["train_loss"],
                state.last_miou,
                " (best)" if improved else "",
            )
            save_checkpoint(
                ckpt,
                model=model,
                best_state=state.best_state,
                optimizer=opt,
                scheduler=sched,
                scaler=scaler,
                rng=rng,
                progress={**state.dump(), "config_sha256": config_sha256(cfg)},
            )
            run_epochs += 1
            if on_epoch is not None:
                on_epoch(epoch, entry)
        model.load_state_dict({k: v.to(device) for k, v in state.best_state.items()})
        model.eval()
        val_confidence = validation_confidence(model, prep, device, amp)
    best = next((h for h in state.history if h["epoch"] == state.best_epoch), None)
    return TrainResult(
        cfg=cfg,
        prepared=prep,
        model=model.cpu(),
        best_state=state.best_state,
        history=state.history,
        best_epoch=state.best_epoch,
        best_val=best["val"] if best else {},
        device=device,
        stopped_early=state.stopped_early,
        resumed_from=resumed_from,
        seconds=time.perf_counter() - t0,
        extra={
            "finished": state.epoch >= cfg.epochs or state.stopped_early,
            "val_mean_confidence": val_confidence,
        },
    )


RESUME_NEUTRAL = ("base_dir", "out", "record", "card", "card_notes", "description", "threads")
"""Config keys that may change between an interrupted run and its resumption."""


def config_sha256(cfg: TrainConfig) -> str:
    """Hash of the settings that shape the weights (a checkpoint belongs to one)."""
    import hashlib
    import json

    doc = {k: v for k, v in cfg.to_dict().items() if k not in RESUME_NEUTRAL}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _cpu_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@dataclass
class _State:
    """Loop progress that a checkpoint must carry (besides tensors and RNGs)."""

    best_state: dict[str, Any]
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_miou: float = -1.0
    stale: int = 0
    stopped_early: bool = False

    @property
    def last_miou(self) -> str:
        if not self.history or self.history[-1]["val"]["miou"] is None:
            return "-"
        return f"{self.history[-1]['val']['miou']:.4f}"

    def record(self, entry: dict[str, Any], min_delta: float) -> bool:
        """Append an epoch; whether it is the new best on validation mIoU."""
        self.epoch = entry["epoch"]
        self.history.append(entry)
        miou = entry["val"]["miou"]
        if miou is not None and miou > self.best_miou + min_delta:
            self.best_miou, self.best_epoch, self.stale = miou, self.epoch, 0
            return True
        self.stale += 1
        return False

    def dump(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "history": copy.deepcopy(self.history),
            "best_epoch": self.best_epoch,
            "best_miou": self.best_miou,
            "stale": self.stale,
            "stopped_early": self.stopped_early,
        }

    def load(self, doc: dict[str, Any]) -> None:
        self.epoch = int(doc["epoch"])
        self.history = list(doc["history"])
        self.best_epoch = int(doc["best_epoch"])
        self.best_miou = float(doc["best_miou"])
        self.stale = int(doc["stale"])
        self.stopped_early = bool(doc["stopped_early"])


def record_path(cfg: TrainConfig) -> Path:
    """Where the training record JSON goes."""
    return cfg.record_dir / "record.json"
