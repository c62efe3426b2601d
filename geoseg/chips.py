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

Window = tuple[int, int, int, int]
"""A pixel window ``(row_off, col_off, height, width)``."""


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

    def max_cover(self) -> int:
        """Most chips that can cover one pixel (bounds the blending sums)."""
        per_axis = math.ceil(self.chip / self.stride) + 1
        return per_axis * per_axis


@dataclass(frozen=True, slots=True)
class Cell:
    """A rectangle of output pixels with a constant set of contributing blocks."""

    key: tuple[int, int]
    window: Window
    contributors: tuple[tuple[int, int], ...]

    @property
    def expected(self) -> int:
        """Number of block tasks that add to this cell."""
        return len(self.contributors)


@dataclass(frozen=True, slots=True)
class Block:
    """A unit of work: the chips whose origin lies in one block rectangle."""

    index: tuple[int, int]
    row_chips: tuple[int, ...]  # indexes into ChipGrid.row_starts
    col_chips: tuple[int, ...]
    extent: Window  # union of the block's chips, clipped to the scene
    cells: tuple[Cell, ...] = field(repr=False)

    @property
    def n_chips(self) -> int:
        """Chips this block owns."""
        return len(self.row_chips) * len(self.col_chips)


def _axis_owner(starts: tuple[int, ...], block: int) -> list[int]:
    return [s // block for s in starts]


def _axis_intervals(
    starts: tuple[int, ...], chip: int, n: int, block: int
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Cut one axis into intervals with a constant set of owning block indexes."""
    owners = _axis_owner(starts, block)
    cuts = sorted({0, n, *(min(s, n) for s in starts), *(min(s + chip, n) for s in starts)})
    out: list[tuple[int, int, tuple[int, ...]]] = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        ids = tuple(sorted({o for s, o in zip(starts, owners, strict=True) if s <= a < s + chip}))
        if out and out[-1][2] == ids and out[-1][1] == a:
            out[-1] = (out[-1][0], b, ids)
        else:
            out.append((a, b, ids))
    return out


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """Blocks and merge cells of a chip grid for one block size."""

    grid: ChipGrid
    block: int

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ChipGridError(f"block must be a positive number of pixels, got {self.block}")

    def cells(self) -> list[Cell]:
        """Every cell of the scene, row-major."""
        g = self.grid
        rows = _axis_intervals(g.row_starts, g.chip, g.shape[0], self.block)
        cols = _axis_intervals(g.col_starts, g.chip, g.shape[1], self.block)
        out = []
        for i, (r0, r1, rids) in enumerate(rows):
            for j, (c0, c1, cids) in enumerate(cols):
                contributors = tuple((a, b) for a in rids for b in cids)
                out.append(Cell((i, j), (r0, c0, r1 - r0, c1 - c0), contributors))
        return out

    def blocks(self) -> Iterator[Block]:
        """Blocks that own at least one chip, row-major."""
        g = self.grid
        rown = _axis_owner(g.row_starts, self.block)
        coln = _axis_owner(g.col_starts, self.block)
        by_block: dict[tuple[int, int], list[Cell]] = {}
        for cell in self.cells():
            for c in cell.contributors:
                by_block.setdefault(c, []).append(cell)
        for bi in sorted(set(rown)):
            rchips = tuple(i for i, o in enumerate(rown) if o == bi)
            for bj in sorted(set(coln)):
                cchips = tuple(j for j, o in enumerate(coln) if o == bj)
                r0 = g.row_starts[rchips[0]]
                c0 = g.col_starts[cchips[0]]
                r1 = min(g.row_starts[rchips[-1]] + g.chip, g.shape[0])
                c1 = min(g.col_starts[cchips[-1]] + g.chip, g.shape[1])
                yield Block((bi, bj), rchips, cchips, (r0, c0, r1 - r0, c1 - c0),
                            tuple(by_block.get((bi, bj), ())))
