"""Co-registration: class rasters opened and read on one grid (see :mod:`geoseg.change`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geoseg.analysis.stats import PixelAreas
from geoseg.errors import AlignmentError, InputError, RasterReadError
from geoseg.io.align import TOLERANCE as TOLERANCE
from geoseg.io.align import RasterGrid as RasterGrid
from geoseg.io.align import check_overlap, warp_onto
from geoseg.io.classraster import SchemeSource, class_names, open_class_raster
from geoseg.schemes import NODATA_CLASS

Align = Literal["first", "none"]
"""How rasters on other grids are treated: reprojected onto the first's, or refused."""


class AlignedStack:
    """Class rasters opened and read on one grid, the reference's (see the module notes).

    Use :func:`align` to make one, as a context manager.
    """

    def __init__(
        self,
        paths: Sequence[str],
        datasets: list[Any],
        how: Align,
        scheme: SchemeSource | None = None,
    ) -> None:
        self.paths = tuple(paths)
        self.datasets = datasets
        self.grid = RasterGrid.of(datasets[0])
        self.grids = tuple(RasterGrid.of(ds) for ds in datasets)
        self.names = tuple(class_names(ds, scheme) for ds in datasets)
        self.reprojected = tuple(not g.same_as(self.grid) for g in self.grids)
        self.readers: list[Any] = []
        self._check(how)
        for ds, warp in zip(datasets, self.reprojected, strict=True):
            self.readers.append(self._warped(ds) if warp else ds)
        self.areas = PixelAreas(datasets[0])

    def _check(self, how: Align) -> None:
        ref = self.grid
        for path, grid, warp in zip(self.paths, self.grids, self.reprojected, strict=True):
            if not warp:
                continue
            if how == "none":
                raise AlignmentError(
                    f"{path} ({grid.describe()}) is not on the grid of {self.paths[0]} "
                    f"({ref.describe()}); pass --align first to reproject it "
                    "onto the first raster's grid, or warp it yourself (gdalwarp -tap)"
                )
            check_overlap(grid, ref, name=path, ref_name=self.paths[0])

    def _warped(self, ds: Any) -> Any:
        return warp_onto(ds, self.grid, nodata=NODATA_CLASS)

    def read(self, window: Window) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Class ids ``(k, rows, cols)`` and validity of every raster in ``window``."""
        values, valid = [], []
        for path, reader in zip(self.paths, self.readers, strict=True):
            try:
                data = reader.read(1, window=window, masked=True)
            except RasterioError as err:
                raise RasterReadError(f"cannot read {path}: {err}") from err
            raw = np.ma.getdata(data)
            ok = ~np.ma.getmaskarray(data) & (raw != NODATA_CLASS)
            if raw.dtype != np.uint8:
                bad = ok & ((raw < 0) | (raw > NODATA_CLASS))
                if bad.any():
                    raise InputError(
                        f"{path} has class values outside 0..254 ({raw[bad].min()}..."
                        f"{raw[bad].max()}); change compares class ids, not measurements"
                    )
                raw = np.where(ok, raw, NODATA_CLASS).astype(np.uint8)
            values.append(raw)
            valid.append(ok)
        return np.stack(values), np.stack(valid)

    def describe(self) -> list[dict[str, Any]]:
        """Per input: path, SHA-256, grid, and whether it was reprojected."""
        return [
            {
                "path": path,
                "sha256": file_sha256(path),
                "grid": grid.to_dict(),
                "reprojected": warp,
                "resampling": "nearest" if warp else None,
            }
            for path, grid, warp in zip(self.paths, self.grids, self.reprojected, strict=True)
        ]

    def close(self) -> None:
        """Close the readers and datasets."""
        for reader, ds in zip(self.readers, self.datasets, strict=False):
            if reader is not ds:
                reader.close()
        for ds in self.datasets:
            ds.close()

    def __enter__(self) -> AlignedStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def align(
    rasters: Sequence[str | os.PathLike[str]],
    *,
    how: Align = "first",
    scheme: SchemeSource | None = None,
) -> AlignedStack:
    """Open class rasters on one grid: the first raster's.

    Parameters
    ----------
    rasters
        Two or more single-band integer class rasters, in time order.
    how
        ``"first"``: warp rasters on another grid onto the first's (nearest);
        ``"none"``: refuse rasters on another grid.
    scheme
        Class scheme (catalog name, YAML path or classes) naming the ids of every
        raster [each raster's own tags, see :mod:`geoseg.io.classraster`].

    Returns
    -------
    AlignedStack
        Use it as a context manager; it closes the files.

    Raises
    ------
    AlignmentError
        Different grids with ``how="none"``, or rasters that do not overlap.
    InputError
        Fewer than two rasters, no CRS, not a single-band integer raster.

    Examples
    --------
    >>> years = [f"data/water/pucallpa_{y}_water_mndwi_otsu.tif" for y in (1985, 2020)]
    >>> with align(years) as stack:
    ...     print(stack.reprojected, stack.names[0])
    (False, False) {0: 'land', 1: 'water'}
    """
    if how not in ("first", "none"):
        raise InputError(f"align must be 'first' or 'none', got {how!r}")
    paths = [os.fspath(p) for p in rasters]
    if len(paths) < 2:
        raise InputError("change needs at least two class rasters (t0 and t1)")
    datasets: list[Any] = []
    try:
        for path in paths:
            datasets.append(
                open_class_raster(path, command="change", crs_reason="so it cannot be placed")
            )
        return AlignedStack(paths, datasets, how, scheme)
    except BaseException:
        for ds in datasets:
            ds.close()
        raise


_align = align  # the public functions take an ``align=`` option that shadows the name


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()
