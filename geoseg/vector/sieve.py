"""Sieve: merge regions smaller than ``min_area`` into a neighbouring class, block by block.

A *region* is a connected set of pixels of one class (4- or 8-connected, as
for the polygons); nodata is never part of one. A region is *small* when its
area is under ``min_area``. Each round, every small region that shares pixel
edges with *large* regions takes the class of the large neighbours it shares
the most pixel edges with (ties: the lowest class id); small regions that only
touch other small regions wait for the next round, when some of their
neighbours have grown into large ones. Rounds repeat until nothing changes. A
group of small regions that touches no large region (an islet in nodata, at
the raster edge) stays as it is; nodata is never a neighbour to merge into.

Why the shared edge and not the largest neighbour: the length of the boundary
between a small region and each neighbouring class can be counted next to the
region, while the area of a large neighbour may depend on pixels anywhere in
the raster. That locality is what makes the sieve exact block by block: a small
region of at most ``n`` pixels spans at most ``n`` rows and columns, so a block
read with a halo of ``2n + 2`` pixels holds the whole region, its neighbours,
and enough of those neighbours to tell small from large (a region that reaches
the halo's edge has more than ``n`` pixels). The result of each round — and so
of the sieve — does not depend on the block size.

The rounds run in the raster domain, before polygonization, so the polygons
that come out are ordinary regions of the sieved raster: joined across blocks,
holes kept, and per-class areas still exact pixel sums.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError

from geoseg.atomic import remove_quietly, temp_name
from geoseg.errors import RasterReadError, VectorizeError
from geoseg.grid.windows import PixelWindow, block_window, grow_window
from geoseg.schemes import NODATA_CLASS
from geoseg.vector.geometry import pixel_areas
from geoseg.vector.grid import _Grid
from geoseg.vector.polygonize import _label

log = logging.getLogger(__name__)

MAX_HALO = 4096
"""Largest halo (pixels) the sieve reads around a block; ``min_area`` beyond it is refused."""


def sieve_halo(grid: _Grid, min_area: float) -> int:
    """Pixels read around each block so that every decision in the block is exact."""
    # pixel areas shrink towards the poles, and latitude is affine in (row, col): the
    # smallest pixel is at a corner of the raster
    rows = np.array([0, 0, grid.shape[0] - 1, grid.shape[0] - 1])
    cols = np.array([0, grid.shape[1] - 1, 0, grid.shape[1] - 1])
    smallest = float(np.min(pixel_areas(grid, rows, cols)))
    most = math.ceil(min_area / smallest)  # a small region has fewer pixels than this
    return 2 * most + 2


def sieve_scratch(out: Path) -> Path:
    """The path whose temporaries hold the sieve rounds for output ``out``."""
    return out.with_name(f"{out.stem}.sieve.tif")


@contextlib.contextmanager
def sieved(ds: Any, grid: _Grid, *, min_area: float, scratch: Path) -> Iterator[Any]:
    """Yield a dataset with small regions merged (``ds`` itself if none are).

    Rounds write temporaries beside ``scratch``; they are deleted on exit.
    """
    halo = sieve_halo(grid, min_area)
    if halo > MAX_HALO:
        raise VectorizeError(
            f"min_area {min_area:g} m² is {halo // 2 - 1} pixels of this raster; the sieve "
            f"handles up to {MAX_HALO // 2 - 1} pixels: use a smaller min_area or a coarser raster"
        )
    valid = np.ones(256, dtype=bool)
    valid[NODATA_CLASS] = False
    if grid.nodata is not None:
        valid[grid.nodata] = False
    temps = [temp_name(scratch), temp_name(scratch)]
    src, rounds = ds, 0
    try:
        while True:
            dst_path = temps[rounds % 2]
            changed = _sieve_round(src, dst_path, grid, valid, min_area=min_area, halo=halo)
            if src is not ds:
                src.close()
            rounds += 1
            src = rasterio.open(dst_path)
            if not changed:
                break
        log.info("sieve: %d round(s), halo %d px", rounds, halo)
        if rounds == 1:  # nothing was small enough, or nothing could merge
            src.close()
            src = ds
        yield src
    finally:
        if src is not ds:
            src.close()
        for path in temps:
            remove_quietly(path)


def _sieve_round(
    src: Any,
    dst_path: Path,
    grid: _Grid,
    valid: NDArray[np.bool_],
    *,
    min_area: float,
    halo: int,
) -> bool:
    """One round over the raster, block by block; True if any pixel changed."""
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "width": grid.shape[1],
        "height": grid.shape[0],
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": src.nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "ZSTD",
        "zstd_level": 1,
        "BIGTIFF": "IF_SAFER",
    }
    changed = False
    n_rows, n_cols = grid.blocks
    with rasterio.open(dst_path, "w", **profile) as dst:
        for r in range(n_rows):
            for c in range(n_cols):
                core = block_window(grid.shape, grid.block, (r, c))
                data, inner = _read_halo(src, grid, core, halo)
                new = sieve_window(data, grid, valid, core=core, inner=inner, min_area=min_area)
                changed |= bool(np.any(new != data[inner]))
                dst.write(new, 1, window=core.to_rasterio())
    return changed


def _read_halo(
    src: Any, grid: _Grid, core: tuple[int, int, int, int], halo: int
) -> tuple[NDArray[np.uint8], tuple[slice, slice]]:
    """The block with ``halo`` pixels around it (clipped to the raster); where the block is."""
    grown, inner = grow_window(PixelWindow(*core), halo, grid.shape)
    try:
        data = src.read(1, window=grown.to_rasterio())
    except RasterioError as err:
        raise RasterReadError(
            f"cannot read {src.name} at rows {grown.row}.., cols {grown.col}..: {err}"
        ) from err
    return data, inner


def sieve_window(
    data: NDArray[np.uint8],
    grid: _Grid,
    valid: NDArray[np.bool_],
    *,
    core: tuple[int, int, int, int],
    inner: tuple[slice, slice],
    min_area: float,
) -> NDArray[np.uint8]:
    """One sieve round for the pixels of ``core``, from a window around it.

    Parameters
    ----------
    data
        Class values of the window (the core and its halo, clipped to the raster).
    grid
        The raster's grid (for pixel areas, connectivity and the raster's size).
    valid
        ``(256,)`` True for class values that form regions (not nodata).
    core
        ``(row_off, col_off, rows, cols)`` of the block in the raster.
    inner
        Where the core lies in ``data``.
    min_area
        Regions with less area (m²) are small.

    Returns
    -------
    numpy.ndarray
        The core's class values after the round.
    """
    labels, label_class = _label(data, valid, grid.connectivity)
    area = _region_areas(labels, grid, core, inner, len(label_class))
    small = area < min_area
    small[0] = False
    small[_cut_labels(labels, grid, core, inner)] = False  # reach beyond the window: large
    target = _merge_targets(labels, label_class, small)
    lut = label_class.copy()
    lut[0] = 0
    has_target = target >= 0
    lut[has_target] = target[has_target]
    core_labels = labels[inner]
    return np.where(core_labels > 0, lut[core_labels], data[inner]).astype(np.uint8)


def _region_areas(
    labels: NDArray[np.int32],
    grid: _Grid,
    core: tuple[int, int, int, int],
    inner: tuple[slice, slice],
    n: int,
) -> NDArray[np.float64]:
    """Area in m² of each label's pixels in the window."""
    top = core[0] - inner[0].start
    left = core[1] - inner[1].start
    rows = np.arange(top, top + labels.shape[0])[:, None]
    north_up = grid.transform.b == 0 and grid.transform.d == 0
    cols = np.arange(left, left + (1 if north_up else labels.shape[1]))[None, :]
    per_pixel = pixel_areas(grid, rows, cols)  # north up: one column serves every column
    if per_pixel.ndim == 0:
        counts = np.bincount(labels.ravel(), minlength=n)
        return np.asarray(counts * float(per_pixel), dtype=np.float64)
    weights = np.broadcast_to(per_pixel, labels.shape).ravel()
    return np.asarray(np.bincount(labels.ravel(), weights=weights, minlength=n), dtype=np.float64)


def _cut_labels(
    labels: NDArray[np.int32],
    grid: _Grid,
    core: tuple[int, int, int, int],
    inner: tuple[slice, slice],
) -> NDArray[np.int32]:
    """Labels on window edges that are not raster edges: regions that go on outside."""
    top = core[0] - inner[0].start
    left = core[1] - inner[1].start
    h, w = labels.shape
    edges = []
    if top > 0:
        edges.append(labels[0, :])
    if top + h < grid.shape[0]:
        edges.append(labels[-1, :])
    if left > 0:
        edges.append(labels[:, 0])
    if left + w < grid.shape[1]:
        edges.append(labels[:, -1])
    return np.unique(np.concatenate(edges)) if edges else np.zeros(0, dtype=np.int32)


def _merge_targets(
    labels: NDArray[np.int32], label_class: NDArray[np.uint8], small: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Per label, the class it merges into (-1: none): most shared pixel edges with large."""
    large = ~small
    large[0] = False  # nodata
    pairs = []
    for a, b in (
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
    ):
        for s, n in ((a, b), (b, a)):
            hit = small[s] & large[n]
            pairs.append(s[hit].astype(np.int64) * 256 + label_class[n[hit]].astype(np.int64))
    keys, counts = np.unique(np.concatenate(pairs), return_counts=True)
    target = np.full(len(label_class), -1, dtype=np.int64)
    if len(keys) == 0:
        return target
    region, cls = keys // 256, keys % 256
    order = np.lexsort((cls, -counts, region))  # per region: most edges, then lowest class
    region, cls = region[order], cls[order]
    first = np.ones(len(region), dtype=bool)
    first[1:] = region[1:] != region[:-1]
    target[region[first]] = cls[first]
    return target
