"""The run record of a scene: inputs, parameters, versions, tallies, timings, peak memory.

``<stem>_run.json`` is the last file a scene publishes, so it vouches for the
files beside it; the report (:mod:`geoseg.report`) reads it, and a batch
hands it back for a scene it finds already done.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from geoseg.engine.base import Engine
from geoseg.grid.chips import BlockPlan, ChipGrid
from geoseg.io.masks import count_masked
from geoseg.io.normalize import Normalizer
from geoseg.io.scene import Scene
from geoseg.models.bundle import ModelBundle
from geoseg.pipeline.check import bundle_domain, scene_offset
from geoseg.pipeline.merge import Merger
from geoseg.pipeline.options import PredictOptions
from geoseg.sensors.domain import check_result
from geoseg.sensors.presets import get_preset
from geoseg.versions import PREDICT, versions


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    ``VmHWM`` where Linux has it: unlike ``ru_maxrss`` it is not inherited
    from the parent across ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def input_record(scene: Scene, bundle: ModelBundle) -> dict[str, Any]:
    """What the input check decided and found, for the run record."""
    preset = get_preset(scene.sensor) if scene.sensor else None
    out: dict[str, Any] = {
        "sensor": {**preset.describe(), "offset": scene_offset(preset, scene)} if preset else None,
        "domain": "recorded" if "domain" in bundle.meta else "not recorded by this bundle",
        "notes": list(scene.notes),
        "mask": scene.mask.record() if scene.mask else None,
    }
    if scene.mask is not None:
        out["pixels_masked"] = count_masked(scene.mask_source())
    return out


def result_warnings(
    scene: Scene, bundle: ModelBundle, *, merger: Merger, opts: PredictOptions
) -> list[str]:
    """Input notes and degenerate-result flags: shown on the CLI, kept in the record."""
    ids = [c.id for c in bundle.classes]
    pixels = [int(merger.class_pixels[i]) for i in ids]
    valid = sum(pixels)
    mean_conf = merger.confidence_sum / valid / 100 if opts.confidence and valid else None
    flags = check_result(
        bundle_domain(bundle.meta),
        class_pixels=pixels,
        class_names=[c.name for c in bundle.classes],
        mean_confidence=mean_conf,
    )
    return [*scene.notes, *flags]


def engine_record(engine: Engine, device: str) -> dict[str, Any]:
    """What the engine picked (backend, threads per block, parallel blocks) and why.

    An engine without ``describe`` (one from outside geoseg) is recorded by name.
    """
    describe = getattr(engine, "describe", None)
    return dict(describe(device)) if describe is not None else {"engine": engine.name}


def run_record(
    scene: Scene,
    bundle: ModelBundle,
    *,
    opts: PredictOptions,
    grid: ChipGrid,
    plan: BlockPlan,
    merger: Merger,
    stats: Any,
    normalizer: Normalizer,
    device: str,
    engine: Engine,
    timings: dict[str, float],
    paths: dict[str, Path],
) -> dict[str, Any]:
    """The run record of one scene (``<stem>_run.json``): what ran, on what, and what came out.

    Written beside the outputs as the last file of a scene; see
    :func:`geoseg.records.record_text` for how it is serialized.
    """
    return {
        "geoseg_run": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(PREDICT),
        "command": sys.argv if sys.argv and "geoseg" in os.path.basename(sys.argv[0]) else None,
        "scene": {
            "path": os.path.abspath(scene.path) if "://" not in scene.path else scene.path,
            "shape": list(scene.shape),
            "crs": str(scene.crs) if scene.crs else None,
            "transform": list(scene.transform)[:6],
            "bands": list(scene.bands),
            "band_names": list(scene.band_names),
            "dtype": scene.dtype,
        },
        "bundle": {
            "name": bundle.name,
            "sha256": bundle.sha256,
            "kind": bundle.kind,
            **({"index": bundle.meta["index"]} if bundle.kind == "index" else {}),  # threshold
            "architecture": bundle.meta.get("architecture"),
            "encoder": bundle.meta.get("encoder"),
        },
        "parameters": {
            **asdict(opts),
            "chip": grid.chip,
            "overlap": grid.overlap,
            "batch_size": merger.batch_size,
            "block": plan.block,
            "device": device,
            "engine": engine.name,
        },
        "execution": engine_record(engine, device),
        "normalization": {
            "spec": bundle.meta["normalization"],
            "scene_stats": stats,
            "resolved": normalizer.to_dict(),
        },
        "input": input_record(scene, bundle),
        "class_pixels": {str(c.id): int(merger.class_pixels[c.id]) for c in bundle.classes},
        "warnings": result_warnings(scene, bundle, merger=merger, opts=opts),
        "chips_total": len(grid),
        "chips_inferred": merger.inferred,
        "chips_skipped_nodata": merger.skipped,
        **({"chips_by_worker": dict(sorted(merger.by_worker.items()))} if merger.by_worker else {}),
        "blocks": merger.blocks,
        "shared_cells_spilled": merger.store.spilled_cells,
        "block_seconds": {k: round(v, 3) for k, v in merger.seconds.items()},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "outputs": {k: str(v) for k, v in paths.items()},
    }
