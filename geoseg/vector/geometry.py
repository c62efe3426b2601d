"""Geometry in pixel space: simplification, map coordinates, areas on the ellipsoid."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import shapely
from numpy.typing import NDArray
from rasterio.transform import Affine

from geoseg.vector.grid import METRES_PER_DEGREE, Geoms, _Grid

log = logging.getLogger(__name__)

_SIMPLIFY_BATCH = 32_768  # coverage_simplify slows down super-linearly past this many polygons


def _tolerance_px(grid: _Grid, simplify: float | None) -> float:
    if not simplify:
        return 0.0
    in_crs_units = simplify / (METRES_PER_DEGREE if grid.geographic else grid.unit_m)
    return in_crs_units / grid.pixel_size


def _simplify(geoms: Geoms, tolerance: float) -> Geoms:
    """Coverage-safe simplification of one batch, in horizontal bands if it is large."""
    if len(geoms) <= _SIMPLIFY_BATCH:
        return _simplify_coverage(geoms, tolerance)
    order = np.argsort(shapely.bounds(geoms)[:, 1], kind="stable")
    out = np.empty_like(geoms)
    for i in range(0, len(geoms), _SIMPLIFY_BATCH):
        band = order[i : i + _SIMPLIFY_BATCH]
        out[band] = _simplify_coverage(geoms[band], tolerance)
    return out


def _simplify_coverage(geoms: Geoms, tolerance: float) -> Geoms:
    """Simplify polygons as one coverage, its outline held fixed (pixel space)."""
    # A valid coverage needs the same vertices on both sides of a shared edge; a vertex at
    # every pixel corner guarantees that, whatever GDAL merged into longer segments.
    dense = shapely.segmentize(geoms, 1.0)
    out = np.asarray(
        shapely.coverage_simplify(dense, tolerance, simplify_boundary=False), dtype=object
    )
    bad = ~shapely.is_valid(out)
    if bad.any():
        log.warning("simplification made %d invalid polygons; repairing them", int(bad.sum()))
        out[bad] = shapely.make_valid(out[bad], method="structure", keep_collapsed=False)
    return out


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
    s = [_authalic_integral(np.radians(t.f + t.d * cc + t.e * rr), a, es) for rr, cc in corners]
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
    s = _authalic_integral(np.radians(coords[:, 1]), a, es)
    terms = np.append(np.diff(lon) * (s[:-1] + s[1:]) / 2, 0.0)
    terms[ring_off[1:] - 1] = 0.0  # no edge from one ring's last vertex to the next ring
    ring_area = np.abs(np.add.reduceat(terms, ring_off[:-1]))
    sign = np.full(len(ring_area), -1.0)
    sign[part_off[:-1]] = 1.0  # a part's first ring is its shell, the others are holes
    part_area = np.add.reduceat(ring_area * sign, part_off[:-1])
    return np.asarray(np.add.reduceat(part_area, geom_off[:-1]), dtype=np.float64)


def _authalic_integral(phi: NDArray[np.float64], a: float, es: float) -> NDArray[np.float64]:
    """Ellipsoid area between the equator and latitude ``phi`` per radian of longitude."""
    sin = np.sin(phi)
    if es == 0:
        return np.asarray(a * a * sin, dtype=np.float64)
    e = math.sqrt(es)
    b2 = a * a * (1 - es)
    return np.asarray(
        b2 / 2 * (sin / (1 - es * sin * sin) + np.arctanh(e * sin) / e), dtype=np.float64
    )
