"""The array ring tracer gives exactly GDAL's polygons (rasterio.features.shapes).

Exactly: the same rings, in the same order, from the same first vertex and in
the same direction, not only equal after normalizing; so a feature written
through the tracer is the feature GDAL's polygonizer gave before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.features
import shapely
from rasterio.transform import Affine
from scipy import ndimage

from geoseg.vector import polygonize, trace, vectorize
from geoseg.vector.polygonize import _label, _polygonize
from geoseg.vector.trace import trace_rings
from tests.vector.test_vectorize import write_raster

ALL = np.ones(256, dtype=bool)
ALL[255] = False  # nodata


def labelled(cls: np.ndarray) -> np.ndarray:
    """4-connected labels of equal classes, 255 left out (as vectorize labels a block)."""
    labels, _ = _label(cls.astype(np.uint8), ALL, 4)
    return labels


def gdal_rings(labels: np.ndarray) -> list[list[np.ndarray]]:
    """GDAL's rings per label (index label - 1), closing vertex left out."""
    out: list[list[np.ndarray]] = [[] for _ in range(int(labels.max(initial=0)))]
    for geom, value in rasterio.features.shapes(labels, mask=labels > 0, connectivity=4):
        assert not out[int(value) - 1], "4-connected labels give one polygon each"
        out[int(value) - 1] = [np.asarray(r, dtype=np.int64)[:-1] for r in geom["coordinates"]]
    return out


def traced_rings(labels: np.ndarray) -> list[list[np.ndarray]]:
    traced = trace_rings(labels)
    assert traced is not None, "the tracer declined"
    xy, ring_off, poly_off = traced
    return [
        [
            xy[ring_off[r] : ring_off[r + 1]].astype(np.int64)
            for r in range(poly_off[p], poly_off[p + 1])
        ]
        for p in range(len(poly_off) - 1)
    ]


def assert_same_as_gdal(cls: np.ndarray) -> None:
    labels = labelled(cls)
    ours, gdal = traced_rings(labels), gdal_rings(labels)
    assert len(ours) == len(gdal) == labels.max(initial=0)
    for label, (a, b) in enumerate(zip(ours, gdal, strict=True), start=1):
        assert len(a) == len(b), f"label {label}: {len(a)} rings, GDAL {len(b)}"
        for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
            assert np.array_equal(ra, rb), f"label {label} ring {i}:\n{ra.tolist()}\n{rb.tolist()}"


# --- hand-made cases: each is a trap for one rule --------------------------------------

CASES = {
    "one pixel": [[1]],
    "one pixel in nodata": [[255, 255, 255], [255, 1, 255], [255, 255, 255]],
    "hole": [[1, 1, 1], [1, 2, 1], [1, 1, 1]],
    "nested holes": [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 2, 2, 2, 2, 2, 1],
        [1, 2, 3, 3, 3, 2, 1],
        [1, 2, 3, 1, 3, 2, 1],
        [1, 2, 3, 3, 3, 2, 1],
        [1, 2, 2, 2, 2, 2, 1],
        [1, 1, 1, 1, 1, 1, 1],
    ],
    "nodata hole": [[1, 1, 1], [1, 255, 1], [1, 1, 1]],
    # corner-touching pixels of one class are separate 4-connected polygons
    "diagonal pair": [[1, 2], [2, 1]],
    "checkerboard": [[(r + c) % 2 for c in range(5)] for r in range(4)],
    # one region touching itself at a corner: a hole touching the shell at a point
    "hole touching shell": [[1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]],
    # two holes touching each other at a corner
    "holes touching": [[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 1]],
    # the region's own two diagonal pixels, same label, the outside on the other diagonal
    "pinch with other classes": [
        [1, 1, 1, 1, 1],
        [1, 2, 3, 1, 1],
        [1, 3, 2, 1, 1],
        [1, 1, 1, 1, 1],
    ],
    "hole in a hole's island": [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    "spiral": [
        [1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 0, 1],
        [1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1],
    ],
    "single row": [[1, 1, 2, 255, 2, 1]],
    "single column": [[1], [1], [2], [255], [2]],
    "all nodata": [[255, 255], [255, 255]],
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_made_rasters_give_gdals_rings(name):
    assert_same_as_gdal(np.array(CASES[name], dtype=np.uint8))


def test_the_comparison_can_fail():
    """A ring that starts elsewhere or runs the other way is caught: the check is exact."""
    labels = labelled(np.array(CASES["hole touching shell"], dtype=np.uint8))
    rings = gdal_rings(labels)
    shell = rings[0][0]
    for wrong in (np.roll(shell, 1, axis=0), shell[::-1]):
        assert not np.array_equal(traced_rings(labels)[0][0], wrong)


def scrambled_search(change):
    """SciPy's depth-first order, changed by ``change(order, n_real_nodes)``."""
    real = trace.depth_first_order

    def search(graph, start, **kwargs):
        return change(real(graph, start, **kwargs), start)

    return search


def rings_to_the_end(order, n):
    """The first ring (and its virtual node) moved behind the others."""
    virtual = np.flatnonzero(order >= n)
    cut = virtual[2]  # root and the first ring's virtual node come first
    return np.concatenate([order[:1], order[cut:], order[1:cut]])


def no_virtual_nodes(order, n):
    return np.concatenate([order[:1], order[order < n]])


def test_walk_gives_each_cycle_from_its_first_start():
    # cycles 0 -> 3 -> 1 -> 0, 2 -> 5 -> 2, 4 -> 4; starts in the order 2, 0, 3, 4
    succ = np.array([3, 0, 5, 1, 4, 2])
    order, ring_start = trace._walk(succ, np.array([2, 0, 3, 4]))
    assert order.tolist() == [2, 5, 0, 3, 1, 4]
    assert ring_start.tolist() == [0, 2, 5]


@pytest.mark.parametrize("change", [rings_to_the_end, no_virtual_nodes])
def test_a_walk_out_of_order_is_declined(monkeypatch, change):
    """Should SciPy's search ever walk otherwise, the tracer says so (and GDAL takes over)."""
    succ, starts = np.array([3, 0, 5, 1, 4, 2]), np.array([2, 0, 3, 4])
    monkeypatch.setattr(trace, "depth_first_order", scrambled_search(change))
    assert trace._walk(succ, starts) is None
    labels = labelled(np.array(CASES["nested holes"], dtype=np.uint8))
    assert trace_rings(labels) is None


# --- seeded random rasters ---------------------------------------------------------------


def noisy(seed: int, shape: tuple[int, int], classes: int, nodata: float) -> np.ndarray:
    """Random classes, sometimes blown up into blocks, with scattered nodata."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, classes, shape).astype(np.uint8)
    if seed % 2:  # runs and blocks: long straight edges and large holes
        cls = np.kron(cls, np.ones((3, 2), dtype=np.uint8))[: shape[0], : shape[1]]
    cls[rng.random(shape) < nodata] = 255
    return cls


@pytest.mark.parametrize("seed", range(40))
def test_random_rasters_give_gdals_rings(seed):
    rng = np.random.default_rng(1000 + seed)
    shape = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
    assert_same_as_gdal(noisy(seed, shape, int(rng.integers(2, 6)), 0.05 * (seed % 3)))


@pytest.mark.parametrize("seed", range(3))
def test_landscape_gives_gdals_rings(seed):
    """Smoothed noise cut into classes: large regions with many holes, nested and touching."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((300, 280)), 3) + 0.3 * rng.standard_normal(
        (300, 280)
    )
    cls = np.digitize(field, np.quantile(field, [0.2, 0.4, 0.6, 0.8])).astype(np.uint8)
    cls[rng.random(cls.shape) < 0.005] = 255
    assert_same_as_gdal(cls)


# --- in vectorize ----------------------------------------------------------------------


def test_polygonize_uses_the_tracer_and_gives_gdals_polygons(monkeypatch):
    cls = noisy(3, (97, 81), 4, 0.02)
    labels = labelled(cls)
    gdal = _polygonize(labels, offset=(1024, 2048), multipart=True)  # GDAL's path
    monkeypatch.setattr(polygonize, "shapes", None)  # the tracer must not need GDAL
    ours = _polygonize(labels, offset=(1024, 2048), multipart=False)
    assert len(ours) == len(gdal) == labels.max()
    gdal = np.array([shapely.get_geometry(g, 0) for g in gdal], dtype=object)  # 1-part multis
    assert shapely.equals_exact(ours, gdal, tolerance=0).all()
    assert shapely.is_valid(ours).all()


def test_declined_block_falls_back_to_gdal(monkeypatch, caplog):
    labels = labelled(noisy(5, (40, 30), 3, 0.0))
    expected = trace.polygons(labels, (0, 0))
    monkeypatch.setattr(trace, "trace_rings", lambda labels: None)
    got = _polygonize(labels, offset=(0, 0), multipart=False)
    assert shapely.equals_exact(got, expected, tolerance=0).all()
    assert "declined" in caplog.text


def test_blocks_touching_regions_equal_gdal_on_the_whole_raster(tmp_path: Path):
    """Regions cut by block edges (block 16), joined again: GDAL's whole-raster polygons."""
    cls = noisy(7, (70, 90), 3, 0.03)
    transform = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_500_000.0)
    path = write_raster(tmp_path / "c.tif", cls, transform=transform, tags=False)
    vectorize(path, tmp_path / "c.gpkg", block=16, style=False)
    got = pyogrio.read_dataframe(tmp_path / "c.gpkg")
    found = list(
        rasterio.features.shapes(cls, mask=cls != 255, connectivity=4, transform=transform)
    )
    expected = shapely.normalize(np.array([shapely.geometry.shape(g) for g, _ in found]))
    ours = shapely.normalize(np.asarray(got.geometry.values, dtype=object))
    assert len(ours) == len(expected)
    assert sorted(map(shapely.to_wkb, ours)) == sorted(map(shapely.to_wkb, expected))
