"""Time series: the date each pixel first changed from → to and stayed."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geoseg.atomic import atomic_path, remove_quietly, temp_name
from geoseg.change.grid import Align, RasterGrid, _align, _windows
from geoseg.change.maps import _check_out
from geoseg.change.mmu import _apply_mmu, _grow, _mmu
from geoseg.change.rules import ClassSpec, resolve_classes
from geoseg.errors import ChangeRuleError, InputError
from geoseg.writer import output_error

YEAR_NODATA = 0
"""Value of a first-change-year raster where a pixel never changed or was never observed."""


@dataclass(frozen=True)
class YearResult:
    """A written first-change-year raster and the area detected at each date."""

    path: Path
    dates: tuple[int, ...]
    pixels: dict[int, int]  # date value → pixels that changed then
    area_m2: dict[int, float]
    mmu_m2: float
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """JSON-ready run record."""
        return {
            "output": str(self.path),
            "dates": list(self.dates),
            "mmu_m2": self.mmu_m2,
            "inputs": self.inputs,
            "by_date": [
                {"date": d, "pixels": self.pixels.get(d, 0), "area_m2": self.area_m2.get(d, 0.0)}
                for d in self.dates[1:]
            ],
        }


def parse_dates(dates: Sequence[int | str] | None, n: int) -> tuple[int, ...]:
    """Date values of ``n`` rasters: years (from ints or ISO dates), else 0, 1, …, n-1.

    Examples
    --------
    >>> parse_dates(["1985", "2000-07-01", 2020], 3)
    (1985, 2000, 2020)
    """
    if dates is None:
        return tuple(range(n))
    if len(dates) != n:
        raise InputError(f"{len(dates)} dates for {n} rasters; give one date per raster")
    out = []
    for d in dates:
        text = str(d).strip()
        m = re.fullmatch(r"(\d{1,4})(-\d{2}(-\d{2})?)?", text)
        if not m or not 0 < int(m.group(1)) < 65535:
            raise InputError(f"date {d!r} is not a year or an ISO date (1985, 2000-07-01)")
        out.append(int(m.group(1)))
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise InputError(f"dates {out} must increase (one year per raster, rasters in time order)")
    return tuple(out)


def first_change(
    values: NDArray[np.uint8],
    valid: NDArray[np.bool_],
    *,
    is_from: Sequence[NDArray[np.bool_]],
    is_to: Sequence[NDArray[np.bool_]],
    dates: Sequence[int],
) -> NDArray[np.uint16]:
    """Per pixel, the date a from→to change was first seen and then kept (0: none).

    Parameters
    ----------
    values, valid
        ``(k, rows, cols)`` class ids and validity of ``k`` dates.
    is_from, is_to
        Per date, ``(256,)`` lookups of the from- and to-classes.
    dates
        The value written for each date.

    Examples
    --------
    >>> v = np.array([[[1, 1, 1, 1]], [[0, 0, 1, 0]], [[0, 1, 1, 0]]], dtype=np.uint8)
    >>> ok = np.ones(v.shape, dtype=bool)
    >>> ok[1, 0, 3] = False  # unobserved in 2000: the 1985 forest counts as "before"
    >>> f = np.array([False, True] + [False] * 254); t = np.array([True] + [False] * 255)
    >>> first_change(v, ok, is_from=[f] * 3, is_to=[t] * 3, dates=[1985, 2000, 2020]).tolist()
    [[2000, 0, 0, 2020]]
    """
    shape = values.shape[1:]
    result = np.zeros(shape, dtype=np.uint16)
    candidate = np.zeros(shape, dtype=np.uint16)
    active = np.ones(shape, dtype=bool)  # still inside the trailing run of to-classes
    for k in range(values.shape[0] - 1, -1, -1):
        v = valid[k] & active
        to = v & is_to[k][values[k]]
        candidate[to] = dates[k]
        stop = v & ~to
        came_from = stop & is_from[k][values[k]] & (candidate > 0)
        result[came_from] = candidate[came_from]
        active &= ~stop
    return result


def first_change_year(
    rasters: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    from_classes: Sequence[ClassSpec],
    to_classes: Sequence[ClassSpec],
    dates: Sequence[int | str] | None = None,
    mmu_m2: float = 0.0,
    connectivity: int = 4,
    align: Align = "first",
    block: int = 1024,
    overwrite: bool = False,
) -> YearResult:
    """Write a uint16 raster of the date each pixel first went from → to and stayed.

    Parameters
    ----------
    rasters
        Class rasters in time order (warped onto the first's grid if needed).
    out
        Output GeoTIFF (COG, uint16, nodata 0).
    from_classes, to_classes
        Class names or ids (in each raster's scheme); they must not share a class.
    dates
        One year (or ISO date) per raster; without them the value is the index
        of the raster in the stack (1 … n-1).
    mmu_m2
        Patches of one date under this area become nodata (0).
    connectivity, align, block, overwrite
        As for :func:`change_map`.

    Returns
    -------
    YearResult
        Path and pixels / area detected at each date.

    Examples
    --------
    >>> import tempfile
    >>> res = first_change_year(
    ...     [f"data/water/pucallpa_{y}_water_mndwi_otsu.tif" for y in (1985, 2000, 2020)],
    ...     out=Path(tempfile.mkdtemp()) / "new_water_year.tif",
    ...     from_classes=["land"], to_classes=["water"], dates=[1985, 2000, 2020],
    ... )
    >>> sorted(res.pixels)
    [2000, 2020]
    """
    path = _check_out(Path(out), overwrite)
    with _align(rasters, how=align) as stack:
        values_of = parse_dates(dates, len(stack.paths))
        is_from, is_to = [], []
        for path_k, names in zip(stack.paths, stack.names, strict=True):
            f = resolve_classes(from_classes, names, raster=path_k)
            t = resolve_classes(to_classes, names, raster=path_k)
            if np.any(f & t):
                raise ChangeRuleError(
                    f"from and to classes share {np.flatnonzero(f & t).tolist()} in {path_k}; "
                    "a class cannot be both"
                )
            is_from.append(f)
            is_to.append(t)
        selected = np.ones(65536, dtype=bool)
        selected[YEAR_NODATA] = False
        mmu = _mmu(stack, mmu_m2, selected, connectivity=connectivity, fill=YEAR_NODATA)
        pixels = np.zeros(65536, dtype=np.int64)
        area = np.zeros(65536, dtype=np.float64)
        with _Uint16Cog(path, stack.grid, {"GEOSEG_DATES": json.dumps(values_of)}) as sink:
            for window in _windows(stack.grid.shape, block):
                grown, inner = _grow(window, mmu.halo if mmu else 0, stack.grid.shape)
                values, valid = stack.read(grown)
                year = first_change(values, valid, is_from=is_from, is_to=is_to, dates=values_of)
                year = _apply_mmu(year, window, grown, stack, mmu)[inner]
                rows, _ = np.nonzero(year)
                pixels += np.bincount(year.ravel(), minlength=65536)
                area += np.bincount(
                    year[year > 0], weights=stack.areas.rows(window)[rows], minlength=65536
                )
                sink.write(window, year)
        if not stack.areas.geographic:
            area = pixels.astype(np.float64) * stack.areas.pixel_m2
        inputs = stack.describe()
    found = [int(d) for d in np.flatnonzero(pixels) if d != YEAR_NODATA]
    return YearResult(
        path,
        values_of,
        {d: int(pixels[d]) for d in found},
        {d: float(area[d]) for d in found},
        float(mmu_m2),
        inputs,
    )


class _Uint16Cog:
    """A uint16 single-band COG (nodata 0) written window by window, renamed when complete."""

    def __init__(self, path: Path, grid: RasterGrid, tags: dict[str, str]) -> None:
        self.path = path
        self.stage = temp_name(path.with_name(path.stem + ".stage.tif"))
        profile = {
            "driver": "GTiff",
            "dtype": "uint16",
            "count": 1,
            "nodata": YEAR_NODATA,
            "height": grid.shape[0],
            "width": grid.shape[1],
            "crs": grid.crs,
            "transform": grid.transform,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
        }
        try:
            self.ds = rasterio.open(self.stage, "w", **profile)
            self.ds.update_tags(**tags)
            self.ds.set_band_description(1, "first change date")
        except (RasterioError, OSError) as err:
            remove_quietly(self.stage)
            raise output_error(path, err) from err

    def write(self, window: Window, values: NDArray[np.uint16]) -> None:
        self.ds.write(values, 1, window=window)

    def __enter__(self) -> _Uint16Cog:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        from rasterio.shutil import copy as rio_copy

        try:
            self.ds.close()
            if kind is None:
                with atomic_path(self.path) as tmp:
                    rio_copy(
                        str(self.stage),
                        str(tmp),
                        driver="COG",
                        COMPRESS="DEFLATE",
                        BLOCKSIZE=512,
                        OVERVIEW_RESAMPLING="NEAREST",
                    )
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(f"{tmp}.aux.xml")
        except (RasterioError, OSError) as err:
            raise output_error(self.path, err) from err
        finally:
            remove_quietly(self.stage)
