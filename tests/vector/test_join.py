"""Tests for joining a region's pieces by cancelling shared edges (vector/join.py)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geoseg.vector import join, polygonize, vectorize
from tests.vector.test_vectorize import class_map, write_raster


def _record_joins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    """Every 4-connected join during a run: (fast result, GEOS coverage union)."""
    seen: list[tuple[object, object]] = []

    def both(parts: list, block: int) -> object:
        fast = join.join_pieces(parts, block)
        seen.append((fast, polygonize._join(parts, block)))
        return fast

    monkeypatch.setattr(polygonize, "join_pieces", both)
    return seen


def _assert_same_as_geos(seen: list[tuple[object, object]]) -> None:
    assert seen, "no region crossed a block edge: the test joins nothing"
    fast = np.array([f for f, _ in seen], dtype=object)
    geos = np.array([g for _, g in seen], dtype=object)
    assert all(f is not None for f in fast)  # no fall-back to the coverage union
    assert shapely.is_valid(fast).all()
    assert shapely.equals_exact(shapely.normalize(fast), shapely.normalize(geos), 0).all()


@pytest.mark.parametrize("seed, shape, block", [(7, (100, 130), 16), (9, (120, 140), 7)])
def test_joins_equal_the_coverage_union(tmp_path, monkeypatch, seed, shape, block):
    seen = _record_joins(monkeypatch)
    path = write_raster(tmp_path / "c.tif", class_map(seed, shape))
    vectorize(path, tmp_path / "c.gpkg", block=block)
    _assert_same_as_geos(seen)


def test_noisy_classes_touch_themselves_at_corners(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    cls = rng.integers(0, 2, (60, 70)).astype(np.uint8)  # corner contacts everywhere
    seen = _record_joins(monkeypatch)
    vectorize(write_raster(tmp_path / "n.tif", cls), tmp_path / "n.gpkg", block=8)
    _assert_same_as_geos(seen)


def _cls(rows: list[str]) -> np.ndarray:
    return np.array([[int(c) for c in r] for r in rows], dtype=np.uint8)


@pytest.mark.parametrize(
    "rows",
    [
        # two holes of class 0 touching at a corner that lies on the block edge (column 4)
        ["111111111", "111011111", "110001111", "111110111", "111100011", "111110111", "111111111"],
        # a ring of class 1 whose ends touch at a corner on the block edge: hole touches shell
        ["00000000", "01111110", "01000010", "01001110", "01110000", "00000000"],
    ],
)
def test_corner_contacts_across_a_block_edge(tmp_path, monkeypatch, rows):
    cls = _cls(rows)
    seen = _record_joins(monkeypatch)
    out = vectorize(write_raster(tmp_path / "t.tif", cls), tmp_path / "t.gpkg", block=4)
    _assert_same_as_geos(seen)
    assert out.per_class_area_m2 == {
        c: float(n) * 900.0 for c, n in enumerate(np.bincount(cls.ravel())) if n
    }


def test_pieces_that_do_not_meet_fall_back():
    apart = [shapely.box(0, 0, 4, 4), shapely.box(8, 0, 12, 4)]  # two shells: not one region
    assert join.join_pieces(apart, 4) is None
