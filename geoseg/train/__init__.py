"""``geoseg train``: train a segmentation model into a bundle that ``predict`` runs.

The pieces, each its own module:

- :mod:`~geoseg.train.config` — the YAML config as validated dataclasses;
- :mod:`~geoseg.train.labels` — class rasters or polygons on the image grid;
- :mod:`~geoseg.train.data` — images read and normalized by the inference code,
  the spatial split, chip sampling;
- :mod:`~geoseg.train.augment`, :mod:`~geoseg.train.losses` — batches and losses;
- :mod:`~geoseg.train.loop` — the seeded, resumable loop;
- :mod:`~geoseg.train.checkpoint` — pickle-free resume checkpoints;
- :mod:`~geoseg.train.output` — bundle, model card, record JSON and curves PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoseg.train.config import TrainConfig, config_from_dict, load_config
from geoseg.train.loop import TrainResult, prepare_data, train


def run_training(
    cfg: TrainConfig, *, resume: bool = False, progress: bool = True, **kwargs: Any
) -> tuple[TrainResult, dict[str, Path]]:
    """Train and, when the run reached its end, write the bundle, record, curves and card.

    Returns the result and the written paths (empty when the run was stopped
    early on purpose by ``max_epochs_this_run``: resume it to finish).
    """
    from geoseg.train.output import write_outputs

    res = train(cfg, resume=resume, progress=progress, **kwargs)
    if not res.extra["finished"]:
        return res, {}
    return res, write_outputs(res)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "config_from_dict",
    "load_config",
    "prepare_data",
    "run_training",
    "train",
]
