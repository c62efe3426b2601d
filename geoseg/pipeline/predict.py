"""``predict``: scenes in, class COGs (+ confidence, polygons, run record) out.

Everything a user can get wrong is checked for every scene before the first
chip is inferred, so a bad call fails fast and writes nothing. Outputs are
built under temporary names and published together at the end of each scene,
the run record last.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.atomic import clean_stale, output_locks, remove_quietly, temp_name
from geoseg.engine.local import LocalEngine
from geoseg.engine.resources import (
    available_memory,
    block_need,
    check_chip,
    check_memory,
    model_width,
)
from geoseg.engine.task import BlockResult, PartialStore, PredictJob
from geoseg.errors import BundleError, GeosegError, InputError, SceneError
from geoseg.grid.blend import BLENDS, finalize, fixed_point_scale
from geoseg.grid.chips import BlockPlan, ChipGrid, axis_owner
from geoseg.io.masks import MaskSpec, count_masked
from geoseg.io.masks import parse_classes as parse_mask_classes
from geoseg.io.normalize import build_normalizer, scene_percentiles
from geoseg.io.scene import Scene, gdal_env
from geoseg.io.writer import RasterSink, output_error
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.models.predictor import PRECISIONS, check_precision, resolve_device, returns_logits
from geoseg.models.predictor import check_chip as check_fixed_input
from geoseg.pipeline.check import bundle_domain, match_bands, normalization_for, plan_input
from geoseg.pipeline.outputs import (
    check_existing,
    check_not_inputs,
    check_out_dir,
    output_paths,
    stale_outputs,
)
from geoseg.pipeline.outputs import (
    locked_subject as locked_subject,
)  # re-exported: defined in outputs since 0.2
from geoseg.pipeline.scenes import (
    expand_scenes as expand_scenes,
)  # re-exported: defined in scenes since 0.2
from geoseg.pipeline.scenes import scene_stem as scene_stem
from geoseg.records import record_text
from geoseg.schemes import NODATA_CLASS
from geoseg.sensors.domain import check_result
from geoseg.sensors.presets import get_preset
from geoseg.versions import PREDICT, versions

MAX_AUTO_BLOCK = 1536
OVERVIEWS = ("nearest", "mode")


@dataclass(frozen=True)
class PredictOptions:
    """Options of a predict run (CLI flags map one to one)."""

    chip: int | None = None
    overlap: int | None = None
    block: int | None = None
    batch_size: int | None = None
    blend: str = "smooth"
    bands: tuple[int | str, ...] | None = None
    device: str = "auto"
    confidence: bool = False
    vector: bool = True
    overwrite: bool = False
    allow_no_crs: bool = False
    allow_mixed_crs: bool = False
    pad: bool = True
    threads: int | None = None
    vector_format: str = "gpkg"
    overviews: str = "nearest"
    precision: str = "fp32"
    sensor: str | None = None
    allow_domain_shift: bool = False
    mask: str | None = None
    mask_classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(
                f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'"
            )
        if self.overviews not in OVERVIEWS:
            raise InputError(
                f"--overviews must be one of {', '.join(OVERVIEWS)}, got '{self.overviews}'"
            )
        if self.blend not in BLENDS:
            raise InputError(f"--blend must be one of {', '.join(BLENDS)}, got '{self.blend}'")
        for name in ("batch_size", "block"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or value < 1:
                raise InputError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        check_chip(self.chip)
        if self.sensor is not None:
            get_preset(self.sensor)  # an unknown name is refused before any work
        if self.mask_classes is not None:
            parse_mask_classes(self.mask_classes)
        if self.bands is not None and not self.bands:
            raise InputError(
                "--bands names no band; give 1-based indexes or names such as 3,2,1 "
                "or red,green,blue, or omit it to use the bundle's band names"
            )


@dataclass
class PredictResult:
    """What one scene's run produced (also written as ``<stem>_run.json``)."""

    scene: str
    outputs: dict[str, str]
    record: dict[str, Any] = field(repr=False)
    state: str = "done"  # done | skipped (a batch found it done) | failed
    error: str | None = None


def open_for_predict(path: str, bundle: ModelBundle, opts: PredictOptions) -> Scene:
    """Open one scene and check everything about it that can be checked before inferring.

    Which band feeds which input, the units and the bundle's domain
    (:func:`geoseg.pipeline.check.plan_input`), the mask, the chip grid, and a CRS for
    polygons: a scene without one (``--allow-no-crs``) can give a class raster, but
    polygons need a CRS, which would otherwise fail only after the whole inference.
    """
    plan = plan_input(
        path,
        bundle,
        bands=opts.bands,
        sensor=opts.sensor,
        allow_domain_shift=opts.allow_domain_shift,
        allow_no_crs=opts.allow_no_crs,
    )
    if plan.choice is not None and plan.choice.bands is None:  # inputs are not band roles
        scene = match_bands(path, bundle, None, allow_no_crs=opts.allow_no_crs)
    else:
        scene = _check_band_count(plan.scene, bundle)
    notes = plan.warnings + tuple(
        f"outside the bundle's domain, run anyway (--allow-domain-shift): {r}"
        for r in plan.refused_but_allowed
    )
    mask = MaskSpec.resolve(opts.mask, path, opts.mask_classes) if opts.mask else None
    scene = dataclasses.replace(
        scene, sensor=plan.preset.name if plan.preset else None, notes=notes, mask=mask
    )
    if mask is not None:
        _check_mask(scene)
    chip, overlap = _chip_overlap(opts, bundle)
    check_fixed_input(bundle, chip)  # a fixed-size ONNX model: refuse a larger --chip now
    ChipGrid(scene.shape, chip, overlap, pad=opts.pad)
    if scene.crs is None and opts.vector:
        raise SceneError(
            f"{path} has no CRS and polygons need one; pass --no-vector to write the class "
            "raster alone, or assign a CRS (gdal_edit.py -a_srs EPSG:xxxx)"
        )
    return scene


def _check_band_count(scene: Scene, bundle: ModelBundle) -> Scene:
    want = bundle.bands
    if len(scene.bands) != len(want):
        raise SceneError(
            f"--bands selects {len(scene.bands)} bands of {scene.path} but bundle "
            f"'{bundle.name}' expects {len(want)} ({', '.join(want)})"
        )
    return scene


def _check_mask(scene: Scene) -> None:
    """A mask that removes every pixel leaves nothing to predict: say so before inferring."""
    assert scene.mask is not None
    share = scene.mask_source().masked_share()
    if share >= 1.0:
        raise SceneError(
            f"mask {scene.mask.path} removes every pixel of {scene.path} "
            f"({', '.join(scene.mask.classes)}); nothing to predict — check --mask-classes"
        )


def _chip_overlap(opts: PredictOptions, bundle: ModelBundle) -> tuple[int, int]:
    chip = opts.chip or bundle.chip
    overlap = opts.overlap if opts.overlap is not None else min(bundle.overlap, chip - 1)
    return chip, overlap


def run_batch_size(opts: PredictOptions, device: str, grid: ChipGrid) -> int:
    """Chips per forward pass for a scene: the asked size, at most the scene's chip count.

    Short batches are padded to this size so that every forward pass of a run
    has one shape (byte-identical results across block sizes); capping it at the
    scene's chip count, once per scene, bounds that padding without giving two
    batches of one run different shapes.
    """
    return min(opts.batch_size or default_batch_size(device), len(grid))


def check_resources(
    scene: Scene, bundle: ModelBundle, opts: PredictOptions, device: str, engine: Any
) -> None:
    """Refuse a scene whose block tasks would not fit in memory (:mod:`~geoseg.engine.resources`).

    Raises
    ------
    InputError
        The chip and batch size (times the tasks that run at once) need more
        memory than the machine (or a Dask worker) has available.
    """
    chip, overlap = _chip_overlap(opts, bundle)
    grid = ChipGrid(scene.shape, chip, overlap, pad=opts.pad)
    batch = run_batch_size(opts, device, grid)
    block = opts.block or auto_block(scene.shape, grid, getattr(engine, "parallelism", 2))
    need = block_need(
        grid,
        block=block,
        batch=batch,
        bands=len(scene.bands),
        itemsize=np.dtype(scene.dtype).itemsize,
        classes=len(bundle.classes),
        width=0 if device.startswith("cuda") else model_width(bundle),  # activations on the GPU
    )
    budget = getattr(engine, "memory_budget", None)
    available, tasks, where = budget(device) if budget else (available_memory(), 1, None)
    check_memory(
        need,
        tasks=tasks,
        available=available,
        chip=chip,
        batch=batch,
        where=where or "this machine",
    )


def _preflight(
    paths: list[str], bundle: ModelBundle, out_dir: Path, opts: PredictOptions
) -> list[Scene]:
    scenes = [open_for_predict(p, bundle, opts) for p in paths]
    stems = [s.stem for s in scenes]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(
            f"several scenes share the name {dup[0]!r}, so their outputs would collide; "
            "run them into different --out folders"
        )
    crss = {str(s.crs) for s in scenes}
    if len(crss) > 1 and not opts.allow_mixed_crs:
        first = scenes[0]
        other = next(s for s in scenes if str(s.crs) != str(first.crs))
        raise InputError(
            f"scenes are in different CRSs ({first.stem}: {first.crs}, {other.stem}: {other.crs}); "
            "run them separately or pass --allow-mixed-crs"
        )
    check_out_dir(out_dir)
    for s in scenes:
        check_existing(out_dir, s.stem, opts)
    return scenes


def predict(
    scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    bundle: ModelBundle | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    engine: Any = None,
    client: Any = None,
    manifest: bool | None = None,
    **options: Any,
) -> list[PredictResult]:
    """Predict class maps for one or more scenes.

    Parameters
    ----------
    scenes
        Paths or globs of GDAL-readable rasters.
    bundle
        A :class:`ModelBundle`, a bundle path or a shipped bundle name.
    out_dir
        Output folder (created if missing).
    progress
        ``progress(chips_done, chips_total)`` called after each block.
    engine
        An engine with ``prepare(bundle, device)`` and ``run(job, blocks, on_result)``;
        default :class:`~geoseg.engine.local.LocalEngine`, or
        :class:`~geoseg.engine.dask.DaskEngine` when ``client`` is given.
    client
        A ``dask.distributed.Client``: run the block tasks on its workers.
    manifest
        Run as a resumable batch with ``<out_dir>/manifest.json`` (see
        :mod:`geoseg.pipeline.batch`) [default: when there are several scenes].
    **options
        Fields of :class:`PredictOptions` (``chip``, ``overlap``, ``block``,
        ``batch_size``, ``blend``, ``bands``, ``device``, ``confidence``,
        ``vector``, ``overwrite`` …).

    Returns
    -------
    list of PredictResult
        One per scene, in input order.

    Raises
    ------
    GeosegError
        Any problem with the inputs, the bundle or the output folder; for one
        scene, raised before any output with a final name is written. Among
        them: an output name that is an input of the call, a chip and batch
        size that do not fit in memory (:mod:`geoseg.engine.resources`), and another
        geoseg run holding a scene's outputs (an ``OutputError`` naming its pid).
    BatchError
        Several scenes and some failed: the others finished, their state is in
        ``<out_dir>/manifest.json`` and ``err.results`` (see :mod:`geoseg.pipeline.batch`).

    Examples
    --------
    >>> import tempfile
    >>> [res] = predict("data/zion/landsat8_2015-08-18_b2345.tif", "landcover-nlcd8",
    ...                 tempfile.mkdtemp(), vector=False)
    >>> res.record["chips_total"], res.record["scene"]["crs"]
    (35, 'EPSG:32612')
    """
    if options.get("bands") is not None:
        options["bands"] = tuple(options["bands"])
    opts = PredictOptions(**options)
    if not isinstance(bundle, ModelBundle):
        bundle = load_bundle(bundle)
    paths = expand_scenes(scenes)
    out = Path(out_dir)
    check_not_inputs(paths, out, [scene_stem(p) for p in paths])
    batch = len(paths) > 1 if manifest is None else manifest
    if not batch:
        scene_objs = _preflight(paths, bundle, out, opts)
    if engine is None and client is not None:
        from geoseg.engine.dask import DaskEngine

        engine = DaskEngine(client)
    engine = engine or LocalEngine(threads=opts.threads)
    # where the model runs decides the device: on a cluster the workers are asked
    resolve = getattr(engine, "resolve_device", resolve_device)
    device = resolve(opts.device)
    check_precision(opts.precision, device)
    if batch:
        from geoseg.pipeline.batch import run_batch

        return run_batch(
            paths, bundle, out, opts=opts, device=device, engine=engine, progress=progress
        )
    check_resources(scene_objs[0], bundle, opts, device, engine)
    with (
        output_locks(out, [scene_objs[0].stem], locked_subject(out)),
        gdal_env(reads_chips=getattr(engine, "reads_chips", True)),
    ):
        check_existing(out, scene_objs[0].stem, opts)  # another run may have finished meanwhile
        return [
            predict_scene(
                scene_objs[0],
                bundle,
                out,
                opts=opts,
                device=device,
                engine=engine,
                progress=progress,
            )
        ]


BALANCE_SLACK = 0.03
"""How much longer than the best-balanced layout auto_block accepts for larger blocks."""


def _makespan(row_chips: list[int], col_chips: list[int], workers: int) -> int:
    """Chips on the busiest worker when blocks go row-major to whichever worker is free first."""
    free = [0] * workers
    for r in row_chips:
        for c in col_chips:
            heapq.heapreplace(free, free[0] + r * c)
    return max(free)


def _chips_per_block(starts: tuple[int, ...], block: int, stride: int) -> list[int]:
    """Chips of each block along one axis, in block order (as :class:`BlockPlan` owns them)."""
    return list(Counter(axis_owner(starts, block, stride)).values())


def auto_block(shape: tuple[int, int], grid: ChipGrid, parallelism: int) -> int:
    """Block edge: the largest (fewer re-read chip margins, fewer tasks) that keeps workers even.

    Each candidate edge (whole chip strides, at most ``MAX_AUTO_BLOCK``) is
    scored by the chips on the busiest of ``parallelism`` workers when blocks
    are handed out in order; the largest edge within ``BALANCE_SLACK`` of the
    best score wins. On a 9 x 9-chip scene with 2 workers, 3 x 3-chip blocks
    would give one worker 5 of 9 blocks (45 chips against 36, a ceiling of
    1.8x on the speed-up); 2 x 2-chip blocks give it 41 of 81. Any block size
    gives the same bytes; this only trades memory, I/O and balance.
    """
    del shape  # the grid has it; kept for callers
    n_rows, n_cols = len(grid.row_starts), len(grid.col_starts)
    workers = max(1, parallelism)
    scored = []
    for k in range(1, max(1, MAX_AUTO_BLOCK // grid.stride) + 1):
        rows = _chips_per_block(grid.row_starts, k * grid.stride, grid.stride)
        cols = _chips_per_block(grid.col_starts, k * grid.stride, grid.stride)
        scored.append((k, _makespan(rows, cols, workers)))
        if k >= max(n_rows, n_cols):
            break  # one block already covers the scene
    best = min(m for _, m in scored)
    k = max(k for k, m in scored if m <= best * (1 + BALANCE_SLACK))
    return k * grid.stride


def default_batch_size(device: str) -> int:
    """Chips per forward pass: 1 on CPU (batching buys nothing there), 8 on a GPU."""
    return 8 if device.startswith("cuda") else 1


def _normalizer(scene: Scene, bundle: ModelBundle) -> tuple[Any, Any]:
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


class _Collector:
    """Writes finished cells and merges shared ones, on the engine's calling thread."""

    def __init__(
        self,
        plan: BlockPlan,
        job: PredictJob,
        sinks: dict[str, RasterSink],
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.store = PartialStore({c.key: c.expected for c in plan.cells()})
        self.job = job
        self.batch_size = job.batch_size
        self.sinks = sinks
        self.progress = progress
        self.total = total
        self.done = 0
        self.inferred = 0
        self.skipped = 0
        self.blocks = 0
        self.by_worker: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.write_s = 0.0
        self.class_pixels = np.zeros(256, dtype=np.int64)  # written pixels per class id
        self.confidence_sum = 0  # of the confidence (0..100) of valid pixels

    def __call__(self, res: BlockResult) -> None:
        t0 = time.perf_counter()
        for cell in res.finals:
            self._write(cell.window, cell.classes, cell.confidence)
        for part in res.partials:
            merged = self.store.add(part)
            if merged is not None:
                window, sums, weights = merged
                cls, conf = finalize(
                    sums, weights, self.job.class_ids, confidence=self.job.confidence
                )
                self._write(window, cls, conf)
        self.write_s += time.perf_counter() - t0
        self.blocks += 1
        self.inferred += res.chips_inferred
        self.skipped += res.chips_skipped_nodata
        if res.worker is not None:
            self.by_worker[res.worker] = self.by_worker.get(res.worker, 0) + res.chips_inferred
        for k, v in res.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v
        self.done += res.chips_inferred + res.chips_skipped_nodata
        if self.progress:
            self.progress(self.done, self.total)

    def _write(self, window: Any, cls: Any, conf: Any) -> None:
        self.sinks["classes"].write(window, cls)
        self.class_pixels += np.bincount(cls.ravel(), minlength=256)[:256]
        if conf is not None:
            self.confidence_sum += int(conf[cls != NODATA_CLASS].sum(dtype=np.int64))
            if "confidence" in self.sinks:
                self.sinks["confidence"].write(window, conf)


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


def predict_scene(
    scene: Scene,
    bundle: ModelBundle,
    out_dir: Path,
    *,
    opts: PredictOptions,
    device: str,
    engine: Any,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Predict one opened scene (see :func:`predict`)."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    paths = output_paths(out_dir, scene.stem, opts)
    for p in paths.values():
        clean_stale(p)
    chip, overlap = _chip_overlap(opts, bundle)
    grid = ChipGrid(scene.shape, chip, overlap, pad=opts.pad)
    block = opts.block or auto_block(scene.shape, grid, getattr(engine, "parallelism", 2))
    plan = BlockPlan(grid, block, keep="core" if opts.blend == "crop" else "chip")
    # [index bundles] an Otsu index bundle takes its threshold from this whole scene,
    # once, before any block runs (same bundle for every engine); others pass through.
    from geoseg.models.indices import resolve_scene_bundle

    bundle = resolve_scene_bundle(scene, bundle)
    normalizer, stats = _normalizer(scene, bundle)
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
        _open_sinks(sinks, scene, bundle, paths, opts)
        collector = _Collector(plan, job, sinks, progress, len(grid))
        t = time.perf_counter()
        try:
            engine.run(job, plan.blocks(), collector)
        finally:
            collector.store.close()
        timings["inference"] = time.perf_counter() - t
        if collector.inferred == 0:
            raise SceneError(
                f"{scene.path} has no valid pixel (every chip is nodata); nothing to predict — "
                "check its nodata value or --bands"
            )
        if collector.store:
            raise RuntimeError(f"merge incomplete: {len(collector.store)} cells pending")
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
        record = _record(
            scene,
            bundle,
            opts,
            grid,
            plan,
            collector,
            stats,
            normalizer,
            device,
            engine,
            timings,
            paths,
        )
        staged["run"] = temp_name(paths["run"])
        staged["run"].write_text(record_text(record), encoding="utf-8")
        _publish(staged, paths, sinks, stale=stale_outputs(out_dir, scene.stem, opts))
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


def _open_sinks(
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


def _publish(
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


def _input_record(scene: Scene, bundle: ModelBundle) -> dict[str, Any]:
    """What the input check decided and found, for the run record."""
    preset = get_preset(scene.sensor) if scene.sensor else None
    out: dict[str, Any] = {
        "sensor": preset.describe() if preset else None,
        "domain": "recorded" if "domain" in bundle.meta else "not recorded by this bundle",
        "notes": list(scene.notes),
        "mask": scene.mask.record() if scene.mask else None,
    }
    if scene.mask is not None:
        out["pixels_masked"] = count_masked(scene.mask_source())
    return out


def _result_warnings(
    scene: Scene, bundle: ModelBundle, col: _Collector, opts: PredictOptions
) -> list[str]:
    """Input notes and degenerate-result flags: shown on the CLI, kept in the record."""
    ids = [c.id for c in bundle.classes]
    pixels = [int(col.class_pixels[i]) for i in ids]
    valid = sum(pixels)
    mean_conf = col.confidence_sum / valid / 100 if opts.confidence and valid else None
    flags = check_result(
        bundle_domain(bundle.meta),
        class_pixels=pixels,
        class_names=[c.name for c in bundle.classes],
        mean_confidence=mean_conf,
    )
    return [*scene.notes, *flags]


def _record(
    scene: Scene,
    bundle: ModelBundle,
    opts: PredictOptions,
    grid: ChipGrid,
    plan: BlockPlan,
    col: _Collector,
    stats: Any,
    normalizer: Any,
    device: str,
    engine: Any,
    timings: dict[str, float],
    paths: dict[str, Path],
) -> dict[str, Any]:
    from dataclasses import asdict

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
            "batch_size": col.batch_size,
            "block": plan.block,
            "device": device,
            "engine": getattr(engine, "name", type(engine).__name__),
        },
        "normalization": {
            "spec": bundle.meta["normalization"],
            "scene_stats": stats,
            "resolved": normalizer.to_dict(),
        },
        "input": _input_record(scene, bundle),
        "class_pixels": {str(c.id): int(col.class_pixels[c.id]) for c in bundle.classes},
        "warnings": _result_warnings(scene, bundle, col, opts),
        "chips_total": len(grid),
        "chips_inferred": col.inferred,
        "chips_skipped_nodata": col.skipped,
        **({"chips_by_worker": dict(sorted(col.by_worker.items()))} if col.by_worker else {}),
        "blocks": col.blocks,
        "shared_cells_spilled": col.store.spilled_cells,
        "block_seconds": {k: round(v, 3) for k, v in col.seconds.items()},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "outputs": {k: str(v) for k, v in paths.items()},
    }
