"""A block's 4-connected label image to polygons, with array operations: GDAL's output.

This replaces ``rasterio.features.shapes`` (GDAL's polygonizer) for
4-connected labels. GDAL hands its polygons over as GeoJSON-like dicts of
tuples, which then have to become arrays again; on the 8192² benchmark that
round trip and GDAL's own work were ~40 % of ``vectorize``'s time. Here the
rings come out as flat coordinate arrays, in the same order and with the same
vertices GDAL gives (``tests/vector/test_trace.py`` checks that, exactly).

How it works. Every ring runs along pixel edges with its region on the left
(in pixel space, rows down: shells go down from their top-left corner, holes
go right from theirs) and only its *corners* are kept. At a pixel corner
(vertex) with the four pixels NW, NE, SW, SE, an edge arriving along one of
the four arms belongs to the region on its left, and where it goes next is
decided by those four pixels alone: turn right if the region holds the pixel
ahead on the right (this is also the rule where the region touches itself at
the corner, holding two opposite pixels: the ring goes round the same outside
pixel, so the two outside pixels stay in separate rings, as GDAL and GEOS
write it), go straight if it holds the one ahead on the left (no corner),
turn left otherwise. So a corner is a (vertex, arm) pair found with a few
comparisons of shifted views of the padded label image.

A corner leaving along, say, east is followed by the first corner that
arrives from the west further along the same vertex row. Straight runs of
one direction on one line do not overlap, so in raster order the i-th corner
leaving east is followed by the i-th corner arriving from the west: no
search. For north and south the same holds down the columns, once the
corners are in column order (a stable radix sort of their column numbers).

That gives a successor for every corner, a permutation whose cycles are the
rings. Putting each cycle in order is a walk, which numpy cannot do; SciPy's
compiled depth-first search can: from a virtual chain of nodes, each pointing
at one candidate ring start (the corners where a ring can have its top-left
vertex, in raster order) and at the next virtual node, the preorder lists
each ring in walking order, from the first candidate reached, which is the
ring's top-left vertex. Rings then go by label (stable, so the shell, whose
top-left vertex comes first, leads and the holes follow in raster order of
their top-left vertices, as GDAL's do).

Only for 4-connectivity (labels of 8-connected regions hold parts that touch
at a corner only, which GDAL returns as separate polygons); the caller keeps
GDAL for those, and for anything that fails the checks here (``None``).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import depth_first_order

Ints = NDArray[np.int64]


def trace_rings(
    labels: NDArray[np.integer],
) -> tuple[Ints, Ints, Ints] | None:
    """Rings of every label of a 4-connected label image, in pixel coordinates of the image.

    Returns ``xy`` (open rings laid end to end, corners only), the
    ring offsets into ``xy`` (one more than rings) and the polygon offsets into
    the rings (one more than labels): polygon ``i`` is label ``i + 1``, its
    shell first, then its holes. Labels must run from 1 without gaps (0: no
    polygon). ``None`` when the rings found do not make one shell per label.
    """
    h, w = labels.shape
    n_labels = int(labels.max(initial=0))
    if n_labels == 0:
        return np.zeros((0, 2), np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
    # the narrowest type that holds the labels: the comparisons below read less memory
    pad = np.zeros((h + 2, w + 2), dtype=np.int16 if n_labels < 2**15 else np.int32)
    pad[1:-1, 1:-1] = labels
    code = _corner_codes(pad)
    corners = _Corners(code)
    succ = corners.successors()
    if succ is None:
        return None
    walked = _walk(succ, corners.ring_starts())
    if walked is None:
        return None
    order, ring_start = walked
    first = order[ring_start]
    shell = corners.node_arm[first] == _E  # E-arm corners start shells, S-arm corners holes
    start_vertex = corners.node_vertex[first]
    vx, vy = corners.x[start_vertex], corners.y[start_vertex]
    label = pad[vy + 1, vx + shell]  # SE of the vertex for a shell, SW for a hole
    one_shell_each = np.array_equal(np.sort(label[shell]), np.arange(1, n_labels + 1))
    if not one_shell_each:
        return None
    by_label = np.argsort(label, kind="stable")
    sizes = np.diff(np.append(ring_start, len(order)))[by_label]
    vertex = corners.node_vertex[order[_ranges(ring_start[by_label], sizes)]]
    xy = np.stack([corners.x[vertex], corners.y[vertex]], axis=1)
    ring_off = np.concatenate([[0], np.cumsum(sizes)])
    poly_off = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=n_labels + 1)[1:])])
    return xy, ring_off, poly_off


def polygons(labels: NDArray[np.integer], offset: tuple[int, int]) -> NDArray[np.object_] | None:
    """One Polygon per label (index ``label - 1``), in pixel coordinates shifted by ``offset``.

    ``offset`` is ``(row, col)`` of the image's first pixel; ``None`` as for
    :func:`trace_rings`.
    """
    traced = trace_rings(labels)
    if traced is None:
        return None
    xy, ring_off, poly_off = traced
    coords, offsets = closed_rings(xy, ring_off)
    coords[:, 0] += offset[1]
    coords[:, 1] += offset[0]
    return np.asarray(
        shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords, (offsets, poly_off)),
        dtype=object,
    )


def closed_rings(xy: Ints, ring_off: Ints) -> tuple[NDArray[np.float64], Ints]:
    """Open rings to closed ones (first point repeated), as float64; the new offsets."""
    sizes = np.diff(ring_off)
    pick = _ranges(ring_off[:-1], sizes + 1)
    ends = np.cumsum(sizes + 1) - 1
    pick[ends] = ring_off[:-1]
    return xy[pick].astype(np.float64), np.concatenate([[0], ends + 1])


# --- corners ---------------------------------------------------------------------------

# The arm an edge arrives by, and one bit per (arm, turn) in a vertex's corner code.
_N, _S, _E, _W = 0, 1, 2, 3
_N_RIGHT, _N_LEFT = 0x01, 0x02  # arriving heading south: right turn heads west, left east
_S_RIGHT, _S_LEFT = 0x04, 0x08  # heading north: right east, left west
_E_RIGHT, _E_LEFT = 0x10, 0x20  # heading west: right north, left south
_W_RIGHT, _W_LEFT = 0x40, 0x80  # heading east: right south, left north
_ARM_BITS = (_N_RIGHT | _N_LEFT, _S_RIGHT | _S_LEFT, _E_RIGHT | _E_LEFT, _W_RIGHT | _W_LEFT)


def _corner_codes(pad: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Per vertex of the padded label image's inner grid, the corners there (bits above).

    The edge arriving along the north arm runs south between NW and NE and
    belongs to NE (region on the left); ahead lie SE (left) and SW (right).
    It turns right if SW is NE's too, goes straight if SE is, turns left
    otherwise. The other arms are the same turned by quarter turns.
    """
    nw, ne, sw, se = pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]
    occupied = pad > 0
    on_n, on_s = nw != ne, sw != se  # an edge on the north / south arm
    on_e, on_w = ne != se, nw != sw  # on the east / west arm
    anti, diag = ne == sw, nw == se  # opposite pixels alike
    not_anti, not_diag = ~anti, ~diag
    in_n, in_s = on_n & occupied[:-1, 1:], on_s & occupied[1:, :-1]
    in_e, in_w = on_e & occupied[1:, 1:], on_w & occupied[:-1, :-1]
    code: NDArray[np.uint8] = (in_n & anti).view(np.uint8)  # _N_RIGHT
    for mask, bit in (
        (in_n & on_e & not_anti, _N_LEFT),
        (in_s & anti, _S_RIGHT),
        (in_s & on_w & not_anti, _S_LEFT),
        (in_e & diag, _E_RIGHT),
        (in_e & on_s & not_diag, _E_LEFT),
        (in_w & diag, _W_RIGHT),
        (in_w & on_n & not_diag, _W_LEFT),
    ):
        code |= mask.view(np.uint8) * np.uint8(bit)
    return code


class _Corners:
    """The corners of one code image, numbered vertex by vertex (row-major), arm by arm.

    ``x``, ``y``: each corner vertex (row-major); ``node_vertex``,
    ``node_arm``: each corner's vertex (index into ``x``) and arm.
    """

    def __init__(self, code: NDArray[np.uint8]) -> None:
        w1 = code.shape[1]
        flat = code.ravel()
        where = np.flatnonzero(flat)
        self.code = flat[where]
        self.x, self.y = where % w1, where // w1
        # the same vertices column by column: a stable sort by column keeps each column's
        # vertices in row order (a radix sort on 16-bit keys)
        column = self.x.astype(np.int16 if w1 < 2**15 else np.int64)
        self.by_column = np.argsort(column, kind="stable")
        present = np.stack([(self.code & bits) != 0 for bits in _ARM_BITS], axis=1).ravel()
        self.node = np.cumsum(present) - 1  # node id of (vertex, arm) at 4 * vertex + arm
        slots = np.flatnonzero(present)
        self.node_vertex, self.node_arm = slots // 4, slots % 4
        self.n = len(slots)

    def _ids(self, vertex: Ints, first_bit: int, arm_if: int, arm_else: int) -> Ints:
        arm = np.where(self.code[vertex] & first_bit, arm_if, arm_else)
        return self.node[4 * vertex + arm]

    def successors(self) -> Ints | None:
        """Each corner's next corner: the one ending the straight run it starts.

        Runs of one heading on one line do not overlap, so in raster order
        (column-major for north and south) the i-th corner leaving along a
        heading is followed by the i-th corner arriving with that heading.
        """
        code, col = self.code, self.by_column
        succ = np.empty(self.n, dtype=np.int64)
        for starts, ends, vertices, first_bit, arm_if, arm_else, end_arm in (
            (_N_LEFT | _S_RIGHT, _ARM_BITS[_W], None, _N_LEFT, _N, _S, _W),  # east
            (_N_RIGHT | _S_LEFT, _ARM_BITS[_E], None, _N_RIGHT, _N, _S, _E),  # west
            (_E_LEFT | _W_RIGHT, _ARM_BITS[_N], col, _E_LEFT, _E, _W, _N),  # south
            (_E_RIGHT | _W_LEFT, _ARM_BITS[_S], col, _E_RIGHT, _E, _W, _S),  # north
        ):
            c = code if vertices is None else code[vertices]
            s, e = np.flatnonzero(c & starts), np.flatnonzero(c & ends)
            if vertices is not None:
                s, e = vertices[s], vertices[e]
            if len(s) != len(e):
                return None
            succ[self._ids(s, first_bit, arm_if, arm_else)] = self.node[4 * e + end_arm]
        return succ

    def ring_starts(self) -> Ints:
        """Corners where a ring can have its top-left vertex, in raster order.

        A shell's: arriving along the east arm and turning left (down); a
        hole's: arriving along the south arm and turning right.
        """
        both = np.stack([(self.code & _E_LEFT) != 0, (self.code & _S_RIGHT) != 0], axis=1)
        slot = np.flatnonzero(both.ravel())
        vertex, arm = slot // 2, np.where(slot % 2, _S, _E)
        return self.node[4 * vertex + arm]


# --- walking the rings -----------------------------------------------------------------


def _walk(succ: Ints, starts: Ints) -> tuple[Ints, Ints] | None:
    """Every cycle of ``succ`` in walking order from its first node among ``starts``.

    Returns the nodes, cycle after cycle, and where each cycle starts; ``None``
    if some node is on no cycle through a start, or the search did not walk
    as expected (each cycle whole, from its first start, in the order of
    ``starts``), so a change in SciPy's search cannot go unnoticed.
    """
    n, m = len(succ), len(starts)
    if m == 0 or n + 2 * m >= 2**31:  # int32 indices
        return None
    # node i -> succ[i]; virtual node n + k -> starts[k], then n + k + 1 (the last: itself)
    indices = np.empty(n + 2 * m, dtype=np.int32)
    indices[:n] = succ
    indices[n::2] = starts
    indices[n + 1 :: 2] = np.arange(n + 1, n + m + 1)
    indices[-1] = n + m - 1
    indptr = np.concatenate([np.arange(n + 1), n + 2 * np.arange(1, m + 1)]).astype(np.int32)
    graph = csr_array((np.ones(n + 2 * m, dtype=np.int8), indices, indptr), shape=(n + m, n + m))
    visited = depth_first_order(graph, n, directed=True, return_predecessors=False)
    real = visited < n
    order = visited[real].astype(np.int64)
    if len(order) != n:
        return None
    after_virtual = np.flatnonzero(real[1:] & ~real[:-1])  # positions in visited, less one
    ring_start = np.cumsum(real)[after_virtual + 1] - 1
    # each ring closes on itself and starts at its earliest start, rings in start order
    ring_end = np.append(ring_start[1:], n) - 1
    ring = np.empty(n, dtype=np.int64)
    ring[order] = np.repeat(np.arange(len(ring_start)), ring_end - ring_start + 1)
    first_start = np.full(len(ring_start), m)
    np.minimum.at(first_start, ring[starts], np.arange(m))
    if not (
        np.array_equal(succ[order[ring_end]], order[ring_start])
        and np.array_equal(starts[first_start], order[ring_start])
        and np.all(np.diff(first_start) > 0)
    ):
        return None
    return order, ring_start


def _ranges(starts: Ints, sizes: Ints) -> Ints:
    """``starts[i] + arange(sizes[i])`` for every i, laid end to end."""
    heads = np.cumsum(sizes) - sizes
    return np.repeat(starts - heads, sizes) + np.arange(int(sizes.sum()))
