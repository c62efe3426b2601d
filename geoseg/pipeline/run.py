"""One scene, start to finish: grid and blocks, the engine, the merge, staged outputs, publish.

:func:`predict_scene` is what :func:`geoseg.pipeline.predict.predict` and a batch
(:mod:`geoseg.pipeline.batch`) run for each scene that passed the pre-flight. The
class (and confidence) rasters are written cell by cell to staged files while the
engine runs; polygons are made from the staged class raster; the run record is
written last, and :func:`publish` renames everything to its final name together.
On any failure every staged file is removed, so a scene has all of its outputs
or none of the new ones.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geoseg.atomic import clean_stale, remove_quietly, temp_name
from geoseg.engine.base import Engine
from geoseg.engine.task import PredictJob
from geoseg.errors import BundleError, GeosegError, InputError, SceneError
from geoseg.grid.blend import fixed_point_scale
from geoseg.grid.chips import BlockPlan
from geoseg.io.masks import MaskSpec
from geoseg.io.normalize import Normalizer, build_normalizer, scene_percentiles
from geoseg.io.scene import Scene
from geoseg.io.writer import RasterSink, output_error
from geoseg.models.bundle import ModelBundle
from geoseg.models.predictor import returns_logits
from geoseg.pipeline.check import check_mask, normalization_for, open_for_predict
from geoseg.pipeline.maskmodel import MASKS_FOLDER, load_mask_bundle, mask_options
from geoseg.pipeline.merge import Merger
from geoseg.pipeline.options import PredictOptions
from geoseg.pipeline.outputs import output_paths, stale_outputs
from geoseg.pipeline.plan import block_edge, run_batch_size, scene_grid
from geoseg.pipeline.record import run_record
from geoseg.records import record_text


@dataclass
class PredictResult:
    """What one scene's run produced (also written as ``<stem>_run.json``)."""

    scene: str
    outputs: dict[str, str]
    record: dict[str, Any] = field(repr=False)
    state: Literal["done", "skipped", "failed"] = "done"  # skipped: a batch found it done
    error: str | None = None


def predict_scene(
    scene: Scene,
    bundle: ModelBundle,
    out_dir: Path,
    *,
    opts: PredictOptions,
    device: str,
    engine: Engine,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Predict one opened scene (see :func:`predict`)."""
    t_start = time.perf_counter()
    scene = run_mask_bundle(scene, bundle, out_dir, opts=opts, device=device, engine=engine)
    timings: dict[str, float] = {"mask_bundle": time.perf_counter() - t_start}
    paths = output_paths(out_dir, scene.stem, opts)
    for p in paths.values():
        clean_stale(p)
    grid = scene_grid(scene, bundle, opts)
    block = block_edge(opts, grid, engine)
    plan = BlockPlan(grid, block, keep="core" if opts.blend == "crop" else "chip")
    # [index bundles] an Otsu index bundle takes its threshold from this whole scene,
    # once, before any block runs (same bundle for every engine); others pass through.
    from geoseg.models.indices import resolve_scene_bundle

    bundle = resolve_scene_bundle(scene, bundle)
    normalizer, stats = scene_normalizer(scene, bundle)
    timings["stats"] = time.perf_counter() - t_start
    classes = bundle.classes
    t = time.perf_counter()
    engine.prepare(bundle, device, precision=opts.precision)
    timings["load_model"] = time.perf_counter() - t
    job = PredictJob.build(
        scene,
        grid,
        blend=opts.blend,
        batch_size=run_batch_size(opts, device, grid),
        normalizer=normalizer,
        scale=fixed_point_scale(grid),
        class_ids=np.array([c.id for c in classes], dtype=np.uint8),
        confidence=opts.confidence,
        logits=returns_logits(bundle),
    )

    sinks: dict[str, RasterSink] = {}
    staged: dict[str, Path] = {}
    try:
        open_sinks(sinks, scene, bundle, paths, opts)
        merger = Merger(plan, job, sinks, progress, len(grid))
        t = time.perf_counter()
        try:
            engine.run(job, plan.blocks(), merger)
        finally:
            merger.store.close()
        timings["inference"] = time.perf_counter() - t
        if merger.inferred == 0:
            raise SceneError(
                f"{scene.path} has no valid pixel (every chip is nodata); nothing to predict — "
                "check its nodata value or --bands"
            )
        if merger.store:
            raise RuntimeError(f"merge incomplete: {len(merger.store)} cells pending")
        t = time.perf_counter()
        for key, sink in sinks.items():
            staged[key] = sink.finish()
        timings["cog"] = time.perf_counter() - t
        if opts.vector:
            from geoseg.vector import vectorize

            t = time.perf_counter()
            from geoseg.io.styles import style_vector_output

            staged["vector"] = temp_name(paths["vector"])
            vectorize(
                staged["classes"],
                staged["vector"],
                layer=scene.stem,
                classes=classes,
                confidence=staged.get("confidence"),
                source=scene.path,
                style=opts.vector_format == "gpkg",
                overwrite=True,
            )
            if "vector_style" in paths:
                staged["vector_style"] = temp_name(paths["vector_style"])
                style_vector_output(
                    staged["vector"], scene.stem, classes, sidecar=staged["vector_style"]
                )
            timings["vectorize"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        record = run_record(
            scene,
            bundle,
            opts=opts,
            grid=grid,
            plan=plan,
            merger=merger,
            stats=stats,
            normalizer=normalizer,
            device=device,
            engine=engine,
            timings=timings,
            paths=paths,
        )
        staged["run"] = temp_name(paths["run"])
        staged["run"].write_text(record_text(record), encoding="utf-8")
        publish(staged, paths, sinks, stale=stale_outputs(out_dir, scene.stem, opts))
    except BaseException as err:
        for sink in sinks.values():
            sink.abort()
        for p in staged.values():
            remove_quietly(p)
        if out_of_memory(err):
            raise InputError(
                f"ran out of memory predicting {scene.path} with chip {grid.chip} and batch "
                f"size {job.batch_size}; use a smaller --chip, --batch-size or --block, or "
                "--threads 1"
            ) from err
        # a bare OSError here is the writer's (disk full, permissions); geoseg's own
        # OSErrors keep their words: a corrupt tile met mid-run is a read error
        if isinstance(err, OSError) and not isinstance(err, GeosegError):
            raise output_error(paths["classes"], err) from err
        raise
    return PredictResult(
        scene=scene.path, outputs={k: str(v) for k, v in paths.items()}, record=record
    )


def run_mask_bundle(
    scene: Scene,
    bundle: ModelBundle,
    out_dir: Path,
    *,
    opts: PredictOptions,
    device: str,
    engine: Engine,
) -> Scene:
    """``scene`` masked by its mask bundle's prediction (``--mask cloud``), else as it is.

    The mask bundle runs on the scene first (:mod:`geoseg.pipeline.maskmodel`), into
    ``<out>/_masks/``; its class raster, Fmask codes, becomes the scene's mask.

    Raises
    ------
    SceneError
        The mask removes every pixel of the scene.
    """
    spec = scene.mask
    if spec is None or spec.kind != "model":
        return scene
    mask_bundle = load_mask_bundle(spec.path)
    mopts = mask_options(opts, bundle, mask_bundle)
    folder = out_dir / MASKS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    mscene = open_for_predict(scene.path, mask_bundle, mopts)
    res = predict_scene(mscene, mask_bundle, folder, opts=mopts, device=device, engine=engine)
    made = MaskSpec(res.outputs["classes"], "fmask", spec.classes, bundle=mask_bundle.name)
    scene = dataclasses.replace(scene, mask=made)
    check_mask(scene)
    return scene


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (numpy's MemoryError, torch's CPU or CUDA OOM).

    The estimate of :func:`check_resources` refuses what cannot fit; this is the
    net for what it let through and the machine still could not hold.
    """
    if isinstance(err, MemoryError):
        return True
    if isinstance(err, GeosegError):  # already said in geoseg's words (a lost worker says
        return False  # "out of memory, a crash" as possible causes)
    text = str(err).lower()
    return isinstance(err, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text
    )


def open_sinks(
    sinks: dict[str, RasterSink],
    scene: Scene,
    bundle: ModelBundle,
    paths: dict[str, Path],
    opts: PredictOptions,
) -> None:
    """Open the class (and confidence) rasters into ``sinks`` (filled as they open)."""
    grid = {"shape": scene.shape, "crs": scene.crs, "transform": scene.transform}
    sinks["classes"] = RasterSink(
        paths["classes"],
        **grid,
        classes=bundle.classes,
        description="class",
        overviews=opts.overviews,
        tags={
            "GEOSEG_BUNDLE": bundle.name,
            "GEOSEG_BUNDLE_SHA256": bundle.sha256,
            "GEOSEG_SOURCE": scene.path,  # vectorize writes it as each polygon's `source`
        },
    )
    if opts.confidence:
        sinks["confidence"] = RasterSink(
            paths["confidence"],
            **grid,
            classes=None,
            description="confidence of the top class, percent",
        )


def publish(
    staged: dict[str, Path],
    paths: dict[str, Path],
    sinks: dict[str, RasterSink],
    *,
    stale: list[Path],
) -> None:
    """Rename staged outputs to their final names, the run record last.

    ``stale`` outputs of the same stem that this run does not make (only present
    with ``--overwrite``) are removed first, so the folder holds what the record lists.
    """
    if paths["run"].exists():
        paths["run"].unlink()  # an old record must not vouch for a mix of old and new files
    for old in stale:
        remove_quietly(old)
    for key in ("classes", "confidence", "vector", "vector_style"):
        if key in staged:
            if key in sinks:
                sinks[key].publish(staged[key])
            else:
                os.replace(staged[key], paths[key])
    os.replace(staged["run"], paths["run"])


def scene_normalizer(
    scene: Scene, bundle: ModelBundle
) -> tuple[Normalizer, list[tuple[float, float]] | None]:
    """The scene's normalizer (and its percentiles), refused if float32 cannot hold it."""
    spec = normalization_for(bundle.meta, scene)
    stats = None
    if spec["type"] == "percentile":
        stats = scene_percentiles(scene, spec["low"], spec["high"])
    normalizer = build_normalizer(spec, stats=stats)
    if not normalizer.finite_constants():
        if stats is not None:
            raise SceneError(
                f"{scene.path} has values beyond float32's range (band percentiles "
                f"{', '.join(f'{lo:.3g}..{hi:.3g}' for lo, hi in stats)}); the model reads "
                "float32: rescale the scene (gdal_translate -scale) or mark those values as nodata"
            )
        raise BundleError(
            f"bundle '{bundle.name}' has normalization constants beyond float32's range; "
            "fix its mean, std, scale and offset"
        )
    return normalizer, stats
