"""Change between class rasters: transitions, named change classes, MMU, first-change year.

The inputs are class rasters (such as the ``*_classes.tif`` that ``geoseg
predict`` writes, or any single-band integer label raster): one per date, in
time order. Everything is read block by block, so memory depends on the block
size (and the MMU halo), never on the raster size.

Co-registration
    The rasters are compared on one grid, the *reference grid*: the first
    raster's CRS, transform and shape. A raster on exactly that grid is read as
    it is. Any other raster is, with ``align="first"`` (the default), warped
    onto the reference grid through a GDAL ``WarpedVRT`` with **nearest**
    resampling (class ids must never be averaged) and an in effect exact
    transformer (error ≤ 1e-9 pixel, so a pixel's value does not depend on the
    block it is read in). Only the overlap is compared: reference pixels outside another raster
    are nodata in every output. With ``align="none"`` rasters on different
    grids are refused; rasters that do not overlap at all are always refused
    (:class:`~geoseg.errors.AlignmentError`, naming both grids).

Transitions
    :func:`transition_matrix` counts every (from-class, to-class) pair of the
    pixels valid at both dates, with areas (exact planar for projected CRSs,
    ellipsoidal per row for geographic ones, as :mod:`geoseg.analysis.stats` computes
    them) and the class names of each raster's own scheme, so a water-scheme
    raster can be compared with a land-cover one.

Named change classes
    Rules map (from-classes, to-classes) pairs to named change classes, e.g.
    ``{"loss": {"from": ["forest"], "to": ["non-forest"]}}``. Classes are given
    by name (case-insensitive, in each raster's scheme) or id; ``"*"`` is any
    class. Rules are applied in order and a pixel takes the **first** rule it
    matches (so ``flood = * → water`` after ``permanent water = water →
    water`` means "water now, not water before"). The change raster is uint8
    with its own class scheme: 0 = no change (the name is configurable, e.g.
    ``dry``), 1… = the rules in order, 255 = nodata; it is written as a styled
    COG like predict's class raster (palette, category names, ``.qml``).

Minimum mapping unit (MMU)
    Patches of one change class (4- or 8-connected; use the connectivity you
    will vectorize with) whose area is under ``mmu_m2`` become 0, "no change".
    We drop rather than merge them into a neighbour, as change products usually
    do: a 2-pixel "loss" surrounded by forest is noise, not forest of another
    kind. The result is exact whatever the block size: a patch under the MMU
    has fewer than ``n = ceil(mmu / smallest pixel area)`` pixels, so each
    block is read with a halo of ``n`` pixels; a patch that reaches the halo's
    edge has more than ``n`` pixels and is kept, and every other patch touching
    the block lies wholly inside the window and is measured exactly. The
    transition table is computed before the MMU (it describes the data); the
    change-class areas after it (they describe the map).

First change year
    :func:`first_change_year` gives, per pixel, the date at which it went from
    the from-classes to the to-classes *and stayed there* up to the last date:
    the first date of the trailing run of to-class observations, provided the
    observation just before that run is a from-class. Nodata observations are
    skipped (the previous *valid* observation counts). The date is the one at
    which the change is first *detected*: with 1985/2000/2020, a loss that
    happened in 1992 gets 2000. Pixels that never changed (or changed back)
    are nodata (0). Years are stored as years; full dates (several may fall in
    one year) as days since 1970-01-01 (:class:`DateAxis`), named in the
    raster's ``GEOSEG_DATE_UNIT`` tag.

The package is split by concern: :mod:`~geoseg.change.grid` (co-registration),
:mod:`~geoseg.change.rules` (change classes), :mod:`~geoseg.change.transitions`,
:mod:`~geoseg.change.mmu`, :mod:`~geoseg.change.maps` (change rasters, flood),
:mod:`~geoseg.change.series` (first-change date) and :mod:`~geoseg.change.records`.

Examples
--------
>>> table = transition_matrix(
...     "data/water/pucallpa_1985_water_mndwi_otsu.tif",
...     "data/water/pucallpa_2020_water_mndwi_otsu.tif",
... )
>>> for r in table.rows:
...     print(r.from_name, "->", r.to_name, r.pixels)
land -> land 241473
land -> water 7139
water -> land 10017
water -> water 4069
"""

from __future__ import annotations

from geoseg.change.grid import AlignedStack, align, file_sha256
from geoseg.change.maps import ChangeResult, change_map, flood_extent
from geoseg.change.mmu import drop_small_patches
from geoseg.change.records import write_record, write_text
from geoseg.change.rules import (
    ChangeRule,
    as_rules,
    change_scheme,
    parse_rule,
    resolve_classes,
    rule_table,
)
from geoseg.change.series import (
    DATE_EPOCH,
    DateAxis,
    YearResult,
    date_axis,
    first_change,
    first_change_year,
    parse_dates,
)
from geoseg.change.transitions import Transition, TransitionTable, transition_matrix
from geoseg.io.align import RasterGrid

__all__ = [
    "DATE_EPOCH",
    "AlignedStack",
    "ChangeResult",
    "ChangeRule",
    "DateAxis",
    "RasterGrid",
    "Transition",
    "TransitionTable",
    "YearResult",
    "align",
    "as_rules",
    "change_map",
    "change_scheme",
    "date_axis",
    "drop_small_patches",
    "file_sha256",
    "first_change",
    "first_change_year",
    "flood_extent",
    "parse_dates",
    "parse_rule",
    "resolve_classes",
    "rule_table",
    "transition_matrix",
    "write_record",
    "write_text",
]
