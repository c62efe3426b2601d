"""``predict``: scenes in, class COGs (+ confidence, polygons, run record) out.

Everything a user can get wrong is checked for every scene before the first
chip is inferred, so a bad call fails fast and writes nothing. Outputs are
built under temporary names and published together at the end of each scene,
the run record last.

The flow, module by module: :mod:`~geoseg.pipeline.options` (what was asked),
:mod:`~geoseg.pipeline.scenes` (which files), :mod:`~geoseg.pipeline.check` and
:mod:`~geoseg.pipeline.plan` (the pre-flight, block and batch size, memory),
then per scene :mod:`~geoseg.pipeline.run` (engine, :mod:`~geoseg.pipeline.merge`,
writers, :mod:`~geoseg.pipeline.record`, publish), or :mod:`~geoseg.pipeline.batch`
for several scenes with a manifest. The public names this module held before
0.2 split it (``PredictOptions``, ``open_for_predict``, ``auto_block`` ...) stay
importable from here for one release.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geoseg.atomic import output_locks
from geoseg.engine.base import Engine
from geoseg.engine.local import LocalEngine
from geoseg.io.scene import gdal_env
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.models.device import check_precision
from geoseg.pipeline.batch import run_batch
from geoseg.pipeline.check import open_for_predict as open_for_predict
from geoseg.pipeline.folders import band_folder_scene
from geoseg.pipeline.options import OVERVIEWS as OVERVIEWS
from geoseg.pipeline.options import PredictOptions as PredictOptions
from geoseg.pipeline.outputs import check_existing, check_not_inputs
from geoseg.pipeline.outputs import locked_subject as locked_subject
from geoseg.pipeline.plan import BALANCE_SLACK as BALANCE_SLACK
from geoseg.pipeline.plan import MAX_AUTO_BLOCK as MAX_AUTO_BLOCK
from geoseg.pipeline.plan import auto_block as auto_block
from geoseg.pipeline.plan import block_edge, preflight, scene_grid
from geoseg.pipeline.plan import check_resources as check_resources
from geoseg.pipeline.plan import default_batch_size as default_batch_size
from geoseg.pipeline.plan import run_batch_size as run_batch_size
from geoseg.pipeline.record import peak_rss_mb as peak_rss_mb
from geoseg.pipeline.run import PredictResult as PredictResult
from geoseg.pipeline.run import out_of_memory as out_of_memory
from geoseg.pipeline.run import predict_scene as predict_scene
from geoseg.pipeline.scenes import expand_scenes as expand_scenes
from geoseg.pipeline.scenes import scene_stem as scene_stem


def predict(
    scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    bundle: ModelBundle | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
    client: Any = None,
    manifest: bool | None = None,
    **options: Any,
) -> list[PredictResult]:
    """Predict class maps for one or more scenes.

    Parameters
    ----------
    scenes
        Paths or globs of GDAL-readable rasters, or folders of band files (a
        Sentinel-2 ``IMG_DATA`` or ``.SAFE``, Landsat ``*_B4.TIF`` files), which are
        stacked for the bundle's bands (:mod:`geoseg.pipeline.folders`).
    bundle
        A :class:`ModelBundle`, a bundle path or a shipped bundle name.
    out_dir
        Output folder (created if missing).
    progress
        ``progress(chips_done, chips_total)`` called after each block.
    engine
        Where the block tasks run (any :class:`~geoseg.engine.base.Engine`);
        default :class:`~geoseg.engine.local.LocalEngine`, or
        :class:`~geoseg.engine.dask.DaskEngine` when ``client`` is given.
    client
        A ``dask.distributed.Client``: run the block tasks on its workers.
    manifest
        Run as a resumable batch with ``<out_dir>/manifest.json`` (see
        :mod:`geoseg.pipeline.batch`) [default: when there are several scenes].
        ``False`` predicts every scene in turn without a manifest, after checking
        them all.
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
    opts, bundle = _options_and_bundle(options, bundle)
    out = Path(out_dir)
    # a folder of band files is stacked into <out>/_inputs/<product>.vrt
    paths = [
        band_folder_scene(p, bundle, out, sensor=opts.sensor) if os.path.isdir(p) else p
        for p in expand_scenes(scenes)
    ]
    check_not_inputs(paths, out, [scene_stem(p) for p in paths])
    batch = len(paths) > 1 if manifest is None else manifest
    if not batch:
        scene_objs = preflight(paths, bundle, out, opts)
    engine = _engine(engine, client, opts)
    # where the model runs decides the device: on a cluster the workers are asked
    device = engine.resolve_device(opts.device)
    check_precision(opts.precision, device)
    if batch:
        return run_batch(
            paths, bundle, out, opts=opts, device=device, engine=engine, progress=progress
        )
    for scene in scene_objs:  # every scene is checked before the first one runs
        check_resources(scene, bundle, opts, device, engine)
    results = []
    for scene in scene_objs:  # manifest=False: each scene in turn, no manifest
        with (
            output_locks(out, [scene.stem], locked_subject(out)),
            gdal_env(reads_chips=engine.reads_chips),
        ):
            check_existing(out, scene.stem, opts)  # another run may have finished meanwhile
            results.append(
                predict_scene(
                    scene, bundle, out, opts=opts, device=device, engine=engine, progress=progress
                )
            )
    return results


def explain(
    scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    bundle: ModelBundle | str | os.PathLike[str],
    *,
    engine: Engine | None = None,
    client: Any = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """What :func:`predict` would pick for each scene, and why, without running it.

    Every scene is opened and checked as for a run (bands, units, chip grid);
    nothing is read beyond metadata, no model is built and nothing is written.
    The same facts go into each run record (``parameters`` and ``execution``).

    Returns
    -------
    list of dict
        One per scene: device, precision, backend (and why), block tasks at once,
        intra-op threads per block (and why), batch size, chip, overlap, block.
    """
    from geoseg.engine.backend import choose_backend

    opts, bundle = _options_and_bundle(options, bundle)
    engine = _engine(engine, client, opts)
    device = engine.resolve_device(opts.device)
    check_precision(opts.precision, device)
    choice = choose_backend(opts.backend, bundle, device, opts.precision)
    describe = getattr(engine, "describe", None)
    layout = dict(describe(device)) if describe is not None else {"engine": engine.name}
    layout.update(backend=choice.name, backend_reason=choice.reason)
    plans = []
    for path in expand_scenes(scenes):
        scene = open_for_predict(path, bundle, opts)
        grid = scene_grid(scene, bundle, opts)
        batch = run_batch_size(opts, device, grid)
        plans.append(
            {
                "scene": scene.path,
                "shape": list(scene.shape),
                "bundle": bundle.name,
                "device": device,
                "device_reason": f"--device {opts.device}",
                "precision": opts.precision,
                **layout,
                "chip": grid.chip,
                "overlap": grid.overlap,
                "chips": len(grid),
                "block": block_edge(opts, grid, engine),
                "block_reason": "--block"
                if opts.block
                else "auto: the largest edge that keeps "
                f"{engine.parallelism} block task(s) evenly loaded (at most {MAX_AUTO_BLOCK})",
                "batch_size": batch,
                "batch_reason": (
                    "--batch-size"
                    if opts.batch_size
                    else f"default on {'a GPU' if device.startswith('cuda') else 'CPU'} "
                    f"({default_batch_size(device)}), at most the scene's {len(grid)} chips"
                ),
            }
        )
    return plans


def _options_and_bundle(
    options: dict[str, Any], bundle: ModelBundle | str | os.PathLike[str]
) -> tuple[PredictOptions, ModelBundle]:
    """The options of a call (``bands`` as a tuple) and its bundle, loaded."""
    if options.get("bands") is not None:
        options["bands"] = tuple(options["bands"])
    opts = PredictOptions(**options)
    return opts, bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)


def _engine(engine: Engine | None, client: Any, opts: PredictOptions) -> Engine:
    """The engine given, else Dask on ``client``, else the in-process engine."""
    if engine is not None:
        return engine
    if client is not None:
        from geoseg.engine.dask import DaskEngine

        return DaskEngine(client, backend=opts.backend)
    return LocalEngine(threads=opts.threads, backend=opts.backend)
