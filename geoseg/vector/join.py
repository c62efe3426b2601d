"""Join the pieces of one 4-connected region by cancelling the edges they share.

Pieces come from neighbouring blocks, in global pixel coordinates (integer
vertices), and meet only along block edges. Their union's boundary is their
boundaries less the edges two pieces share: with every ring oriented so the
region lies on its left and the segments on block edges cut into pixel-long
edges, a shared edge appears once in each direction and both copies go. What
is left of each ring is a set of *chains* (runs of surviving edges); a chain
ending at a vertex continues with the chain that starts there. Where two
start at one vertex the region touches itself at that corner: it holds two
opposite pixels of the four, and the continuation is the one that turns most
to the right, around the same outside pixel, so the two outside pixels stay in
separate rings (a hole touching the shell or another hole at a point, as GEOS
writes it); the two region pixels are connected elsewhere, so those outside
pixels cannot be. The rings that result are the union's: one shell (positive
area) and its holes.

This replaces ``shapely.coverage_union_all`` for joined 4-connected regions:
on the 8192² benchmark raster the coverage union took 19 s of 42 s, 6 s of it
for one region with 420 pieces and ~900 000 vertices, since GEOS rebuilds
rings through a planar graph. Anything unexpected (not exactly one shell, a
ring through a vertex twice, an unmatched chain) returns ``None`` and the
caller falls back to the coverage union, so the result is never worse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from geoseg.vector.geometry import _as_multi

Ints = NDArray[np.int64]


def join_pieces(parts: list[Any], block: int) -> Any | None:
    """The union of ``parts`` as one Polygon, or None when the fast path cannot tell."""
    geoms = np.asarray(parts, dtype=object)
    if (shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON).all():  # 4-connected
        _, coords, (ring_off, part_off) = shapely.to_ragged_array(geoms)
    else:
        _, coords, (ring_off, part_off, _) = shapely.to_ragged_array(_as_multi(geoms))
    xy = _oriented(coords.astype(np.int64), ring_off, part_off)
    points, ring_sizes, on_seam = _densified(xy, ring_off, block)
    rings = _rings_after_cancelling(points, ring_sizes, on_seam)
    if rings is None:
        return None
    return _polygon(points, *rings)


def _oriented(xy: Ints, ring_off: Ints, part_off: Ints) -> Ints:
    """Closed rings with shells of positive (shoelace) area and holes of negative area."""
    xy = xy.copy()
    area = _ring_areas(xy, ring_off)
    shell = np.zeros(len(area), dtype=bool)
    shell[part_off[:-1]] = True
    flip = np.flatnonzero(np.where(shell, area < 0, area > 0))
    if len(flip):
        n = ring_off[flip + 1] - ring_off[flip]
        k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        xy[np.repeat(ring_off[flip], n) + k] = xy[np.repeat(ring_off[flip + 1] - 1, n) - k]
    return xy


def _ring_areas(xy: Ints, ring_off: Ints) -> Ints:
    """Twice the signed area of each closed ring (exact: integer vertices)."""
    x, y = xy[:, 0], xy[:, 1]
    cross = np.append(x[:-1] * y[1:] - x[1:] * y[:-1], 0)
    cross[ring_off[1:] - 1] = 0  # no edge from one ring's last vertex to the next ring
    return np.add.reduceat(cross, ring_off[:-1])


def _densified(xy: Ints, ring_off: Ints, block: int) -> tuple[Ints, Ints, NDArray[np.bool_]]:
    """Open rings (closing vertex left out) with a vertex at every pixel corner on block edges.

    Also says which points start a pixel-long edge on a block edge (the only
    edges two pieces can share). Only the segments on block edges are cut:
    the other points are copied as they are.
    """
    last = ring_off[1:] - 1  # each closed ring's repeated first vertex
    is_edge = np.ones(len(xy) - 1, dtype=bool)  # point i starts the edge to point i + 1
    is_edge[last[:-1]] = False
    a = xy[:-1][is_edge]
    d = xy[1:][is_edge] - a
    seam = ((d[:, 0] == 0) & (a[:, 0] % block == 0)) | ((d[:, 1] == 0) & (a[:, 1] % block == 0))
    cut = np.flatnonzero(seam)
    steps = np.ones(len(a), dtype=np.int64)
    steps[cut] = np.abs(d[cut]).sum(axis=1)
    points = np.repeat(a, steps, axis=0)
    on_seam = np.repeat(seam, steps)
    heads = np.cumsum(steps) - steps  # where each segment's first point went
    extra = steps[cut] - 1  # points added inside each seam segment
    k = np.arange(1, int(extra.sum()) + 1) - np.repeat(np.cumsum(extra) - extra, extra)
    at = np.repeat(heads[cut], extra) + k
    points[at] += k[:, None] * np.repeat(np.sign(d[cut]), extra, axis=0)
    sizes = np.diff(ring_off) - 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    per_ring = np.add.reduceat(steps, starts[:-1]) if len(sizes) else sizes
    return points, np.asarray(per_ring, dtype=np.int64), on_seam


def _rings_after_cancelling(
    points: Ints, ring_sizes: Ints, on_seam: NDArray[np.bool_]
) -> tuple[Ints, Ints] | None:
    """The union's rings: indices into ``points`` and ring offsets; None if not well formed.

    Edge ``i`` runs from point ``i`` to the next point of its ring. Chains
    end before a cancelled edge and at every vertex where two surviving
    edges start (where pieces touch at a corner: the pairing their own rings
    gave there may be the wrong one for the union).
    """
    n = len(points)
    starts = np.cumsum(ring_sizes) - ring_sizes
    ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    pos = np.arange(n) - starts[ring]
    nxt = np.asarray(starts[ring] + (pos + 1) % ring_sizes[ring], dtype=np.int64)
    vid = _vertex_ids(points)
    alive = _uncancelled(vid, nxt, np.flatnonzero(on_seam))
    pinch = _shared_starts(vid[alive])
    stop = alive & (~alive[nxt] | np.isin(vid[nxt], pinch))  # a chain ends with this edge
    cut_rings = np.bincount(ring, weights=~alive | stop, minlength=len(ring_sizes)) > 0
    cut = cut_rings[ring]
    intact = np.flatnonzero(~cut)  # whole rings, in order
    sizes = [ring_sizes[~cut_rings]]
    if not cut.any():
        return intact, _offsets(sizes)
    edges = np.flatnonzero(cut)
    first = np.full(len(ring_sizes), n)  # per cut ring: an edge that ends a chain or is dead
    np.minimum.at(first, ring[edges], np.where(stop[edges] | ~alive[edges], edges, n))
    rotated = (edges - first[ring[edges]] - 1) % ring_sizes[ring[edges]]  # it goes last
    order = edges[np.argsort(ring[edges] * n + rotated, kind="stable")]
    live, ends = alive[order], stop[order]
    same_ring = np.append(ring[order][1:] == ring[order][:-1], False)
    after_end = np.insert(~live[:-1] | ends[:-1] | ~same_ring[:-1], 0, True)
    chain_start, chain_end = np.flatnonzero(live & after_end), np.flatnonzero(live & ends)
    if len(chain_start) != len(chain_end):
        return None
    succ = _link(points, vid, nxt, order, chain_start, chain_end)
    if succ is None:
        return None
    seen = np.zeros(len(chain_start), dtype=bool)
    joined = [intact]
    for c0 in range(len(chain_start)):
        if seen[c0]:
            continue
        parts, c = [], c0
        while not seen[c]:
            seen[c] = True
            parts.append(order[chain_start[c] : chain_end[c] + 1])
            c = succ[c]
        if c != c0:
            return None
        joined.extend(parts)
        sizes.append(np.array([sum(len(p) for p in parts)]))
    return np.concatenate(joined), _offsets(sizes)


def _offsets(sizes: list[Ints]) -> Ints:
    return np.concatenate([[0], np.cumsum(np.concatenate(sizes))]).astype(np.int64)


def _vertex_ids(xy: Ints) -> Ints:
    """One number per pixel corner, row by row over the bounding box of ``xy``."""
    lo = xy.min(axis=0)
    span = int(xy[:, 1].max() - lo[1]) + 1
    return np.asarray((xy[:, 0] - lo[0]) * span + (xy[:, 1] - lo[1]), dtype=np.int64)


def _uncancelled(vid: Ints, nxt: Ints, idx: Ints) -> NDArray[np.bool_]:
    """False for the edges among ``idx`` whose reverse is among them too."""
    alive = np.ones(len(vid), dtype=bool)
    if len(idx) < 2:
        return alive
    va, vb = vid[idx], vid[nxt[idx]]
    lo, hi = np.minimum(va, vb), np.maximum(va, vb)  # the edge without its direction
    size = int(hi.max()) + 1
    if size < 3_000_000_000:  # size² fits in int64: one sort key
        order = np.argsort(lo * size + hi, kind="stable")
    else:
        order = np.lexsort((hi, lo))
    same = (lo[order][1:] == lo[order][:-1]) & (hi[order][1:] == hi[order][:-1])
    twin = np.zeros(len(order), dtype=bool)
    twin[1:] |= same
    twin[:-1] |= same
    alive[idx[order[twin]]] = False
    return alive


def _shared_starts(vid: Ints) -> Ints:
    """Vertex ids that start more than one edge."""
    v = np.sort(vid)
    return np.unique(v[1:][v[1:] == v[:-1]])


def _link(
    points: Ints, vid: Ints, nxt: Ints, order: Ints, chain_start: Ints, chain_end: Ints
) -> Ints | None:
    """For each chain, the chain that continues it (starts where it ends); None if unmatched."""
    first, last = order[chain_start], order[chain_end]
    key_begin, key_finish = vid[first], vid[nxt[last]]
    by_begin = np.argsort(key_begin, kind="stable")
    left = np.searchsorted(key_begin[by_begin], key_finish, side="left")
    right = np.searchsorted(key_begin[by_begin], key_finish, side="right")
    if np.any(right == left):
        return None
    succ = by_begin[left]
    incoming = points[nxt[last]] - points[last]
    outgoing = points[nxt[first]] - points[first]
    for c in np.flatnonzero(right - left > 1):  # the region touches itself at this corner
        options = by_begin[left[c] : right[c]]
        d, o = incoming[c], outgoing[options]
        cross = d[0] * o[:, 1] - d[1] * o[:, 0]
        dot = d[0] * o[:, 0] + d[1] * o[:, 1]
        turn = np.where((cross == 0) & (dot < 0), 2 * np.pi, np.arctan2(cross, dot))
        succ[c] = options[np.argmin(turn)]  # most to the right: around the same outside corner
    if np.bincount(succ, minlength=len(succ)).max(initial=0) > 1:
        return None
    return succ


def _polygon(points: Ints, index: Ints, ring_off: Ints) -> Any | None:
    """One Polygon from open rings of ``points``: the shell first, collinear vertices dropped."""
    ring_off = ring_off[np.append(np.diff(ring_off) > 0, True)]  # no empty rings
    vertex, nxt, ring = _open_rings_of(ring_off)
    prev = np.empty_like(nxt)
    prev[nxt] = vertex
    xy = points[index]
    d1, d2 = xy - xy[prev], xy[nxt] - xy
    corner = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] != 0
    sizes = np.bincount(ring[corner], minlength=len(ring_off) - 1)
    if len(sizes) == 0 or sizes.min() < 3:
        return None
    xy, ring = xy[corner], ring[corner]
    starts = np.cumsum(sizes) - sizes
    closed = np.insert(xy, starts + sizes, xy[starts], axis=0)
    offsets = np.concatenate([[0], np.cumsum(sizes + 1)])
    area = _ring_areas(closed, offsets)
    shells = np.flatnonzero(area > 0)
    if len(shells) != 1 or np.any(area == 0) or _revisits(xy, ring):
        return None
    if shells[0] != 0:  # the shell goes first
        order = np.concatenate([[shells[0]], np.delete(np.arange(len(sizes)), shells[0])])
        lengths = sizes[order] + 1
        heads = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        closed = closed[np.repeat(offsets[order] - heads, lengths) + np.arange(total)]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        closed.astype(np.float64),
        (offsets, np.array([0, len(sizes)])),
    )[0]


def _open_rings_of(ring_off: Ints) -> tuple[Ints, Ints, Ints]:
    """Per position of open rings laid end to end: itself, the next one in its ring, its ring."""
    sizes = np.diff(ring_off)
    ring = np.repeat(np.arange(len(sizes)), sizes)
    vertex = np.arange(ring_off[-1])
    nxt = vertex + 1
    nxt[ring_off[1:] - 1] = ring_off[:-1]
    return vertex, nxt, ring


def _revisits(xy: Ints, ring: Ints) -> bool:
    """Whether some ring passes through one of its vertices twice."""
    lo = xy.min(axis=0)
    span = xy.max(axis=0) - lo + 1
    key = np.sort((ring * span[0] + (xy[:, 0] - lo[0])) * span[1] + (xy[:, 1] - lo[1]))
    return bool(np.any(key[1:] == key[:-1]))
