"""Tests for the GeoJSON text printer: numbers, brackets and orientation against GEOS."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import shapely
from rasterio.transform import Affine

from geoseg.vector import geojson


def _geos_text(values: np.ndarray, digits: int) -> list[str]:
    points = shapely.points(values, np.zeros(len(values)))
    wkt = shapely.to_wkt(points, rounding_precision=digits, trim=True)
    return [w.removeprefix("POINT (").split(" ")[0] for w in wkt.tolist()]


@pytest.mark.parametrize("digits", [6, 7, 8, 9, 11, 13])
def test_numbers_print_as_geos_trims_them(digits):
    rng = np.random.default_rng(digits)
    values = np.concatenate(
        [
            rng.uniform(-180, 180, 4000),
            rng.integers(-180, 181, 200).astype(np.float64),  # whole degrees: no point
            rng.uniform(-180, 180, 300).round(2),  # trailing zeros to trim
            [0.0, 100.0, -100.0, 179.99999, 1.0 - 10.0**-digits],
            [9999.5, 10_000.25, -12_345.5] if digits <= 11 else [],  # a second integer group
        ]
    ).round(digits)
    values = values[np.abs(values) >= 1e-3]  # GEOS writes tiny numbers with an exponent
    scaled = np.rint(values * 10.0**digits).astype(np.int64)
    points = np.stack([scaled, scaled[::-1]], axis=1)
    n = len(points)
    body, ends = geojson._print_points(
        points, np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.ones(n, bool), digits
    )
    texts = np.split(np.frombuffer(body, np.uint8), ends[:-1])
    ours = [t.tobytes().decode() for t in texts]
    geos = _geos_text(values, digits)
    assert ours == [f"[{x},{y}]," for x, y in zip(geos, geos[::-1], strict=True)]
    assert [float(t[1:-2].split(",")[0]) for t in ours] == values.tolist()


def _write(geoms: list, *, multi: bool, digits: int = 6) -> list[dict]:
    f = io.BytesIO()
    heads = [f'{{"i": {i}, "geometry": '.encode() for i in range(len(geoms))]
    geojson.write_geometries(
        f,
        np.array(geoms, dtype=object),
        heads,
        transform=Affine(1, 0, 0, 0, -1, 0),  # pixel rows go down: y flips, so do rings
        to_wgs84=lambda xy: np.round(xy / 1000, digits),
        digits=digits,
        multi=multi,
    )
    return json.loads(b"[" + f.getvalue() + b"]")


def _expected(geom, *, multi: bool, digits: int = 6):
    mapped = shapely.transform(geom, lambda xy: np.round(xy * [1, -1] / 1000, digits))
    mapped = shapely.orient_polygons(mapped)
    if multi and mapped.geom_type == "Polygon":
        mapped = shapely.MultiPolygon([mapped])
    return json.loads(shapely.to_geojson(mapped))


@pytest.mark.parametrize("multi", [False, True])
def test_geometries_match_geos_mapped_and_oriented(multi):
    square = shapely.box(0, 0, 10, 10)
    holed = shapely.box(20, 0, 40, 20).difference(shapely.box(25, 5, 30, 10))
    clockwise = shapely.Polygon([(0, 0), (0, 5), (5, 5), (5, 0)])  # both ways in, CCW out
    two = shapely.MultiPolygon([shapely.box(50, 50, 60, 60), holed])
    geoms = [square, holed, clockwise, two] if multi else [square, holed, clockwise]
    features = _write(geoms, multi=multi)
    assert [f["i"] for f in features] == list(range(len(geoms)))
    for feature, geom in zip(features, geoms, strict=True):
        assert feature["geometry"] == _expected(geom, multi=multi)


def test_a_large_geometry_spans_slices(monkeypatch):
    monkeypatch.setattr(geojson, "_SLICE", 7)  # every geometry cut across several slices
    rng = np.random.default_rng(3)
    geoms = [
        shapely.Polygon(
            np.column_stack([np.cos(t), np.sin(t)]) * rng.uniform(50, 500) + rng.uniform(0, 1e4, 2)
        ).normalize()
        for t in (np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 40))) for _ in range(25))
    ]
    features = _write(geoms, multi=False)
    assert [f["geometry"] for f in features] == [_expected(g, multi=False) for g in geoms]
