from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoseg.errors import ChipGridError
from geoseg.grid.chips import BlockPlan, ChipGrid, chip_starts, core_bounds


@given(n=st.integers(1, 3000), chip=st.integers(1, 600), overlap=st.integers(0, 599))
def test_chip_starts_cover_axis(n: int, chip: int, overlap: int) -> None:
    if overlap >= chip:
        return
    starts = chip_starts(n, chip, chip - overlap)
    assert list(starts) == sorted(set(starts))
    assert starts[0] == 0
    if n >= chip:
        assert starts[-1] + chip == n  # last chip ends on the scene edge
        assert all(s + chip <= n for s in starts)
        gaps = np.diff(starts)
        assert (gaps <= chip - overlap).all() and (gaps > 0).all()
    else:
        assert starts == (0,)


@given(n=st.integers(1, 2000), chip=st.integers(2, 300), overlap=st.integers(0, 299))
def test_core_bounds_partition_axis(n: int, chip: int, overlap: int) -> None:
    if overlap >= chip:
        return
    starts = chip_starts(n, chip, chip - overlap)
    bounds = core_bounds(starts, chip, n)
    assert bounds[0] == 0 and bounds[-1] == n
    assert all(a <= b for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    for i, s in enumerate(starts):
        lo, hi = bounds[i], bounds[i + 1]
        assert s <= lo and hi <= s + chip  # a chip only keeps pixels it has
        if i > 0:
            assert lo - s >= overlap // 2
        if i < len(starts) - 1:
            assert s + chip - hi >= overlap // 2


def _owners(starts: tuple[int, ...], block: int, stride: int) -> list[int]:
    """Blocks of `per` chips; a lone shifted last chip moves the odd block to the front."""
    per = max(1, block // stride)
    sizes = [per] * (len(starts) // per) + ([len(starts) % per] if len(starts) % per else [])
    if sizes[-1] == 1 and len(sizes) > 1 and starts[-1] - starts[-2] < stride:
        sizes = [1, *sizes[:-1]]
    return [b for b, size in enumerate(sizes) for _ in range(size)]


def _brute_cover(grid: ChipGrid, block: int, keep: str) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the set of owning blocks and the number of chips that contribute."""
    rows, cols = grid.shape
    owners = np.empty((rows, cols), dtype=object)
    for r in range(rows):
        for c in range(cols):
            owners[r, c] = set()
    count = np.zeros((rows, cols), dtype=int)
    rb = core_bounds(grid.row_starts, grid.chip, rows)
    cb = core_bounds(grid.col_starts, grid.chip, cols)
    row_owner = _owners(grid.row_starts, block, grid.stride)
    col_owner = _owners(grid.col_starts, block, grid.stride)
    for i, rs in enumerate(grid.row_starts):
        r0, r1 = (rb[i], rb[i + 1]) if keep == "core" else (rs, min(rs + grid.chip, rows))
        for j, cs in enumerate(grid.col_starts):
            c0, c1 = (cb[j], cb[j + 1]) if keep == "core" else (cs, min(cs + grid.chip, cols))
            for r in range(r0, r1):
                for c in range(c0, c1):
                    owners[r, c].add((row_owner[i], col_owner[j]))
            count[r0:r1, c0:c1] += 1
    return owners, count


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 70),
    cols=st.integers(1, 70),
    chip=st.integers(4, 30),
    overlap=st.integers(0, 12),
    block=st.integers(3, 80),
    keep=st.sampled_from(["chip", "core"]),
)
def test_cells_partition_scene_with_right_contributors(
    rows: int, cols: int, chip: int, overlap: int, block: int, keep: str
) -> None:
    if overlap >= chip:
        return
    grid = ChipGrid((rows, cols), chip, overlap)
    plan = BlockPlan(grid, block, keep=keep)
    seen = np.zeros((rows, cols), dtype=int)
    owners, count = _brute_cover(grid, block, keep)
    cells = plan.cells()
    for cell in cells:
        r0, c0, h, w = cell.window
        seen[r0 : r0 + h, c0 : c0 + w] += 1
        assert (count[r0 : r0 + h, c0 : c0 + w] == len(cell.row_chips) * len(cell.col_chips)).all()
        for r in range(r0, r0 + h):
            for c in range(c0, c0 + w):
                assert owners[r, c] == set(cell.contributors)
    assert (seen == 1).all()
    if keep == "core":
        assert all(c.single and c.expected == 1 for c in cells)
    blocks = list(plan.blocks())
    owned = [(i, j) for b in blocks for i in b.row_chips for j in b.col_chips]
    assert sorted(owned) == sorted(
        (i, j) for i in range(len(grid.row_starts)) for j in range(len(grid.col_starts))
    )
    for b in blocks:  # a block lists exactly the cells it contributes to
        assert {c.key for c in b.cells} == {c.key for c in cells if b.index in c.contributors}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (100, 100), "chip": 64, "overlap": 64}, "overlap 64"),
        ({"shape": (100, 100), "chip": 64, "overlap": -1}, "overlap -1"),
        ({"shape": (0, 100), "chip": 64, "overlap": 8}, "empty"),
        ({"shape": (50, 100), "chip": 64, "overlap": 8, "pad": False}, "larger than the scene"),
        ({"shape": (50, 100), "chip": 0, "overlap": 0}, "positive"),
    ],
)
def test_grid_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ChipGridError, match=match):
        ChipGrid(**kwargs)


def test_blocks_own_each_chip_once_for_any_block_size() -> None:
    grid = ChipGrid((1001, 777), 128, 32)
    for block in (64, 100, 256, 512, 4096):
        blocks = list(BlockPlan(grid, block).blocks())
        assert sum(b.n_chips for b in blocks) == len(grid)


def test_blocks_hold_equal_chip_counts_including_the_shifted_last_chip() -> None:
    # 2048 px, chip 512, stride 448: origins 0, 448, 896, 1344 and the shifted 1536.
    grid = ChipGrid((2048, 2048), 512, 64)
    assert grid.row_starts[-1] - grid.row_starts[-2] < grid.stride
    assert {b.n_chips for b in BlockPlan(grid, grid.stride).blocks()} == {1}
    counts = sorted(b.n_chips for b in BlockPlan(grid, 2 * grid.stride).blocks())
    assert counts == [1] + [2] * 4 + [4] * 4  # 5 chips per axis: 1 + 2 + 2


def test_shifted_last_chip_shares_a_block_with_the_neighbour_it_overlaps() -> None:
    """The 448-px strip between origins 1344 and 1536 is finished inside one block.

    Split between two blocks it would be the widest shared cell of the scene,
    sent as integer sums by both; only ``overlap``-wide seams should be shared.
    """
    grid = ChipGrid((2048, 2048), 512, 64)
    plan = BlockPlan(grid, 2 * grid.stride)
    blocks = list(plan.blocks())
    assert [b.row_chips for b in blocks if b.index[1] == 0] == [(0,), (1, 2), (3, 4)]
    shared = [c for c in plan.cells() if len(c.contributors) > 1]
    assert shared and max(min(c.window[2], c.window[3]) for c in shared) == grid.overlap
    # without a shifted chip (4096 px: origins 0, 448, ... 3584) the odd block stays last
    even = ChipGrid((4096, 4096), 512, 64)
    rows = [b.row_chips for b in BlockPlan(even, 2 * even.stride).blocks() if b.index[1] == 0]
    assert rows[0] == (0, 1) and rows[-1] == (8,)


# -- pixel windows (geoseg.grid.windows) ----------------------------------------


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 300), cols=st.integers(0, 300), size=st.integers(1, 120))
def test_iter_windows_tile_the_raster_once_row_major(rows: int, cols: int, size: int) -> None:
    from geoseg.grid.windows import PixelWindow, iter_windows

    seen = np.zeros((rows, cols), dtype=np.int32)
    origins = []
    for w in iter_windows((rows, cols), size):
        pw = PixelWindow.from_rasterio(w)
        assert 0 < pw.height <= size and 0 < pw.width <= size
        seen[pw.slices] += 1
        origins.append((pw.row, pw.col))
    assert (seen == 1).all()
    assert origins == sorted(origins)  # row-major


@pytest.mark.parametrize("size", [0, -3, 2.5, True, (4, 0)])
def test_iter_windows_refuses_bad_sizes(size: object) -> None:
    from geoseg.grid.windows import iter_windows

    with pytest.raises(ChipGridError, match="positive number of pixels"):
        list(iter_windows((10, 10), size))  # type: ignore[arg-type]


def test_pixel_window_names_its_axes_and_stays_a_tuple() -> None:
    from geoseg.grid.windows import PixelWindow, grow_window, iter_strips

    w = PixelWindow(row=1, col=2, height=3, width=4)
    assert w == (1, 2, 3, 4) and tuple(w) == (1, 2, 3, 4)
    rio = w.to_rasterio()
    assert (rio.row_off, rio.col_off, rio.height, rio.width) == (1, 2, 3, 4)
    cells = BlockPlan(ChipGrid((300, 200), chip=128, overlap=16), block=128).cells()
    assert all(isinstance(c.window, PixelWindow) for c in cells)
    strips = [PixelWindow.from_rasterio(s) for s in iter_strips((7, 3), 6)]
    assert strips == [(0, 0, 2, 3), (2, 0, 2, 3), (4, 0, 2, 3), (6, 0, 1, 3)]
    grown, inner = grow_window(PixelWindow(2, 2, 2, 2), 5, (6, 5))
    assert grown == (0, 0, 6, 5) and inner == (slice(2, 4), slice(2, 4))
