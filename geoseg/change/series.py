"""Time series: the date each pixel first changed from → to and stayed."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geoseg.atomic import atomic_path, remove_quietly, temp_name
from geoseg.change.grid import Align, _align
from geoseg.change.maps import _check_out
from geoseg.change.mmu import _apply_mmu, _grow, _mmu
from geoseg.change.rules import ClassSpec, resolve_classes
from geoseg.errors import ChangeRuleError, InputError
from geoseg.grid.windows import iter_windows
from geoseg.io.align import RasterGrid
from geoseg.io.classraster import SchemeSource
from geoseg.io.writer import output_error

YEAR_NODATA = 0
"""Value of a first-change-year raster where a pixel never changed or was never observed."""


@dataclass(frozen=True)
class YearResult:
    """A written first-change-year raster and the area detected at each date."""

    path: Path
    dates: tuple[int, ...]  # the values the raster stores (DateAxis.values)
    pixels: dict[int, int]  # date value → pixels that changed then
    area_m2: dict[int, float]
    mmu_m2: float
    inputs: list[dict[str, Any]] = field(default_factory=list)
    labels: tuple[str, ...] = ()  # the dates as given (DateAxis.labels)
    unit: DateUnit = "year"

    def record(self) -> dict[str, Any]:
        """JSON-ready run record."""
        labels = self.labels or tuple(map(str, self.dates))
        return {
            "output": str(self.path),
            "dates": list(self.dates),
            "date_labels": list(labels),
            "date_unit": self.unit,
            "mmu_m2": self.mmu_m2,
            "inputs": self.inputs,
            "by_date": [
                {
                    "date": d,
                    "label": label,
                    "pixels": self.pixels.get(d, 0),
                    "area_m2": self.area_m2.get(d, 0.0),
                }
                for d, label in zip(self.dates[1:], labels[1:], strict=True)
            ],
        }


DATE_EPOCH = datetime.date(1970, 1, 1)
"""Full dates are stored as days since this day (uint16: 1970-01-02 … 2149-06-06)."""

DateUnit = Literal["year", "days since 1970-01-01", "index"]


@dataclass(frozen=True)
class DateAxis:
    """The dates of a series: the values rasters store, their labels and the unit.

    Years are stored as years (``2020``). When the dates are full dates (several in
    one year are allowed) a first-change raster stores days since 1970-01-01, which
    fits in uint16 until 2149 and converts back with ``DATE_EPOCH + timedelta(days=v)``.
    """

    values: tuple[int, ...]
    labels: tuple[str, ...]
    unit: DateUnit


def _one_date(d: object) -> int | datetime.date:
    """A year (int) or a full date from an int, a ``date`` or text (1985, 2000-07, 2000-07-01)."""
    if isinstance(d, datetime.datetime):
        return d.date()
    if isinstance(d, datetime.date):
        return d
    text = str(d).strip()
    with contextlib.suppress(ValueError):
        if re.fullmatch(r"\d{1,4}", text) and 0 < int(text) < 65535:
            return int(text)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return datetime.date(int(text[:4]), int(text[5:]), 1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.date.fromisoformat(text)
    raise InputError(f"date {d!r} is not a year or an ISO date (1985, 2000-07, 2000-07-01)")


def date_axis(dates: Sequence[object] | None, n: int) -> DateAxis:
    """The :class:`DateAxis` of ``n`` rasters: years, full dates, else indexes 0 … n-1.

    Examples
    --------
    >>> date_axis([1985, "2000", 2020], 3).values
    (1985, 2000, 2020)
    >>> axis = date_axis(["2021-06-03", datetime.date(2021, 8, 15)], 2)
    >>> axis.values, axis.labels, axis.unit
    ((18781, 18854), ('2021-06-03', '2021-08-15'), 'days since 1970-01-01')
    """
    if dates is None:
        return DateAxis(tuple(range(n)), tuple(f"t{i}" for i in range(n)), "index")
    if len(dates) != n:
        raise InputError(f"{len(dates)} dates for {n} rasters; give one date per raster")
    parsed = [_one_date(d) for d in dates]
    years = [d for d in parsed if isinstance(d, int)]
    if len(years) == n:
        axis = DateAxis(tuple(years), tuple(str(y) for y in years), "year")
    elif not years:
        days = [(d - DATE_EPOCH).days for d in parsed if isinstance(d, datetime.date)]
        if min(days) < 1 or max(days) > 65535:
            raise InputError(
                f"full dates must lie between 1970-01-02 and 2149-06-06 (got {dates[0]} … "
                f"{dates[-1]}); give years instead"
            )
        labels = tuple(
            str(d).strip()[:10] if isinstance(d, str) else str(p)
            for d, p in zip(dates, parsed, strict=True)
        )
        axis = DateAxis(tuple(days), labels, "days since 1970-01-01")
    else:
        raise InputError(
            f"dates {list(map(str, dates))} mix years and full dates; write every date as "
            "YYYY-MM-DD, or every date as a year"
        )
    if any(b <= a for a, b in zip(axis.values, axis.values[1:], strict=False)):
        raise InputError(
            f"dates [{', '.join(axis.labels)}] must increase (one date per raster, rasters in "
            "time order)"
        )
    return axis


def parse_dates(dates: Sequence[object] | None, n: int) -> tuple[int, ...]:
    """The values :func:`first_change_year` stores for ``n`` rasters (see :func:`date_axis`).

    Examples
    --------
    >>> parse_dates(["1985", "2000", 2020], 3)
    (1985, 2000, 2020)
    """
    return date_axis(dates, n).values


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
    dates: Sequence[object] | None = None,
    mmu_m2: float = 0.0,
    connectivity: int = 4,
    align: Align = "first",
    block: int = 1024,
    scheme: SchemeSource | None = None,
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
        One date per raster: all years (stored as the year), or all full dates (ISO
        text, ``datetime.date``; stored as days since 1970-01-01, several per year
        allowed; see :class:`DateAxis`). Without them the value is the index of the
        raster in the stack (1 … n-1). The raster's tags ``GEOSEG_DATE_UNIT`` and
        ``GEOSEG_DATE_LABELS`` say which.
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
    with _align(rasters, how=align, scheme=scheme) as stack:
        axis = date_axis(dates, len(stack.paths))
        values_of = axis.values
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
        tags = {
            "GEOSEG_DATES": json.dumps(values_of),
            "GEOSEG_DATE_LABELS": json.dumps(axis.labels),
            "GEOSEG_DATE_UNIT": axis.unit,
        }
        with _Uint16Cog(path, stack.grid, tags) as sink:
            for window in iter_windows(stack.grid.shape, block):
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
        axis.labels,
        axis.unit,
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
            unit = tags.get("GEOSEG_DATE_UNIT", "year")
            self.ds.set_band_description(1, f"first change date ({unit})")
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
