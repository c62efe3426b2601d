"""Areas on the ellipsoid for pixels of geographic (lon/lat) rasters.

A pixel of a north-up geographic raster is bounded by two meridians and two
parallels. Its area on an ellipsoid of revolution is exact in closed form:
``|Δλ| · |S(φ₂) − S(φ₁)|``, where ``S(φ)`` is the area between the equator and
latitude ``φ`` per radian of longitude (the integral behind the authalic
latitude). All pixels of one row share that area, so a whole raster needs one
number per row.

Examples
--------
>>> import math
>>> a, es = 6378137.0, 0.0066943799901413165  # WGS 84
>>> band = zone_area(0.0, math.pi / 2, a=a, es=es) * 2 * math.pi * 2  # both hemispheres
>>> round(band / 1e6)  # km², the surface of the WGS 84 ellipsoid
510065622
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def authalic_integral(phi: ArrayLike, *, a: float, es: float) -> NDArray[np.float64]:
    """Area between the equator and latitude ``phi`` (radians) per radian of longitude, m².

    Parameters
    ----------
    phi
        Geodetic latitude(s) in radians.
    a
        Semi-major axis in metres.
    es
        First eccentricity squared (0 for a sphere).
    """
    sin = np.sin(np.asarray(phi, dtype=np.float64))
    if es == 0:
        return np.asarray(a * a * sin, dtype=np.float64)
    e = math.sqrt(es)
    b2 = a * a * (1 - es)
    return np.asarray(
        b2 / 2 * (sin / (1 - es * sin * sin) + np.arctanh(e * sin) / e), dtype=np.float64
    )


def zone_area(phi1: ArrayLike, phi2: ArrayLike, *, a: float, es: float) -> NDArray[np.float64]:
    """Area between two parallels per radian of longitude, m² (always positive)."""
    return np.abs(authalic_integral(phi2, a=a, es=es) - authalic_integral(phi1, a=a, es=es))


def row_pixel_areas(
    transform: Any, rows: NDArray[np.int64], *, a: float, es: float, to_radians: float
) -> NDArray[np.float64]:
    """Area in m² of one pixel in each of ``rows`` of a north-up lon/lat raster.

    Parameters
    ----------
    transform
        The raster's affine transform (no rotation: ``b == d == 0``).
    rows
        Row indices.
    a, es
        Ellipsoid: semi-major axis (m) and first eccentricity squared.
    to_radians
        Radians per CRS angular unit (``pi / 180`` for degrees).
    """
    top = transform.f + transform.e * rows.astype(np.float64)
    bottom = top + transform.e
    phi1 = np.clip(top * to_radians, -math.pi / 2, math.pi / 2)
    phi2 = np.clip(bottom * to_radians, -math.pi / 2, math.pi / 2)
    width = abs(float(transform.a) * to_radians)  # radians of longitude per pixel
    return np.asarray(width * zone_area(phi1, phi2, a=a, es=es), dtype=np.float64)
