"""From-class × to-class pixel counts and areas between two class rasters."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from geoseg.analysis.stats import markdown_cell
from geoseg.change.grid import Align, AlignedStack, _align
from geoseg.grid.windows import iter_windows
from geoseg.io.classraster import SchemeSource
from geoseg.schemes import NODATA_CLASS


@dataclass(frozen=True, slots=True)
class Transition:
    """Pixels (and their area) that were class ``from_id`` and are ``to_id``."""

    from_id: int
    from_name: str
    to_id: int
    to_name: str
    pixels: int
    area_m2: float

    @property
    def area_ha(self) -> float:
        """Area in hectares."""
        return self.area_m2 / 1e4


TRANSITION_COLUMNS = ("from_id", "from_name", "to_id", "to_name", "pixels", "area_m2", "area_ha")


@dataclass(frozen=True, slots=True)
class TransitionTable:
    """From-class × to-class pixel counts and areas between two class rasters."""

    t0: str
    t1: str
    crs: str
    geographic: bool
    rows: tuple[Transition, ...]
    nodata_pixels: int = 0  # pixels nodata (or outside) in either raster, left out

    def matrix(
        self, unit: Literal["pixels", "m2", "ha"] = "ha"
    ) -> tuple[list[str], list[str], NDArray[np.float64]]:
        """From names, to names and the ``(from, to)`` matrix in ``unit``."""
        froms = sorted({(r.from_id, r.from_name) for r in self.rows})
        tos = sorted({(r.to_id, r.to_name) for r in self.rows})
        m = np.zeros((len(froms), len(tos)))
        fi = {k: i for i, k in enumerate(froms)}
        ti = {k: i for i, k in enumerate(tos)}
        for r in self.rows:
            v = {"pixels": r.pixels, "m2": r.area_m2, "ha": r.area_ha}[unit]
            m[fi[(r.from_id, r.from_name)], ti[(r.to_id, r.to_name)]] = v
        return [n for _, n in froms], [n for _, n in tos], m

    def to_csv(self) -> str:
        """One row per (from, to) pair with pixels > 0, full precision."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(TRANSITION_COLUMNS)
        for r in self.rows:
            w.writerow((r.from_id, r.from_name, r.to_id, r.to_name, r.pixels, r.area_m2, r.area_ha))
        return buf.getvalue()

    def to_markdown(self) -> str:
        """The matrix in hectares (rows: from t0, columns: to t1) with totals and a note."""
        froms, tos, m = self.matrix("ha")
        head = "| from \\ to (ha) | " + " | ".join(markdown_cell(t) for t in tos) + " | total |"
        rule = "|---|" + "---:|" * (len(tos) + 1)
        body = [
            f"| {markdown_cell(f)} | "
            + " | ".join(f"{v:,.2f}" for v in row)
            + f" | {row.sum():,.2f} |"
            for f, row in zip(froms, m, strict=True)
        ]
        total = "| total | " + " | ".join(f"{v:,.2f}" for v in m.sum(axis=0))
        total += f" | {m.sum():,.2f} |"
        return "\n".join([head, rule, *body, total, "", self.note(), ""])

    def note(self) -> str:
        """One line: rasters, CRS, area method, what was left out."""
        method = "ellipsoidal (per-row exact)" if self.geographic else "planar, in the CRS"
        return (
            f"{Path(self.t0).name} → {Path(self.t1).name} ({self.crs}, areas {method}); "
            f"{self.nodata_pixels:,} pixels nodata or outside either raster left out"
        )


class _Tally:
    """Counts and areas per ``from * 256 + to`` code, block by block."""

    def __init__(self) -> None:
        self.pixels = np.zeros(65536, dtype=np.int64)
        self.area = np.zeros(65536, dtype=np.float64)
        self.nodata = 0

    def add(
        self, codes: NDArray[np.int64], both: NDArray[np.bool_], row_area: NDArray[np.float64]
    ) -> None:
        rows, _ = np.nonzero(both)
        c = codes[both]
        self.pixels += np.bincount(c, minlength=65536)
        self.area += np.bincount(c, weights=row_area[rows], minlength=65536)
        self.nodata += int(both.size - both.sum())

    def table(self, stack: AlignedStack, i: int, j: int) -> TransitionTable:
        areas = stack.areas
        area = self.area if areas.geographic else self.pixels * areas.pixel_m2
        n0, n1 = stack.names[i], stack.names[j]
        rows = tuple(
            Transition(
                int(k) // 256,
                n0.get(int(k) // 256, f"class_{int(k) // 256}"),
                int(k) % 256,
                n1.get(int(k) % 256, f"class_{int(k) % 256}"),
                int(self.pixels[k]),
                float(area[k]),
            )
            for k in np.flatnonzero(self.pixels)
        )
        return TransitionTable(
            stack.paths[i], stack.paths[j], areas.crs_name, areas.geographic, rows, self.nodata
        )


def _codes(
    values: NDArray[np.uint8], valid: NDArray[np.bool_], i: int, j: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    both = valid[i] & valid[j]
    codes = values[i].astype(np.int64) * 256 + values[j]
    return np.where(both, codes, NODATA_CLASS * 256 + NODATA_CLASS), both


def transition_matrix(
    t0: str | os.PathLike[str],
    t1: str | os.PathLike[str],
    *,
    align: Align = "first",
    block: int = 1024,
    scheme: SchemeSource | None = None,
) -> TransitionTable:
    """From-class × to-class pixel counts and areas between two class rasters.

    Parameters
    ----------
    t0, t1
        Class rasters of the earlier and the later date (``t1`` is warped onto
        ``t0``'s grid if needed, see the module notes).
    align
        ``"first"`` (reproject onto ``t0``'s grid) or ``"none"`` (refuse other grids).
    block
        Block edge in pixels; memory is bounded by one block per raster.
    scheme
        Class scheme (catalog name, YAML path or classes) naming the rasters' ids [their
        own tags, see :mod:`geoseg.io.classraster`].

    Returns
    -------
    TransitionTable
        Rows for every pair with pixels, ordered by (from id, to id).
    """
    with _align([t0, t1], how=align, scheme=scheme) as stack:
        tally = _Tally()
        for window in iter_windows(stack.grid.shape, block):
            values, valid = stack.read(window)
            codes, both = _codes(values, valid, 0, 1)
            tally.add(codes, both, stack.areas.rows(window))
        return tally.table(stack, 0, 1)
