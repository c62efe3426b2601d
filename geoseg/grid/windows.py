"""Pixel windows: a value type whose names say the axis order, and one window iterator.

geoseg's own windows are ``(row, col, height, width)`` (rows first, as array
shapes are); rasterio's :class:`rasterio.windows.Window` is ``(col_off, row_off,
width, height)``. The two met as bare tuples in the same modules, so
:class:`PixelWindow` names its fields and converts explicitly
(:meth:`PixelWindow.to_rasterio`, :meth:`PixelWindow.from_rasterio`). It is a
``NamedTuple``, so ``r, c, h, w = window`` keeps working.

Rasters read block by block use :func:`iter_windows` (square blocks or strips
as wide as the raster, row-major), :func:`block_window` (one block by index)
and :func:`grow_window` (a block with a halo around it, clipped to the raster).

Examples
--------
>>> w = PixelWindow(row=10, col=20, height=3, width=4)
>>> w.to_rasterio()
Window(col_off=20, row_off=10, width=4, height=3)
>>> PixelWindow.from_rasterio(w.to_rasterio()) == w
True
>>> [tuple(PixelWindow.from_rasterio(x)) for x in iter_windows((3, 5), 2)]
[(0, 0, 2, 2), (0, 2, 2, 2), (0, 4, 2, 1), (2, 0, 1, 2), (2, 2, 1, 2), (2, 4, 1, 1)]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from geoseg.errors import ChipGridError

if TYPE_CHECKING:
    from rasterio.windows import Window


class PixelWindow(NamedTuple):
    """A pixel rectangle ``(row, col, height, width)``: offsets and size, rows first."""

    row: int
    col: int
    height: int
    width: int

    def to_rasterio(self) -> Window:
        """The same rectangle as a rasterio ``Window`` (columns first)."""
        from rasterio.windows import Window

        return Window(self.col, self.row, self.width, self.height)

    @classmethod
    def from_rasterio(cls, window: Window) -> PixelWindow:
        """A rasterio ``Window`` (whole pixels) as a ``PixelWindow``."""
        return cls(int(window.row_off), int(window.col_off), int(window.height), int(window.width))

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the window in an array of the whole raster.

        >>> PixelWindow(1, 2, 3, 4).slices
        (slice(1, 4, None), slice(2, 6, None))
        """
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ChipGridError(f"block must be a positive number of pixels, got {size!r}")


def iter_windows(shape: tuple[int, int], size: int | tuple[int, int]) -> Iterator[Window]:
    """Rasterio windows of ``size`` pixels (square, or ``(rows, cols)``) covering ``shape``.

    Row-major; the last row and column of windows are cut at the raster's edge.

    Raises
    ------
    ChipGridError
        A size that is not a positive integer.
    """
    rows_step, cols_step = size if isinstance(size, tuple) else (size, size)
    _check_size(rows_step)
    _check_size(cols_step)
    for r in range(0, shape[0], rows_step):
        for c in range(0, shape[1], cols_step):
            yield PixelWindow(
                r, c, min(rows_step, shape[0] - r), min(cols_step, shape[1] - c)
            ).to_rasterio()


def iter_strips(shape: tuple[int, int], pixels: int) -> Iterator[Window]:
    """Full-width windows of about ``pixels`` pixels each (at least one row), top to bottom.

    >>> [(int(w.row_off), int(w.height)) for w in iter_strips((5, 4), 8)]
    [(0, 2), (2, 2), (4, 1)]
    """
    rows, cols = shape
    return iter_windows(shape, (max(1, pixels // max(cols, 1)), max(cols, 1)))


def block_window(shape: tuple[int, int], size: int, index: tuple[int, int]) -> PixelWindow:
    """Block ``index`` (block row, block column) of square ``size`` blocks, cut at the edge.

    >>> block_window((5, 7), 4, (1, 1))
    PixelWindow(row=4, col=4, height=1, width=3)
    """
    r0, c0 = index[0] * size, index[1] * size
    return PixelWindow(r0, c0, min(size, shape[0] - r0), min(size, shape[1] - c0))


def grow_window(
    window: PixelWindow, halo: int, shape: tuple[int, int]
) -> tuple[PixelWindow, tuple[slice, slice]]:
    """``window`` grown by ``halo`` pixels (clipped to ``shape``), and where it lies inside.

    >>> grow_window(PixelWindow(0, 4, 2, 2), 1, (3, 6))
    (PixelWindow(row=0, col=3, height=3, width=3), (slice(0, 2, None), slice(1, 3, None)))
    """
    r0, c0, h, w = window
    top, left = max(0, r0 - halo), max(0, c0 - halo)
    bottom, right = min(shape[0], r0 + h + halo), min(shape[1], c0 + w + halo)
    inner = (slice(r0 - top, r0 - top + h), slice(c0 - left, c0 - left + w))
    return PixelWindow(top, left, bottom - top, right - left), inner
