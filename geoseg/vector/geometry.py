"""Geometry in pixel space: simplification, map coordinates, areas on the ellipsoid."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import shapely
from numpy.typing import NDArray
from rasterio.transform import Affine

from geoseg.analysis.geodesy import authalic_integral
from geoseg.vector.grid import METRES_PER_DEGREE, Geoms, _Grid

log = logging.getLogger(__name__)

_SIMPLIFY_BATCH = 32_768  # coverage_simplify slows down super-linearly past this many polygons


def _tolerance_px(grid: _Grid, simplify: float | None) -> float:
    if not simplify:
        return 0.0
    in_crs_units = simplify / (METRES_PER_DEGREE if grid.geographic else grid.unit_m)
    return in_crs_units / grid.pixel_size


SMOOTH_CLEANUP = 1e-3
"""Tolerance (pixels) that drops the collinear vertices smoothing leaves on straight runs."""


def _simplify(geoms: Geoms, tolerance: float, *, smooth: bool = False) -> Geoms:
    """Coverage-safe smoothing and simplification of one batch, in bands if it is large."""
    if len(geoms) <= _SIMPLIFY_BATCH:
        return _finish_coverage(geoms, tolerance, smooth=smooth)
    order = np.argsort(shapely.bounds(geoms)[:, 1], kind="stable")
    out = np.empty_like(geoms)
    for i in range(0, len(geoms), _SIMPLIFY_BATCH):
        band = order[i : i + _SIMPLIFY_BATCH]
        out[band] = _finish_coverage(geoms[band], tolerance, smooth=smooth)
    return out


def _finish_coverage(geoms: Geoms, tolerance: float, *, smooth: bool) -> Geoms:
    """Smooth (if asked), then simplify polygons as one coverage, its outline held fixed."""
    # A valid coverage needs the same vertices on both sides of a shared edge; a vertex at
    # every pixel corner guarantees that, whatever GDAL merged into longer segments.
    dense = shapely.segmentize(geoms, 1.0)
    if smooth:
        dense = smooth_coverage(dense)
        tolerance = max(tolerance, SMOOTH_CLEANUP)
    out = np.asarray(
        shapely.coverage_simplify(dense, tolerance, simplify_boundary=False), dtype=object
    )
    bad = ~shapely.is_valid(out)
    if bad.any():
        log.warning("simplification made %d invalid polygons; repairing them", int(bad.sum()))
        out[bad] = shapely.make_valid(out[bad], method="structure", keep_collapsed=False)
    return out


def smooth_coverage(geoms: Geoms) -> Geoms:
    """Cut the pixel corners of a coverage whose vertices are all the pixel corners.

    Every edge shared by two polygons of ``geoms`` is replaced by the chords
    between the midpoints of its unit segments, so a staircase of one-pixel
    steps becomes a straight diagonal and every other corner is cut at 45°.
    Both sides of a shared edge get the same midpoints, and *nodes* stay where
    they are: vertices where three or more edges meet (a polygon touching
    itself at a corner too) and vertices on the coverage's outline (edges that
    only one polygon of ``geoms`` has: nodata, the raster edge, polygons of
    other batches), whose segments are kept whole. Each cut lies within half a
    pixel of its corner, where no other edge passes, so the result is again a
    valid coverage with the same outline and the same union.

    Parameters
    ----------
    geoms
        Polygons or MultiPolygons in pixel space, segmentized to unit segments
        (integer vertices).

    Returns
    -------
    numpy.ndarray
        The smoothed geometries, of the same types.
    """
    if len(geoms) == 0:
        return geoms
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    _, coords, (ring_off, part_off, geom_off) = shapely.to_ragged_array(_as_multi(geoms))
    vertex, nxt, ring = _open_rings(ring_off)
    xy = np.rint(coords).astype(np.int64)
    key = xy[:, 0] * (int(xy[:, 1].max()) + 2) + xy[:, 1]
    a, b = key[vertex], key[nxt]
    segments, where, count = np.unique(
        np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1),
        axis=0,
        return_inverse=True,
        return_counts=True,
    )
    outline = count[where.ravel()] == 1
    ends, degree = np.unique(segments.ravel(), return_counts=True)
    node = degree[np.searchsorted(ends, a)] != 2
    keep = node | outline | outline[_previous(ring)]  # nodes and outline vertices stay
    points = np.stack([coords[vertex], (coords[vertex] + coords[nxt]) / 2], axis=1)
    emit = np.stack([keep, ~outline], axis=1)
    new = points[emit]
    per_ring = np.bincount(ring, weights=emit.sum(axis=1), minlength=len(ring_off) - 1)
    new_off, closed = _close_rings(new, per_ring.astype(np.int64))
    out = shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON, closed, (new_off, part_off, geom_off)
    )
    out = np.asarray(out, dtype=object)
    out[single] = shapely.get_geometry(out[single], 0)
    return out


def _open_rings(
    ring_off: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Per vertex of each ring (closing vertex left out): its index, the next one's, its ring."""
    sizes = np.diff(ring_off) - 1
    ring = np.repeat(np.arange(len(sizes)), sizes)
    start = np.repeat(ring_off[:-1], sizes)
    position = np.arange(len(ring)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    vertex = start + position
    nxt = start + (position + 1) % np.repeat(sizes, sizes)
    return vertex, nxt, ring


def _previous(ring: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index (into the open-ring vertex list) of each vertex's predecessor in its ring."""
    idx = np.arange(len(ring))
    prev = idx - 1
    first = np.ones(len(ring), dtype=bool)
    first[1:] = ring[1:] != ring[:-1]
    last = np.ones(len(ring), dtype=bool)
    last[:-1] = ring[1:] != ring[:-1]
    prev[first] = idx[last]
    return prev


def _close_rings(
    points: NDArray[np.float64], per_ring: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Append each ring's first point to it; the new ring offsets."""
    starts = np.cumsum(per_ring) - per_ring
    closed = np.insert(points, starts + per_ring, points[starts], axis=0)
    offsets = np.concatenate([[0], np.cumsum(per_ring + 1)])
    return offsets, closed


def _to_map(
    geoms: Geoms,
    t: Affine,
    *,
    then: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
) -> Geoms:
    """Pixel to map coordinates with the full affine (rotation and shear included)."""

    def apply(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(xy)  # written out: xy @ matrix is ~10x slower for (n, 2) arrays
        out[:, 0] = t.a * xy[:, 0] + t.b * xy[:, 1] + t.c
        out[:, 1] = t.d * xy[:, 0] + t.e * xy[:, 1] + t.f
        return out if then is None else then(out)

    return np.asarray(shapely.transform(geoms, apply), dtype=object)


def _as_multi(geoms: Geoms) -> Geoms:
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    if single.any():
        geoms = geoms.copy()
        geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(single.sum()))
    return geoms


def _areas(geoms: Geoms, grid: _Grid) -> NDArray[np.float64]:
    """Area in m² of pixel-space geometries (planar, or on the ellipsoid if geographic)."""
    if not grid.geographic:  # an affine map scales every area by |det|: exact for pixels
        scale = abs(grid.transform.determinant) * grid.unit_m**2
        return np.asarray(shapely.area(geoms) * scale, dtype=np.float64)
    return _ellipsoidal_area(_to_map(geoms, grid.transform), *grid.ellipsoid)


def _perimeters(geoms: Geoms, grid: _Grid) -> NDArray[np.float64]:
    """Length in metres of every ring (shells and holes) of pixel-space geometries.

    Planar for a projected CRS. For a geographic one, along the edges as they
    are drawn, straight in lon/lat, as the areas are: meridian segments are
    geodesics (pyproj's ``Geod.inv``, exact); any other segment is measured
    with the ellipsoid's radii of curvature at its mid-latitude, exact for
    parallels (pixel edges) and within a few 1e-8 for a simplified edge.
    """
    if len(geoms) == 0:
        return np.zeros(0)
    mapped = _to_map(geoms, grid.transform)
    if not grid.geographic:
        return np.asarray(shapely.length(mapped) * grid.unit_m, dtype=np.float64)
    import pyproj

    a, es = grid.ellipsoid
    _, coords, (ring_off, part_off, geom_off) = shapely.to_ragged_array(_as_multi(mapped))
    lon, lat = np.radians(coords[:, 0]), np.radians(coords[:, 1])
    mid = (lat[:-1] + lat[1:]) / 2
    w = 1 - es * np.sin(mid) ** 2
    north = a * (1 - es) / w**1.5 * np.diff(lat)  # meridional radius × dφ
    east = a / np.sqrt(w) * np.cos(mid) * np.diff(lon)  # prime vertical radius × cos φ × dλ
    length = np.hypot(north, east)
    meridian = np.flatnonzero(np.diff(lon) == 0)
    if len(meridian):
        geod = pyproj.Geod(a=a, es=es)
        x, y = coords[:, 0], coords[:, 1]
        _, _, d = geod.inv(x[meridian], y[meridian], x[meridian + 1], y[meridian + 1])
        length[meridian] = d
    length = np.append(length, 0.0)
    length[ring_off[1:] - 1] = 0.0  # no edge from one ring's last vertex to the next ring
    ring_len = np.add.reduceat(length, ring_off[:-1])
    part_len = np.add.reduceat(ring_len, part_off[:-1])
    return np.asarray(np.add.reduceat(part_len, geom_off[:-1]), dtype=np.float64)


def pixel_areas(
    grid: _Grid, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Area in m² of the pixels at ``rows``, ``cols`` (broadcast together).

    A projected raster gives a 0-d array (every pixel has the same area); a
    geographic one integrates each pixel's four edges over the ellipsoid, as
    :func:`_ellipsoidal_area` does for polygons (exact for north-up pixels).
    """
    t = grid.transform
    if not grid.geographic:
        return np.asarray(abs(t.determinant) * grid.unit_m**2, dtype=np.float64)
    a, es = grid.ellipsoid
    r, c = np.broadcast_arrays(
        np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
    )
    corners = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)]
    lon = [np.radians(t.c + t.a * cc + t.b * rr) for rr, cc in corners]
    s = [authalic_integral(np.radians(t.f + t.d * cc + t.e * rr), a=a, es=es) for rr, cc in corners]
    total = sum((lon[(i + 1) % 4] - lon[i]) * (s[i] + s[(i + 1) % 4]) / 2 for i in range(4))
    return np.asarray(np.abs(total), dtype=np.float64)


def _ellipsoidal_area(geoms: Geoms, a: float, es: float) -> NDArray[np.float64]:
    """Area on the ellipsoid of lon/lat polygons whose edges are straight in lon/lat.

    Green's theorem: area = |∮ S(φ) dλ| with S the area between the equator and
    latitude φ per radian of longitude. Pixel edges are meridians (dλ = 0) or
    parallels (S constant), so this is exact for unsimplified polygons; other
    edges use the trapezoid rule, accurate for edges of a few pixels.
    """
    if len(geoms) == 0:
        return np.zeros(0)
    _, coords, (ring_off, part_off, geom_off) = shapely.to_ragged_array(_as_multi(geoms))
    lon = np.radians(coords[:, 0])
    s = authalic_integral(np.radians(coords[:, 1]), a=a, es=es)
    terms = np.append(np.diff(lon) * (s[:-1] + s[1:]) / 2, 0.0)
    terms[ring_off[1:] - 1] = 0.0  # no edge from one ring's last vertex to the next ring
    ring_area = np.abs(np.add.reduceat(terms, ring_off[:-1]))
    sign = np.full(len(ring_area), -1.0)
    sign[part_off[:-1]] = 1.0  # a part's first ring is its shell, the others are holes
    part_area = np.add.reduceat(ring_area * sign, part_off[:-1])
    return np.asarray(np.add.reduceat(part_area, geom_off[:-1]), dtype=np.float64)
