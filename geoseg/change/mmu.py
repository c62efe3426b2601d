"""Minimum mapping unit: drop patches of a change class under an area, exact per block."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geoseg.change.grid import AlignedStack
from geoseg.errors import InputError
from geoseg.grid.windows import PixelWindow, grow_window

MAX_HALO = 4096
"""Largest MMU halo (pixels) read around a block; a larger ``mmu_m2`` is refused."""


@dataclass(frozen=True, slots=True)
class _Mmu:
    """Patches of ``selected`` values under ``area_m2`` become ``fill``."""

    area_m2: float
    selected: NDArray[np.bool_]  # by value (len 65536)
    connectivity: int
    halo: int
    fill: int


def _mmu(
    stack: AlignedStack,
    area_m2: float,
    selected: NDArray[np.bool_],
    *,
    connectivity: int,
    fill: int,
) -> _Mmu | None:
    if not (isinstance(area_m2, int | float) and math.isfinite(area_m2) and area_m2 >= 0):
        raise InputError(f"mmu_m2 must be an area in m² ≥ 0, got {area_m2!r}")
    if connectivity not in (4, 8):
        raise InputError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if area_m2 == 0:
        return None
    rows = Window(0, 0, 1, stack.grid.shape[0])
    smallest = float(np.min(stack.areas.rows(rows)))
    halo = math.ceil(area_m2 / smallest)  # a patch under the MMU has fewer pixels than this
    if halo > MAX_HALO:
        raise InputError(
            f"mmu_m2 {area_m2:g} is {halo} pixels of this grid; at most {MAX_HALO} are handled: "
            "use a smaller MMU or coarser rasters"
        )
    return _Mmu(float(area_m2), selected, connectivity, halo, fill)


def _grow(window: Window, halo: int, shape: tuple[int, int]) -> tuple[Window, tuple[slice, slice]]:
    """``window`` grown by ``halo`` (clipped to the raster) and where ``window`` lies in it."""
    grown, inner = grow_window(PixelWindow.from_rasterio(window), halo, shape)
    return grown.to_rasterio(), inner


def drop_small_patches(
    data: NDArray[Any],
    *,
    selected: NDArray[np.bool_],
    row_area: NDArray[np.float64],
    min_area: float,
    connectivity: int = 4,
    fill: int = 0,
    open_edges: tuple[bool, bool, bool, bool] = (False, False, False, False),
) -> NDArray[Any]:
    """Set patches of equal ``selected`` values with area under ``min_area`` to ``fill``.

    Parameters
    ----------
    data
        Values of a window (2-D, any integer type).
    selected
        Per value, whether its patches are subject to the MMU.
    row_area
        Area in m² of one pixel in each row of ``data``.
    min_area
        Patches with less area are dropped.
    connectivity
        4 or 8.
    fill
        The value dropped pixels take.
    open_edges
        (top, bottom, left, right): edges where the raster goes on beyond the
        window; a patch touching one is kept (it is larger than the halo).

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [1, 0, 0, 2]])
    >>> sel = np.array([False, True, True])
    >>> drop_small_patches(a, selected=sel, row_area=np.ones(3), min_area=3).tolist()
    [[0, 0, 0, 2], [0, 0, 0, 2], [0, 0, 0, 2]]
    """
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels = np.zeros(data.shape, dtype=np.int64)
    count = 0
    for value in np.unique(data):
        if value >= len(selected) or not selected[value]:
            continue
        mask = data == value
        lab, n = ndimage.label(mask, structure=structure)
        labels[mask] = lab[mask] + count
        count += n
    if count == 0:
        return data
    weights = np.broadcast_to(row_area[:, None], data.shape)
    area = np.bincount(labels.ravel(), weights=weights.ravel(), minlength=count + 1)
    small = area < min_area
    small[0] = False
    for edge, line in zip(
        open_edges, (labels[0], labels[-1], labels[:, 0], labels[:, -1]), strict=True
    ):
        if edge:
            small[line] = False
    return np.where(small[labels], fill, data).astype(data.dtype)


def _apply_mmu(
    values: NDArray[Any],
    window: Window,
    grown: Window,
    stack: AlignedStack,
    mmu: _Mmu | None,
) -> NDArray[Any]:
    if mmu is None:
        return values
    shape = stack.grid.shape
    top, left = int(grown.row_off), int(grown.col_off)
    edges = (top > 0, top + values.shape[0] < shape[0], left > 0, left + values.shape[1] < shape[1])
    return drop_small_patches(
        values,
        selected=mmu.selected,
        row_area=stack.areas.rows(grown),
        min_area=mmu.area_m2,
        connectivity=mmu.connectivity,
        fill=mmu.fill,
        open_edges=edges,
    )
