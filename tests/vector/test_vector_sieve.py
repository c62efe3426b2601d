"""Tests for the sieve (``min_area``): small regions merge, exactly, whatever the block size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio.features
import shapely
from rasterio.transform import Affine
from scipy import ndimage

from geoseg.errors import VectorizeError
from geoseg.vector import vectorize
from tests.vector.test_vectorize import UTM, assert_same_polygons, whole_raster, write_raster

# --- an independent whole-raster reference ----------------------------------------------


def reference_sieve(
    cls: np.ndarray, pixel_area: np.ndarray, min_area: float, connectivity: int, nodata: int = 255
) -> np.ndarray:
    """The documented semantics, written plainly: rounds over the whole raster.

    Each round, every region with area < min_area that shares pixel edges with
    regions of area >= min_area takes the class it shares the most such edges
    with (ties: lowest class); repeat until nothing changes.
    """
    cls = cls.copy()
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    h, w = cls.shape
    while True:
        region = np.zeros(cls.shape, dtype=np.int64)
        area: dict[int, float] = {}
        n = 0
        for value in np.unique(cls):
            if value == nodata:
                continue
            lab, count = ndimage.label(cls == value, structure=structure)
            region[lab > 0] = lab[lab > 0] + n
            for i in range(1, count + 1):
                area[n + i] = float(pixel_area[lab == i].sum())
            n += count
        new = cls.copy()
        for rid, a in area.items():
            if a >= min_area:
                continue
            edges: Counter[int] = Counter()
            for r, c in zip(*np.nonzero(region == rid), strict=True):
                for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w:
                        other = region[rr, cc]
                        if other and other != rid and area[other] >= min_area:
                            edges[int(cls[rr, cc])] += 1
            if edges:
                new[region == rid] = min(edges, key=lambda k: (-edges[k], k))
        if np.array_equal(new, cls):
            return cls
        cls = new


def noisy_map(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Blobs of 5 classes, clusters of noise (several pixels, several classes), nodata."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((5, *shape)), sigma=(0, 3, 3))
    cls = field.argmax(0).astype(np.uint8)
    noise = ndimage.binary_dilation(rng.random(shape) < 0.02, iterations=1)
    cls[noise] = rng.integers(0, 5, int(noise.sum()))
    cls[rng.random(shape) < 0.01] = 255
    cls[10:18, 30:60] = 255
    cls[12:14, 40:42] = 2  # islets of small regions in nodata: nothing to merge into
    cls[12, 40] = 3
    cls[15, 50] = 1
    return cls


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    cls = noisy_map(21, (90, 110))
    return write_raster(tmp_path_factory.mktemp("sieve") / "noisy.tif", cls), cls


# --- the invariant: equal to the whole-raster reference, for any block size ---------------


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("pixels", [2, 7])
def test_sieve_equals_the_whole_raster_reference(noisy, tmp_path, connectivity, pixels):
    path, cls = noisy
    min_area = pixels * 900.0
    expected = reference_sieve(cls, np.full(cls.shape, 900.0), min_area, connectivity)
    assert not np.array_equal(expected, cls)  # the sieve has work to do
    ref_geoms, ref_classes = whole_raster(expected, UTM, connectivity)
    for block in (16, 23, 4096):  # cuts regions, halos and rounds differently
        r = vectorize(
            path,
            tmp_path / f"b{block}.gpkg",
            block=block,
            connectivity=connectivity,
            min_area=min_area,
        )
        gdf = gpd.read_file(r.path)
        assert_same_polygons(gdf, ref_geoms, ref_classes)
        counts = np.bincount(expected[expected != 255], minlength=5)
        assert r.per_class_area_m2 == pytest.approx(
            {c: n * 900.0 for c, n in enumerate(counts) if n}, rel=1e-12
        )
    # only small regions enclosed by nodata (the islet) stay under min_area
    small = gdf[gdf["area_m2"] < min_area]
    assert len(small) > 0
    large = shapely.union_all(gdf.geometry.values[gdf["area_m2"] >= min_area])
    assert (shapely.length(shapely.intersection(small.geometry.values, large)) == 0).all()


def test_small_patches_across_block_edges(tmp_path):
    cls = np.zeros((40, 40), dtype=np.uint8)
    cls[:, 20:] = 3  # the block edge at column 20 separates classes 0 and 3
    cls[18:22, 18:22] = 1  # 16 px, centred on the block corner (20, 20): 8 edges to 0, 8 to 3
    cls[5:7, 20:23] = 2  # 6 px east of the edge, its longest boundary is with class 3 ...
    cls[5:7, 23] = 4  # ... even with class 4 beside it (small too)
    cls[30:32, 19] = 2  # 2 px west of the edge: 3 edges with class 0, 2 with class 3 across it
    path = write_raster(tmp_path / "edges.tif", cls)
    expected = reference_sieve(cls, np.full(cls.shape, 900.0), 17 * 900.0, 4)
    assert (expected[18:22, 18:22] == 0).all()  # tie 8:8 goes to the lowest class
    assert (expected[5:7, 20:24] == 3).all() and (expected[30:32, 19] == 0).all()
    for block in (20, 7, 64):
        gdf = gpd.read_file(
            vectorize(path, tmp_path / f"{block}.fgb", block=block, min_area=17 * 900.0).path
        )
        assert_same_polygons(gdf, *whole_raster(expected, UTM, 4))
        assert sorted(gdf["class_id"]) == [0, 3]


def test_rounds_cascade_through_nested_small_regions(tmp_path):
    cls = np.zeros((30, 30), dtype=np.uint8)
    cls[10:17, 10:17] = 1  # a ring of small class 1 ...
    cls[11:16, 11:16] = 2  # ... around a small class 2 ...
    cls[13, 13] = 3  # ... around one pixel of class 3
    path = write_raster(tmp_path / "nested.tif", cls)
    r = vectorize(path, tmp_path / "n.gpkg", block=8, min_area=30 * 900.0)
    assert r.per_class_count == {0: 1}
    assert r.per_class_area_m2 == {0: 900.0 * 900}


def test_nodata_is_never_merged_into_or_out_of(tmp_path):
    cls = np.full((20, 20), 255, dtype=np.uint8)
    cls[:, :10] = 1
    cls[4:6, 10:12] = 2  # touches class 1 on one side, nodata elsewhere: merges into 1
    cls[14:16, 14:16] = 3  # enclosed by nodata: stays
    path = write_raster(tmp_path / "nd.tif", cls)
    r = vectorize(path, tmp_path / "nd.gpkg", block=6, min_area=10 * 900.0)
    assert r.per_class_count == {1: 1, 3: 1}
    assert r.per_class_area_m2 == {1: (200 + 4) * 900.0, 3: 4 * 900.0}


def test_sieve_agrees_with_gdal_where_the_rules_coincide(tmp_path):
    """Isolated specks inside one class: GDAL's largest neighbour is the only neighbour."""
    rng = np.random.default_rng(5)
    field = ndimage.gaussian_filter(rng.standard_normal((4, 80, 90)), sigma=(0, 5, 5))
    cls = rasterio.features.sieve(field.argmax(0).astype(np.uint8), size=3, connectivity=4)
    regions = [ndimage.label(cls == v)[0] for v in range(4)]
    assert min(np.bincount(lab.ravel())[1:].min() for lab in regions) >= 3  # no natural specks
    uniform = ndimage.maximum_filter(cls, 3) == ndimage.minimum_filter(cls, 3)
    specks = uniform & (rng.random(cls.shape) < 0.03)
    specks &= ndimage.convolve(specks.astype(int), np.ones((3, 3)), mode="constant") == 1
    cls[specks] = (cls[specks] + 1) % 4
    path = write_raster(tmp_path / "specks.tif", cls, tags=False)
    gdal = rasterio.features.sieve(cls, size=3, connectivity=4)
    gdf = gpd.read_file(vectorize(path, tmp_path / "s.gpkg", block=32, min_area=3 * 900.0).path)
    assert_same_polygons(gdf, *whole_raster(gdal, UTM, 4))


def test_geographic_min_area_uses_ellipsoidal_pixel_areas(tmp_path):
    cls = noisy_map(3, (60, 70))
    transform = Affine(0.01, 0.0, 10.0, 0.0, -0.01, 70.0)  # pixel area shrinks ~3% down the raster
    path = write_raster(tmp_path / "geo.tif", cls, crs="EPSG:4326", transform=transform)
    geod = pyproj.Geod(ellps="WGS84")
    lats = 70.0 - 0.01 * np.arange(cls.shape[0] + 1)
    rows = [
        abs(geod.polygon_area_perimeter([10, 10.01, 10.01, 10], [a, a, b, b])[0])
        for a, b in zip(lats[:-1], lats[1:], strict=True)
    ]
    pixel_area = np.repeat(np.array(rows)[:, None], cls.shape[1], axis=1)
    min_area = 5 * float(np.mean(rows))  # 5 pixels are small in the north, large in the south
    expected = reference_sieve(cls, pixel_area, min_area, 4)
    flat = reference_sieve(cls, np.full(cls.shape, np.mean(rows)), min_area, 4)
    assert not np.array_equal(expected, flat)  # the per-row areas matter here
    for block in (13, 64):
        gdf = gpd.read_file(
            vectorize(path, tmp_path / f"g{block}.gpkg", block=block, min_area=min_area).path
        )
        assert_same_polygons(gdf, *whole_raster(expected, transform, 4))


def test_min_area_too_large_for_the_halo(tmp_path):
    path = write_raster(tmp_path / "c.tif", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(VectorizeError, match="smaller min_area"):
        vectorize(path, tmp_path / "c.gpkg", min_area=1e7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif"]


def test_interrupted_sieve_leaves_no_file(noisy, tmp_path):
    path, _ = noisy

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vectorize(path, tmp_path / "out.gpkg", block=16, min_area=7 * 900.0, progress=stop)
    assert not list(tmp_path.iterdir())  # neither the output nor a sieve round is left
