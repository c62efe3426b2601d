"""RFC 7946 GeoJSON text straight from coordinate arrays, in bounded memory.

The GeoJSON writer used to reproject through ``shapely.transform``, orient
with ``shapely.orient_polygons`` and turn WKT into GeoJSON with regular
expressions: on an 8192² raster that was half of ``geoseg vectorize``'s time,
and the whole text of a batch (hundreds of MB for a region that percolates
across the raster) was in memory several times over. Here the pixel-space
coordinates of a batch are taken once as flat arrays
(:func:`shapely.to_ragged_array`), mapped, reprojected and rounded in bulk,
each ring's orientation is fixed by its signed area, and the numbers are
printed by numpy as fixed-point integers into a byte matrix whose unused
cells are dropped: no per-coordinate Python and no string replacements. The
text is written a slice of points at a time, so the largest buffer is one
slice whatever the size of a polygon. The numbers are those GEOS's WKT writer
gave (``rounding_precision=digits, trim=True``): the shortest fixed-point text
of the rounded value, no trailing zeros (and no exponent, which GEOS used
below 1e-4 or so: the same value). Exact while ``|value| · 10**digits`` stays
below 2**53, i.e. up to 13 decimals of a degree, a thousandth of a pixel
of 1e-10° (``writers._geojson_digits`` asks for 6 to 9 for real pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import shapely
from numpy.typing import NDArray
from rasterio.transform import Affine

from geoseg.vector.grid import Geoms

_SLICE = 1 << 18  # points printed at a time (~10 MB of scratch)

Project = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def write_geometries(
    f: BinaryIO,
    geoms: Geoms,
    heads: list[bytes],
    *,
    transform: Affine,
    to_wgs84: Project,
    digits: int,
    multi: bool,
) -> None:
    """Write ``head + geometry + "}}"`` per pixel-space geometry, joined by ``",\\n"``.

    ``heads[i]`` is feature ``i``'s text up to its geometry (``..., "geometry": ``).
    Coordinates are mapped with ``transform``, then ``to_wgs84`` (which rounds
    to ``digits`` decimals); shells run counter-clockwise and holes clockwise
    (RFC 7946's right-hand rule). ``multi``: every geometry is written as a
    MultiPolygon (otherwise only those that are one).
    """
    if len(geoms) == 0:
        return
    is_multi = shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON
    is_multi |= multi
    coords, ring_off, part_off, geom_off = _ragged(geoms)
    coords = to_wgs84(_affine(coords, transform))
    _orient(coords, ring_off, part_off)
    scaled = np.rint(coords * 10.0**digits).astype(np.int64)
    del coords
    starts = ring_off[part_off[geom_off[:-1]]]  # each geometry's first point
    prefix, suffix, comma = _brackets(len(scaled), ring_off, part_off, geom_off, is_multi)
    kinds = (_POLYGON, _MULTIPOLYGON)
    i = 0  # the next geometry to start
    for lo in range(0, len(scaled), _SLICE):
        hi = min(lo + _SLICE, len(scaled))
        part = slice(lo, hi)
        body, ends = _print_points(scaled[part], prefix[part], suffix[part], comma[part], digits)
        view, pos = memoryview(body), 0
        while i < len(starts) and starts[i] < hi:
            cut = 0 if starts[i] == lo else int(ends[starts[i] - lo - 1])
            f.write(view[pos:cut])
            f.write((b"}},\n" if i else b"") + heads[i] + kinds[int(is_multi[i])])
            pos = cut
            i += 1
        f.write(view[pos:])
    f.write(b"}}")


_POLYGON = b'{"type": "Polygon", "coordinates": '
_MULTIPOLYGON = b'{"type": "MultiPolygon", "coordinates": '


def _ragged(
    geoms: Geoms,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Flat coordinates and ring, part and geometry offsets (a Polygon is one part)."""
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == shapely.GeometryType.MULTIPOLYGON:
        ring_off, part_off, geom_off = offsets
        return coords, ring_off, part_off, geom_off
    ring_off, part_off = offsets
    return coords, ring_off, part_off, np.arange(len(part_off), dtype=np.int64)


def _affine(xy: NDArray[np.float64], t: Affine) -> NDArray[np.float64]:
    """Pixel to map coordinates with the full affine (as ``geometry._to_map``)."""
    out = np.empty_like(xy)
    out[:, 0] = t.a * xy[:, 0] + t.b * xy[:, 1] + t.c
    out[:, 1] = t.d * xy[:, 0] + t.e * xy[:, 1] + t.f
    return out


def _orient(
    coords: NDArray[np.float64], ring_off: NDArray[np.int64], part_off: NDArray[np.int64]
) -> None:
    """Reverse, in place, shells that run clockwise and holes that run counter-clockwise.

    The sign of each ring's shoelace area, taken relative to its first vertex
    (no cancellation between large coordinates), tells its direction.
    """
    sizes = np.diff(ring_off)
    origin = np.repeat(coords[ring_off[:-1]], sizes, axis=0)
    x, y = (coords - origin).T
    cross = np.append(x[:-1] * y[1:] - x[1:] * y[:-1], 0.0)
    cross[ring_off[1:] - 1] = 0.0  # no edge from one ring's last vertex to the next ring
    area = np.add.reduceat(cross, ring_off[:-1])
    shell = np.zeros(len(area), dtype=bool)
    shell[part_off[:-1]] = True
    flip = np.flatnonzero(np.where(shell, area < 0, area > 0))
    if len(flip) == 0:
        return
    n = sizes[flip]
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    coords[np.repeat(ring_off[flip], n) + k] = coords[np.repeat(ring_off[flip + 1] - 1, n) - k]


def _brackets(
    n: int,
    ring_off: NDArray[np.int64],
    part_off: NDArray[np.int64],
    geom_off: NDArray[np.int64],
    is_multi: NDArray[np.bool_],
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """Per point: ``[`` opened before it, ``]`` closed after it, a comma after those."""
    rings = len(ring_off) - 1
    part_first = np.zeros(rings, dtype=np.uint8)
    part_first[part_off[:-1]] = 1
    part_last = np.zeros(rings, dtype=np.uint8)
    part_last[part_off[1:] - 1] = 1
    geom_first = np.zeros(rings, dtype=np.uint8)
    geom_first[part_off[geom_off[:-1]]] = is_multi
    geom_last = np.zeros(rings, dtype=np.uint8)
    geom_last[part_off[geom_off[1:]] - 1] = is_multi
    prefix = np.zeros(n, dtype=np.uint8)
    prefix[ring_off[:-1]] = 1 + part_first + geom_first
    suffix = np.zeros(n, dtype=np.uint8)
    suffix[ring_off[1:] - 1] = 1 + part_last + geom_last
    comma = np.ones(n, dtype=bool)
    comma[ring_off[part_off[geom_off[1:]]] - 1] = False  # a geometry's last point
    return prefix, suffix, comma


def _print_points(
    scaled: NDArray[np.int64],
    prefix: NDArray[np.uint8],
    suffix: NDArray[np.uint8],
    comma: NDArray[np.bool_],
    digits: int,
) -> tuple[bytes, NDArray[np.int64]]:
    """``[[x,y]],`` per point as bytes, and where each point's text ends.

    A byte matrix with one *column* per point: three ``[`` slots, ``[``, x,
    ``,``, y, ``]``, three ``]`` slots and a comma down the rows; a mask says
    which cells are text. Each row is filled as one contiguous array (a third
    faster than a row per point) and the matrix is read out point by point
    through its transpose.
    """
    x_int, x_frac, x_neg = _split(scaled[:, 0], digits)
    y_int, y_frac, y_neg = _split(scaled[:, 1], digits)
    width = _groups(max(int(x_int.max(initial=0)), int(y_int.max(initial=0))))
    size = 1 + 4 * width + 1 + 4 * (-(-digits // 4))  # sign, integer, point, fraction
    n, rows = len(scaled), 3 + 1 + size + 1 + size + 1 + 3 + 1
    chars = np.empty((rows, n), dtype=np.uint8)
    keep = np.empty((rows, n), dtype=bool)
    slots = np.arange(3)[:, None]
    chars[:4] = ord("[")
    keep[:3] = slots >= 3 - prefix
    keep[3] = True
    at = 4
    for integer, fraction, negative, after in (
        (x_int, x_frac, x_neg, ","),
        (y_int, y_frac, y_neg, "]"),
    ):
        _number(chars[at : at + size], keep[at : at + size], integer, fraction, negative, width)
        at += size
        chars[at], keep[at] = ord(after), True
        at += 1
    chars[at : at + 3] = ord("]")
    keep[at : at + 3] = slots < suffix
    chars[-1], keep[-1] = ord(","), comma
    return chars.T[keep.T].tobytes(), np.cumsum(keep.sum(axis=0))


def _split(
    values: NDArray[np.int64], digits: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Integer part, fraction as a multiple-of-4-digit integer, sign of ``values / 10**digits``."""
    integer, fraction = np.divmod(np.abs(values), 10**digits)
    return integer, fraction * 10 ** (-digits % 4), values < 0


def _groups(largest: int) -> int:
    """Groups of four digits needed to print ``largest``."""
    return max(1, -(-len(str(largest)) // 4))


_DIGITS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
"""``_DIGITS[i]``: the four ASCII digits of ``i``, zero-padded."""
_DIGIT_ROWS = np.ascontiguousarray(_DIGITS.T)
"""``_DIGIT_ROWS[:, i]``: the same, as a column."""
_TRAILING = np.array(
    [4] + [len(s) - len(s.rstrip("0")) for s in (f"{i:04d}" for i in range(1, 10_000))]
)
"""``_TRAILING[i]``: trailing zeros among the four digits of ``i`` (4 for 0)."""
_LEADING = np.array([3] + [4 - len(str(i)) for i in range(1, 10_000)])
"""``_LEADING[i]``: leading zeros among the four digits of ``i`` to drop (0 prints as "0")."""


def _number(
    chars: NDArray[np.uint8],
    keep: NDArray[np.bool_],
    integer: NDArray[np.int64],
    fraction: NDArray[np.int64],
    negative: NDArray[np.bool_],
    width: int,
) -> None:
    """Fixed-point text into ``chars`` (rows: sign, integer, point, fraction), cells to keep.

    Four digits at a time from a table. Leading zeros of the integer part (all
    but its last digit), trailing zeros of the fraction and a point with no
    fraction after it are not kept: GEOS's ``trim`` output.
    """
    chars[0], keep[0] = ord("-"), negative
    lead = np.full(len(integer), 4 * width - 1)  # integer digits to drop
    for g in range(width):
        group = (integer // 10 ** (4 * (width - 1 - g))) % 10_000
        chars[1 + 4 * g : 5 + 4 * g] = _DIGIT_ROWS.take(group, axis=1)
        lead = np.where((group > 0) & (lead == 4 * width - 1), 4 * g + _LEADING[group], lead)
    keep[1 : 1 + 4 * width] = np.arange(4 * width)[:, None] >= lead
    point = 1 + 4 * width
    groups = (chars.shape[0] - point - 1) // 4
    length = np.zeros(len(integer), dtype=np.int64)  # fraction digits to keep
    for g in range(groups):
        group = (fraction // 10 ** (4 * (groups - 1 - g))) % 10_000
        chars[point + 1 + 4 * g : point + 5 + 4 * g] = _DIGIT_ROWS.take(group, axis=1)
        length = np.where(group > 0, 4 * g + 4 - _TRAILING[group], length)
    chars[point], keep[point] = ord("."), length > 0
    keep[point + 1 :] = np.arange(4 * groups)[:, None] < length
