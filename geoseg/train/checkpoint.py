"""Resume checkpoints without pickle: tensors in safetensors, everything else in JSON.

``torch.save`` of a dict is a pickle, and loading a pickle runs code, so a
checkpoint here is one safetensors file: model, best-so-far and optimizer
tensors plus the torch RNG state as tensors, and a JSON document (epoch,
history, optimizer hyper-parameters, scheduler and AMP scaler state, NumPy
and Python RNG states) in its metadata. It is written atomically, so an
interruption while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.errors import (
    CheckpointError as CheckpointError,  # re-exported: defined in errors since 0.2
)

META_KEY = "geoseg-train"
CHECKPOINT = "checkpoint.safetensors"


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optimizer state dict -> (tensors, JSON-able rest)."""
    import torch

    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entry in doc["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": doc["param_groups"]}


def save_checkpoint(
    path: Path,
    *,
    model: Any,
    best_state: dict[str, Any],
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    rng: np.random.Generator,
    progress: dict[str, Any],
) -> None:
    """Write everything needed to continue training after ``progress['epoch']``."""
    import torch
    from safetensors.torch import save_file

    from geoseg.atomic import atomic_path

    tensors: dict[str, Any] = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
    }
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    opt_tensors, opt_doc = _split_optimizer(optimizer.state_dict())
    tensors.update({k: v.detach().cpu().contiguous() for k, v in opt_tensors.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    doc = {
        "progress": progress,
        "optimizer": opt_doc,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng_numpy": rng.bit_generator.state,
        "rng_python": random.getstate(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(doc)})


def load_checkpoint(
    path: Path,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    rng: np.random.Generator,
    device: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore the states saved by :func:`save_checkpoint`; return (best state, progress)."""
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            doc = json.loads((f.metadata() or {})[META_KEY])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"cannot resume from {path} ({str(err).splitlines()[0]}); delete it to start over"
        ) from err
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    try:
        model.load_state_dict(model_state, strict=True)
        optimizer.load_state_dict(_join_optimizer(tensors, doc["optimizer"]))
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"{path} does not match this model/optimizer ({str(err).splitlines()[0]}); "
            "delete it or train with the configuration that wrote it"
        ) from err
    if scheduler is not None and doc["scheduler"] is not None:
        scheduler.load_state_dict(doc["scheduler"])
    if scaler is not None and doc["scaler"] is not None:
        scaler.load_state_dict(doc["scaler"])
    rng.bit_generator.state = doc["rng_numpy"]
    py = doc["rng_python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors.get(f"rng.cuda.{i}") for i in range(torch.cuda.device_count())]
    present = [c for c in cuda if c is not None]
    if device.startswith("cuda") and present and len(present) == len(cuda):
        torch.cuda.set_rng_state_all(present)
    return best, dict(doc["progress"])
