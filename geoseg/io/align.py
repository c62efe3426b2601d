"""Rasters on one grid: grid equality, overlap, and a nearest warp onto a reference grid.

One set of checks for every command that compares rasters pixel by pixel
(``change``, ``eval``), with one tolerance and one error type
(:class:`~geoseg.errors.AlignmentError`).

Two grids are the **same** when CRS and shape are equal and every transform
coefficient agrees within ``min(1e-9 CRS units, 1e-6 pixel)``: the stricter of
the two rules the commands had (``eval`` compared to 1e-9 units, ``change`` to
a millionth of a pixel). A grid that is not the same is **warped** onto the
reference with nearest resampling (class ids are never blended into ids that do
not exist) and GDAL's exact transformer (:data:`TOLERANCE`), so a pixel's value
does not depend on the window it is read in.

Examples
--------
>>> import rasterio
>>> with rasterio.open("data/water/pucallpa_1985_water_mndwi_otsu.tif") as a, \\
...         rasterio.open("data/water/pucallpa_2020_water_mndwi_otsu.tif") as b:
...     RasterGrid.of(a).same_as(RasterGrid.of(b))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoseg.errors import AlignmentError

TOLERANCE = 1e-9
"""Error allowed (pixels) to GDAL's approximate transformer: in effect exact, so a pixel's
value does not depend on the block it is read in (rasterio refuses 0)."""

SAME_UNITS = 1e-9
"""Largest transform difference (CRS units) of two grids that are the same."""

SAME_PIXELS = 1e-6
"""Largest transform difference (pixels) of two grids that are the same."""


@dataclass(frozen=True, slots=True)
class RasterGrid:
    """CRS, affine transform and ``(rows, cols)`` shape of a raster."""

    crs: Any
    transform: Any
    shape: tuple[int, int]

    @classmethod
    def of(cls, ds: Any) -> RasterGrid:
        """The grid of an open dataset."""
        return cls(ds.crs, ds.transform, (int(ds.height), int(ds.width)))

    def same_as(self, other: RasterGrid) -> bool:
        """Same CRS, shape and transform (see the module notes for the tolerance).

        >>> from affine import Affine
        >>> a = RasterGrid(None, Affine(30, 0, 500000, 0, -30, 4e6), (10, 10))
        >>> a.same_as(RasterGrid(None, Affine(30, 0, 500000 + 1e-10, 0, -30, 4e6), (10, 10)))
        True
        >>> a.same_as(RasterGrid(None, Affine(30, 0, 500000 + 1e-6, 0, -30, 4e6), (10, 10)))
        False
        """
        if self.shape != other.shape or self.crs != other.crs:
            return False
        pixel = min(abs(self.transform.a), abs(self.transform.e)) or 1.0
        tol = min(SAME_UNITS, SAME_PIXELS * pixel)
        return all(
            abs(x - y) <= tol
            for x, y in zip(tuple(self.transform), tuple(other.transform), strict=True)
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        from rasterio.transform import array_bounds

        b = array_bounds(self.shape[0], self.shape[1], self.transform)
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))

    def describe(self) -> str:
        """One phrase: CRS, pixel size, shape and origin."""
        t = self.transform
        crs = self.crs.to_string() if self.crs is not None else "no CRS"
        return (
            f"{crs}, {abs(t.a):.6g}×{abs(t.e):.6g} pixels, {self.shape[0]}×{self.shape[1]} "
            f"(rows×cols) from ({t.c:.8g}, {t.f:.8g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "crs": self.crs.to_string() if self.crs is not None else None,
            "transform": list(tuple(self.transform)[:6]),
            "shape": list(self.shape),
        }


def same_grid(a: Any, b: Any) -> bool:
    """Whether two open datasets (or :class:`RasterGrid`) are on the same grid."""
    ga = a if isinstance(a, RasterGrid) else RasterGrid.of(a)
    gb = b if isinstance(b, RasterGrid) else RasterGrid.of(b)
    return ga.same_as(gb)


def check_overlap(grid: RasterGrid, ref: RasterGrid, *, name: str, ref_name: str) -> None:
    """Refuse a grid that cannot be warped onto ``ref``: no CRS, or no area in common.

    Raises
    ------
    AlignmentError
        One of them has no CRS (and the grids differ), or their bounds do not overlap.
    """
    from rasterio.warp import transform_bounds

    if grid.same_as(ref):
        return
    if grid.crs is None or ref.crs is None:
        raise AlignmentError(
            f"{name} or {ref_name} has no CRS and their grids differ, so they cannot be "
            "aligned; assign a CRS (gdal_edit.py -a_srs) to both"
        )
    b = transform_bounds(grid.crs, ref.crs, *grid.bounds)
    r = ref.bounds
    if not (b[0] < r[2] and r[0] < b[2] and b[1] < r[3] and r[1] < b[3]):
        raise AlignmentError(
            f"{name} ({grid.describe()}) does not overlap {ref_name} ({ref.describe()}); "
            "compare rasters of the same place (rasters that do not overlap share no pixel)"
        )


def warp_onto(
    ds: Any, grid: RasterGrid, *, nodata: float | None = None, alpha: bool = False
) -> Any:
    """A nearest-neighbour ``WarpedVRT`` of ``ds`` on ``grid`` (close it after use).

    ``nodata`` fills pixels outside ``ds``; ``alpha`` adds a last band that is 0
    there (and where ``ds`` has no data), for rasters whose every value is a class.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    options: dict[str, Any] = {"nodata": nodata} if nodata is not None else {}
    return WarpedVRT(
        ds,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.shape[1],
        height=grid.shape[0],
        resampling=Resampling.nearest,
        tolerance=TOLERANCE,
        add_alpha=alpha,
        **options,
    )
