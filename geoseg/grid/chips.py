"""Window math for the global chip grid, blocks and merge cells; no I/O.

The whole of partition invariance rests here. One global grid of chips is laid
over the scene; a **block** is the unit of work and owns the chips whose origin
falls inside its rectangle, so every chip belongs to exactly one block and is
inferred once. A pixel may be covered by chips of several blocks: the scene is
cut into **cells** (rectangles where the set of contributing blocks is constant).
A cell with one contributor is finalized by that block's task; a cell with more
is finalized by the merger once every contributor has added its sums. Nothing
here depends on the block size except which task does the work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from geoseg.errors import ChipGridError
from geoseg.grid.windows import PixelWindow

Window = PixelWindow
"""A pixel window ``(row, col, height, width)``: :class:`~geoseg.grid.windows.PixelWindow`,
a tuple whose field names say the axis order (rasterio's ``Window`` is columns first)."""


def chip_starts(n: int, chip: int, stride: int) -> tuple[int, ...]:
    """Origins of chips along one axis of ``n`` pixels.

    Chips start every ``stride`` pixels; the last one is shifted back so that
    it ends exactly at the scene edge, so no chip reads outside the scene
    unless the scene is smaller than one chip (then one chip at 0, padded).

    Examples
    --------
    >>> chip_starts(1000, 512, 448)
    (0, 448, 488)
    >>> chip_starts(300, 512, 448)
    (0,)
    """
    if n <= chip:
        return (0,)
    starts = list(range(0, n - chip, stride))
    starts.append(n - chip)
    return tuple(starts)


def core_bounds(starts: tuple[int, ...], chip: int, n: int) -> tuple[int, ...]:
    """Boundaries of the chip centres along one axis (``len(starts) + 1`` values).

    Chip ``i`` keeps ``[bounds[i], bounds[i+1])`` when blending by ``crop``: the
    boundary between two chips is the middle of their overlap, so every kept
    pixel is at least ``overlap // 2`` pixels from an inner chip edge.

    Examples
    --------
    >>> core_bounds((0, 448, 488), 512, 1000)
    (0, 480, 724, 1000)
    """
    mids = [(starts[i + 1] + starts[i] + chip) // 2 for i in range(len(starts) - 1)]
    return (0, *mids, n)


@dataclass(frozen=True, slots=True)
class ChipGrid:
    """The global grid of chips over a scene of ``shape`` (rows, cols).

    ``overlap`` should be about twice the model's receptive-field radius so
    that chip edges (where the model sees zero padding) are never kept.
    """

    shape: tuple[int, int]
    chip: int
    overlap: int
    pad: bool = True

    def __post_init__(self) -> None:
        rows, cols = self.shape
        if rows < 1 or cols < 1:
            raise ChipGridError(f"scene shape {self.shape} is empty")
        if self.chip < 1:
            raise ChipGridError(f"chip must be a positive number of pixels, got {self.chip}")
        if not 0 <= self.overlap < self.chip:
            raise ChipGridError(
                f"overlap {self.overlap} must be at least 0 and smaller than chip {self.chip}; "
                f"pass a smaller --overlap or a larger --chip"
            )
        if not self.pad and (rows < self.chip or cols < self.chip):
            raise ChipGridError(
                f"chip {self.chip} is larger than the scene ({rows}x{cols} pixels) and padding "
                f"is off; pass a smaller --chip or allow padding"
            )

    @property
    def stride(self) -> int:
        """Pixels between the origins of neighbouring chips."""
        return self.chip - self.overlap

    @property
    def row_starts(self) -> tuple[int, ...]:
        """Chip origins along rows."""
        return chip_starts(self.shape[0], self.chip, self.stride)

    @property
    def col_starts(self) -> tuple[int, ...]:
        """Chip origins along columns."""
        return chip_starts(self.shape[1], self.chip, self.stride)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def block_window(self, block: Block) -> PixelWindow:
        """The union of a block's chips (may reach past the scene for padded chips)."""
        r0 = self.row_starts[block.row_chips[0]]
        c0 = self.col_starts[block.col_chips[0]]
        h = self.row_starts[block.row_chips[-1]] + self.chip - r0
        w = self.col_starts[block.col_chips[-1]] + self.chip - c0
        return PixelWindow(r0, c0, h, w)

    def max_cover(self) -> int:
        """Most chips that can cover one pixel (bounds the blending sums)."""
        per_axis = math.ceil(self.chip / self.stride) + 1
        return per_axis * per_axis


@dataclass(frozen=True, slots=True)
class Cell:
    """A rectangle of output pixels covered by a constant set of chips.

    ``row_chips``/``col_chips`` index the grid's chip origins; the chips that
    cover the cell are their product, and ``contributors`` the blocks owning
    them. A cell covered by one chip takes that chip's prediction as is; others
    are blended from the sums of every covering chip.
    """

    key: tuple[int, int]
    window: PixelWindow  # (row, col, height, width)
    row_chips: tuple[int, ...]
    col_chips: tuple[int, ...]
    contributors: tuple[tuple[int, int], ...]

    @property
    def expected(self) -> int:
        """Number of block tasks that add to this cell."""
        return len(self.contributors)

    @property
    def single(self) -> bool:
        """Whether exactly one chip covers the cell."""
        return len(self.row_chips) == 1 and len(self.col_chips) == 1


@dataclass(frozen=True, slots=True)
class Block:
    """A unit of work: the chips whose origin lies in one block rectangle."""

    index: tuple[int, int]
    row_chips: tuple[int, ...]  # indexes into ChipGrid.row_starts
    col_chips: tuple[int, ...]
    cells: tuple[Cell, ...] = field(repr=False)

    @property
    def n_chips(self) -> int:
        """Chips this block owns."""
        return len(self.row_chips) * len(self.col_chips)


def axis_owner(starts: tuple[int, ...], block: int, stride: int) -> list[int]:
    """Block index of each chip along an axis: ``block // stride`` consecutive chips per block.

    Ownership goes by chip index, not by origin, so the shifted last chip (whose
    origin lies less than a stride after its neighbour's) is counted like any
    other: blocks hold equal numbers of chips and no block is twice as slow as
    the rest, which would otherwise be the tail of every parallel run.

    When the shifted last chip would be alone in its block, the odd block goes
    first instead (``[1, k, ..., k]`` rather than ``[k, ..., k, 1]``): the same
    block sizes, but the shifted chip shares a block with the neighbour it
    overlaps by up to a whole stride. Split between two blocks, that wide strip
    would travel as integer sums (24 bytes a pixel for 5 classes) from both, the
    largest results of the run; the blocks' other seams are ``overlap`` wide.
    """
    per = max(1, block // stride)
    n = len(starts)
    lone_shifted = per > 1 and n > 1 and n % per == 1 and starts[-1] - starts[-2] < stride
    lead = per - 1 if lone_shifted else 0
    return [(i + lead) // per for i in range(n)]


def _axis_intervals(kept: list[tuple[int, int]], n: int) -> list[tuple[int, int, tuple[int, ...]]]:
    """Cut one axis into intervals covered by a constant set of chips.

    ``kept[i]`` is the ``[start, end)`` that chip ``i`` contributes along the axis.
    """
    cuts = sorted({0, n, *(min(a, n) for a, _ in kept), *(min(b, n) for _, b in kept)})
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        chips = tuple(i for i, (s, e) in enumerate(kept) if s <= a < e)
        out.append((a, b, chips))
    return out


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """Blocks and cells of a chip grid for one block size.

    With ``keep="chip"`` every pixel of a chip is blended (``smooth``); with
    ``keep="core"`` a chip contributes only its centre (``crop``), so every
    pixel comes from exactly one chip. A block owns ``block // stride`` (at
    least 1) consecutive chips per axis, so ``block`` is its edge in pixels
    rounded down to whole chip strides.
    """

    grid: ChipGrid
    block: int
    keep: str = "chip"

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ChipGridError(f"block must be a positive number of pixels, got {self.block}")

    def _kept(self, starts: tuple[int, ...], n: int) -> list[tuple[int, int]]:
        if self.keep == "core":
            bounds = core_bounds(starts, self.grid.chip, n)
            return list(zip(bounds[:-1], bounds[1:], strict=True))
        return [(s, s + self.grid.chip) for s in starts]

    def cells(self) -> list[Cell]:
        """Every cell of the scene, row-major."""
        g = self.grid
        rown = axis_owner(g.row_starts, self.block, g.stride)
        coln = axis_owner(g.col_starts, self.block, g.stride)
        rows = _axis_intervals(self._kept(g.row_starts, g.shape[0]), g.shape[0])
        cols = _axis_intervals(self._kept(g.col_starts, g.shape[1]), g.shape[1])
        out = []
        for i, (r0, r1, rch) in enumerate(rows):
            rb = sorted({rown[k] for k in rch})
            for j, (c0, c1, cch) in enumerate(cols):
                cb = sorted({coln[k] for k in cch})
                contributors = tuple((a, b) for a in rb for b in cb)
                window = PixelWindow(r0, c0, r1 - r0, c1 - c0)
                out.append(Cell((i, j), window, rch, cch, contributors))
        return out

    def blocks(self) -> Iterator[Block]:
        """Blocks that own at least one chip, row-major."""
        g = self.grid
        rown = axis_owner(g.row_starts, self.block, g.stride)
        coln = axis_owner(g.col_starts, self.block, g.stride)
        by_block: dict[tuple[int, int], list[Cell]] = {}
        for cell in self.cells():
            for c in cell.contributors:
                by_block.setdefault(c, []).append(cell)
        for bi in sorted(set(rown)):
            rchips = tuple(i for i, o in enumerate(rown) if o == bi)
            for bj in sorted(set(coln)):
                cchips = tuple(j for j, o in enumerate(coln) if o == bj)
                yield Block((bi, bj), rchips, cchips, tuple(by_block.get((bi, bj), ())))
