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
leaving east is followed by the i-th corner arriving from the west (columns,
in column-major order, for north and south): no sort and no search.

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
) -> tuple[NDArray[np.int32], Ints, Ints] | None:
    """Rings of every label of a 4-connected label image, in pixel coordinates of the image.

    Returns ``xy`` (open rings laid end to end, corners only, ``int32``), the
    ring offsets into ``xy`` (one more than rings) and the polygon offsets into
    the rings (one more than labels): polygon ``i`` is label ``i + 1``, its
    shell first, then its holes. Labels must run from 1 without gaps (0: no
    polygon). ``None`` when the rings found do not make one shell per label.
    """
    h, w = labels.shape
    n_labels = int(labels.max(initial=0))
    if n_labels == 0:
        return np.zeros((0, 2), np.int32), np.zeros(1, np.int64), np.zeros(1, np.int64)
    pad = np.zeros((h + 2, w + 2), dtype=np.int32)
    pad[1:-1, 1:-1] = labels
    nw, ne, sw, se = pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]
    occupied = pad > 0
    arms = _corners(nw, ne, sw, se, occupied)
    h1, w1 = h + 1, w + 1
    nodes = _Nodes(arms, h1, w1)
    succ = np.empty(nodes.n, dtype=np.int64)
    # a corner leaving along a direction, and the corner that ends that straight run
    for leave, arrive, row_major, end_arm in (
        (("N", "left"), ("S", "right"), True, "W"),  # east
        (("N", "right"), ("S", "left"), True, "E"),  # west
        (("E", "left"), ("W", "right"), False, "N"),  # south
        (("E", "right"), ("W", "left"), False, "S"),  # north
    ):
        a = arms[leave[0]][leave[1]]
        b = arms[arrive[0]][arrive[1]]
        if row_major:
            where = np.flatnonzero(a | b)
            via_a = a.ravel()[where]
        else:
            where = np.flatnonzero((a | b).T)
            via_a = a.T.ravel()[where]
        start = np.where(
            via_a,
            nodes.id(leave[0], where, row_major=row_major),
            nodes.id(arrive[0], where, row_major=row_major),
        )
        end = nodes.range(end_arm)
        if len(start) != len(end):
            return None
        succ[start] = end
    walked = _walk(succ, nodes.starts())
    if walked is None:
        return None
    order, ring_start = walked
    xy = nodes.xy(order)
    first = order[ring_start]
    shell = first < nodes.offset["S"]  # E-arm corners start shells, S-arm corners holes
    vx, vy = xy[ring_start, 0], xy[ring_start, 1]
    label = np.where(shell, se[vy, vx], sw[vy, vx])
    one_shell_each = np.array_equal(np.sort(label[shell]), np.arange(1, n_labels + 1))
    if not one_shell_each:
        return None
    by_label = np.argsort(label, kind="stable")
    sizes = np.diff(np.append(ring_start, len(order)))
    pick = _ranges(ring_start[by_label], sizes[by_label])
    ring_off = np.concatenate([[0], np.cumsum(sizes[by_label])])
    poly_off = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=n_labels + 1)[1:])])
    return xy[pick], ring_off, poly_off


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


def closed_rings(xy: NDArray[np.int32], ring_off: Ints) -> tuple[NDArray[np.float64], Ints]:
    """Open rings to closed ones (first point repeated), as float64; the new offsets."""
    sizes = np.diff(ring_off)
    pick = _ranges(ring_off[:-1], sizes + 1)
    ends = np.cumsum(sizes + 1) - 1
    pick[ends] = ring_off[:-1]
    return xy[pick].astype(np.float64), np.concatenate([[0], ends + 1])


# --- corners ---------------------------------------------------------------------------


def _corners(
    nw: NDArray[np.int32],
    ne: NDArray[np.int32],
    sw: NDArray[np.int32],
    se: NDArray[np.int32],
    occupied: NDArray[np.bool_],
) -> dict[str, dict[str, NDArray[np.bool_]]]:
    """Per arm an edge arrives by: where it turns right and where it turns left, per vertex.

    The edge arriving along the north arm runs south between NW and NE and
    belongs to NE (region on the left); ahead lie SE (left) and SW (right).
    The other arms are the same turned by quarter turns.
    """
    on_n, on_s = nw != ne, sw != se  # an edge on the north / south arm
    on_e, on_w = ne != se, nw != sw  # on the east / west arm
    anti, diag = ne == sw, nw == se  # opposite pixels alike
    o_nw, o_ne = occupied[:-1, :-1], occupied[:-1, 1:]
    o_sw, o_se = occupied[1:, :-1], occupied[1:, 1:]
    in_n, in_s = on_n & o_ne, on_s & o_sw
    in_e, in_w = on_e & o_se, on_w & o_nw
    return {
        "N": {"right": in_n & anti, "left": in_n & on_e & ~anti},  # right: west, left: east
        "S": {"right": in_s & anti, "left": in_s & on_w & ~anti},  # right: east, left: west
        "E": {"right": in_e & diag, "left": in_e & on_s & ~diag},  # right: north, left: south
        "W": {"right": in_w & diag, "left": in_w & on_n & ~diag},  # right: south, left: north
    }


class _Nodes:
    """Corners numbered by arm: E, W in row-major order, then N, S in column-major order.

    So the corners that end the straight runs of one direction (arriving from
    the west: all W corners, ...) are one contiguous range, in the order the
    runs are listed.
    """

    def __init__(self, arms: dict[str, dict[str, NDArray[np.bool_]]], h1: int, w1: int) -> None:
        self.h1, self.w1 = h1, w1
        self.where: dict[str, Ints] = {}
        self.offset: dict[str, int] = {}
        self.lookup: dict[str, NDArray[np.int32]] = {}
        n = 0
        for arm in ("E", "W", "N", "S"):
            mask = arms[arm]["right"] | arms[arm]["left"]
            where = np.flatnonzero(mask if arm in "EW" else mask.T)
            self.where[arm], self.offset[arm] = where, n
            n += len(where)
        self.n = n
        self.offset["end"] = n
        self._arms = arms

    def range(self, arm: str) -> Ints:
        nxt = {"E": "W", "W": "N", "N": "S", "S": "end"}[arm]
        return np.arange(self.offset[arm], self.offset[nxt], dtype=np.int64)

    def id(self, arm: str, where: Ints, *, row_major: bool) -> Ints:
        """Node ids of ``arm``'s corners at vertices ``where`` (row- or column-major indices)."""
        table = self.lookup.get(arm)
        if table is None:
            table = np.empty(self.h1 * self.w1, dtype=np.int32)
            table[self.where[arm]] = np.arange(
                self.offset[arm], self.offset[arm] + len(self.where[arm]), dtype=np.int32
            )
            self.lookup[arm] = table
        if row_major and arm in "NS":  # the table is in the arm's order
            where = (where % self.w1) * self.h1 + where // self.w1
        elif not row_major and arm in "EW":
            where = (where % self.h1) * self.w1 + where // self.h1
        return table[where].astype(np.int64)

    def starts(self) -> Ints:
        """Corners where a ring can have its top-left vertex, in raster order.

        A shell's: arriving along the east arm and turning left (down); a
        hole's: arriving along the south arm and turning right.
        """
        shell = np.flatnonzero(self._arms["E"]["left"])
        hole = np.flatnonzero(self._arms["S"]["right"])
        ids = np.concatenate(
            [self.id("E", shell, row_major=True), self.id("S", hole, row_major=True)]
        )
        return ids[np.argsort(np.concatenate([shell, hole]), kind="stable")]

    def xy(self, ids: Ints) -> NDArray[np.int32]:
        """Vertex (x, y) of each node."""
        split = self.offset["N"]
        row_major = ids < split
        where = np.concatenate([self.where[a] for a in ("E", "W", "N", "S")])[ids]
        x = np.where(row_major, where % self.w1, where // self.h1)
        y = np.where(row_major, where // self.w1, where % self.h1)
        return np.stack([x, y], axis=1).astype(np.int32)


# --- walking the rings -----------------------------------------------------------------


def _walk(succ: Ints, starts: Ints) -> tuple[Ints, Ints] | None:
    """Every cycle of ``succ`` in walking order from its first node among ``starts``.

    Returns the nodes, cycle after cycle, and where each cycle starts; ``None``
    if some node is on no cycle through a start.
    """
    n, m = len(succ), len(starts)
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
    order = visited[real]
    if len(order) != n:
        return None
    after_virtual = np.flatnonzero(real[1:] & ~real[:-1])  # positions in visited, less one
    ring_start = np.cumsum(real)[after_virtual + 1] - 1
    return order.astype(np.int64), ring_start


def _ranges(starts: Ints, sizes: Ints) -> Ints:
    """``starts[i] + arange(sizes[i])`` for every i, laid end to end."""
    heads = np.cumsum(sizes) - sizes
    return np.repeat(starts - heads, sizes) + np.arange(int(sizes.sum()))
