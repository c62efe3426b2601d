"""Before the first chip: the pre-flight of a call, and each scene's block and batch size.

:func:`preflight` opens and checks every scene of a call and the output folder
before anything is written; :func:`check_resources` refuses a scene whose block
tasks would not fit in memory. :func:`auto_block` and :func:`run_batch_size`
choose the unit of work and the forward-pass shape; neither changes the bytes
written (see DESIGN.md, "Exactness").
"""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path

import numpy as np

from geoseg.engine.base import Engine
from geoseg.engine.resources import block_need, check_memory, model_width
from geoseg.errors import InputError
from geoseg.grid.chips import ChipGrid, axis_owner
from geoseg.io.scene import Scene
from geoseg.models.bundle import ModelBundle
from geoseg.pipeline.check import open_for_predict
from geoseg.pipeline.options import PredictOptions, chip_overlap
from geoseg.pipeline.outputs import check_existing, check_out_dir

MAX_AUTO_BLOCK = 1536
"""Largest block edge :func:`auto_block` picks (pixels)."""


def preflight(
    paths: list[str], bundle: ModelBundle, out_dir: Path, opts: PredictOptions
) -> list[Scene]:
    """Open and check every scene of a call, then the output folder and existing outputs.

    Raises
    ------
    GeosegError
        A scene that cannot be used (:func:`~geoseg.pipeline.check.open_for_predict`),
        scenes sharing a name or in mixed CRSs, an unwritable folder, or outputs
        that exist without ``--overwrite``.
    """
    scenes = [open_for_predict(p, bundle, opts) for p in paths]
    check_unique_stems([s.stem for s in scenes])
    check_one_crs(scenes, allow_mixed_crs=opts.allow_mixed_crs)
    check_out_dir(out_dir)
    for s in scenes:
        check_existing(out_dir, s.stem, opts)
    return scenes


def check_unique_stems(stems: list[str]) -> None:
    """Refuse scenes whose outputs would collide (the same file name in two folders).

    Raises
    ------
    InputError
        Two scenes share a stem.

    Examples
    --------
    >>> check_unique_stems(["a", "b"])
    >>> check_unique_stems(["a", "b", "a"])
    Traceback (most recent call last):
    ...
    geoseg.errors.InputError: several scenes share the name 'a', so their outputs would collide; run them into different out=... folders
    """  # noqa: E501
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(
            f"several scenes share the name {dup[0]!r}, so their outputs would collide; "
            "run them into different --out folders"
        )


def check_one_crs(scenes: list[Scene], *, allow_mixed_crs: bool) -> None:
    """Refuse scenes in different CRSs unless ``allow_mixed_crs`` (``--allow-mixed-crs``).

    Raises
    ------
    InputError
        Two scenes have different CRSs.
    """
    if allow_mixed_crs or len({str(s.crs) for s in scenes}) <= 1:
        return
    first = scenes[0]
    other = next(s for s in scenes if str(s.crs) != str(first.crs))
    raise InputError(
        f"scenes are in different CRSs ({first.stem}: {first.crs}, {other.stem}: {other.crs}); "
        "run them separately or pass --allow-mixed-crs"
    )


def scene_grid(scene: Scene, bundle: ModelBundle, opts: PredictOptions) -> ChipGrid:
    """The chip grid of a scene for a run with ``opts``."""
    chip, overlap = chip_overlap(opts, bundle)
    return ChipGrid(scene.shape, chip, overlap, pad=opts.pad)


def block_edge(opts: PredictOptions, grid: ChipGrid, engine: Engine) -> int:
    """``--block``, or :func:`auto_block` for the engine's parallelism."""
    return opts.block or auto_block(grid.shape, grid, engine.parallelism)


def default_batch_size(device: str) -> int:
    """Chips per forward pass: 1 on CPU (batching buys nothing there), 8 on a GPU."""
    return 8 if device.startswith("cuda") else 1


def run_batch_size(opts: PredictOptions, device: str, grid: ChipGrid) -> int:
    """Chips per forward pass for a scene: the asked size, at most the scene's chip count.

    Short batches are padded to this size so that every forward pass of a run
    has one shape (byte-identical results across block sizes); capping it at the
    scene's chip count, once per scene, bounds that padding without giving two
    batches of one run different shapes.
    """
    return min(opts.batch_size or default_batch_size(device), len(grid))


def check_resources(
    scene: Scene, bundle: ModelBundle, opts: PredictOptions, device: str, engine: Engine
) -> None:
    """Refuse a scene whose block tasks would not fit in memory (:mod:`~geoseg.engine.resources`).

    Raises
    ------
    InputError
        The chip and batch size (times the tasks that run at once) need more
        memory than the machine (or a Dask worker) has available.
    """
    grid = scene_grid(scene, bundle, opts)
    batch = run_batch_size(opts, device, grid)
    need = block_need(
        grid,
        block=block_edge(opts, grid, engine),
        batch=batch,
        bands=len(scene.bands),
        itemsize=np.dtype(scene.dtype).itemsize,
        classes=len(bundle.classes),
        width=0 if device.startswith("cuda") else model_width(bundle),  # activations on the GPU
    )
    available, tasks, where = engine.memory_budget(device)
    check_memory(
        need,
        tasks=tasks,
        available=available,
        chip=grid.chip,
        batch=batch,
        where=where,
    )


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
