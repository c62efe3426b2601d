"""Spectral-index bundles: index maths, per-scene Otsu, partition invariance, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import BundleError, SceneError
from geoseg.io.scene import open_scene
from geoseg.models.bundle import load_bundle
from geoseg.models.indices import make_index_bundle, resolve_scene_bundle, scene_index_histogram
from geoseg.models.shipped import shipped_bundles
from geoseg.models.spectral import (
    IndexPredictor,
    compute_index,
    normalized_difference,
    otsu_threshold,
)
from geoseg.schemes import load_scheme
from tests.common import REPO, read, write_raster

OLINDA = REPO / "data" / "water" / "olinda_landsat7_etm_6band.tif"  # bands 1 2 3 4 5 7
WATER = load_scheme("water")


# -- index maths -----------------------------------------------------------------


def test_normalized_difference_by_hand() -> None:
    a = np.array([[3.0, 1.0, 0.0, 5.0], [2.0, 0.0, 4.0, -1.0]])
    b = np.array([[1.0, 3.0, 0.0, 5.0], [0.0, 2.0, 4.0, 3.0]])
    got = normalized_difference(a, b)
    # (3-1)/4, (1-3)/4, 0/0 -> 0, 0/10 ; 2/2, -2/2, 0/8, (-1-3)/(2) = -2 -> clipped to -1
    want = np.array([[0.5, -0.5, 0.0, 0.0], [1.0, -1.0, 0.0, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    ("name", "first", "second", "want"),
    [("ndwi", 60.0, 20.0, 0.5), ("mndwi", 10.0, 30.0, -0.5), ("ndvi", 90.0, 10.0, 0.8)],
)
def test_compute_index_uses_band_order(name: str, first: float, second: float, want: float) -> None:
    chips = np.array([[[[first]], [[second]]]], dtype=np.float32)  # (1, 2, 1, 1)
    assert compute_index(name, chips)[0, 0, 0] == pytest.approx(want)


def test_otsu_matches_brute_force_between_class_variance() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(-0.4, 0.08, 5000), rng.normal(0.3, 0.05, 1500)])
    edges = np.linspace(-1.0, 1.0, 201)
    counts, _ = np.histogram(values, bins=edges)
    t = otsu_threshold(counts, edges)
    centers = (edges[:-1] + edges[1:]) / 2

    def between(k: int) -> float:  # split below edge k+1
        w0, w1 = counts[: k + 1].sum(), counts[k + 1 :].sum()
        if not w0 or not w1:
            return -1.0
        m0 = (counts[: k + 1] * centers[: k + 1]).sum() / w0
        m1 = (counts[k + 1 :] * centers[k + 1 :]).sum() / w1
        return float(w0 * w1 * (m0 - m1) ** 2)

    scores = [between(k) for k in range(len(counts) - 1)]
    best = max(scores)
    winners = [edges[k + 1] for k, s in enumerate(scores) if s >= best * (1 - 1e-12)]
    assert min(winners) - 1e-9 <= t <= max(winners) + 1e-9
    assert -0.2 < t < 0.2  # between the two modes


def test_otsu_takes_middle_of_an_empty_gap_and_refuses_one_value() -> None:
    assert otsu_threshold(np.array([5, 5, 0, 0, 5, 5]), np.linspace(0.0, 6.0, 7)) == 3.0
    with pytest.raises(SceneError, match="fixed-threshold"):
        otsu_threshold(np.array([0, 7, 0]), np.linspace(0.0, 3.0, 4))


# -- the bundle -------------------------------------------------------------------


def test_index_bundle_round_trip_and_info(tmp_path: Path) -> None:
    made = make_index_bundle(
        "my-ndwi", index="ndwi", threshold="otsu", classes=WATER, description="test"
    )
    path = made.save(tmp_path / "my-ndwi.bundle")
    back = load_bundle(path)
    assert back.kind == "index" and back.tensors == {}
    assert back.sha256 == made.sha256 and back.meta == made.meta
    assert back.bands == ("green", "nir")
    out = CliRunner().invoke(cli, ["bundle", "info", str(path)])
    assert out.exit_code == 0, out.output
    assert "index: ndwi > Otsu threshold (measured once per scene)" in out.output
    assert "0=land, 1=water" in out.output


def test_shipped_index_bundles_are_reproduced_by_the_script() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_index_bundles", REPO / "scripts" / "make_index_bundles.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built = mod.build_all()
    shipped = shipped_bundles()
    assert {"ndwi", "ndwi-otsu", "mndwi", "mndwi-otsu", "ndvi"} <= set(shipped)
    for fname, bundle in built.items():
        assert load_bundle(fname.removesuffix(".bundle")).sha256 == bundle.sha256, fname
    out = CliRunner().invoke(cli, ["bundle", "info", "ndwi-otsu"])
    assert out.exit_code == 0 and "Otsu" in out.output


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"normalization": {"type": "percentile"}}, "pass-through"),
        ({"bands": ["nir", "green"]}, "needs bands green, nir"),
        ({"index": {"name": "evi", "threshold": {"mode": "otsu"}}}, "unknown index"),
        ({"index": {"name": "ndwi", "threshold": {"mode": "fixed", "value": 3}}}, r"\[-1, 1\]"),
        ({"index": {"name": "ndwi", "threshold": {"mode": "median"}}}, "threshold"),
    ],
)
def test_bad_index_metadata_is_refused(changes: dict[str, object], match: str) -> None:
    made = make_index_bundle("x", index="ndwi", threshold=0.0, classes=WATER)
    with pytest.raises(BundleError, match=match):
        made.with_meta(**changes)


def test_predictor_logits_put_positive_class_above_threshold() -> None:
    made = make_index_bundle("x", index="ndwi", threshold=0.2, classes=WATER, steepness=10.0)
    pred = IndexPredictor(made)
    green = np.array([[10.0, 30.0, 40.0, 0.0]], dtype=np.float32)
    nir = np.array([[30.0, 20.0, 20.0, 0.0]], dtype=np.float32)  # ndwi -0.5, 0.2, 1/3, 0
    logits = pred.predict(np.stack([green, nir])[None])
    assert logits.shape == (1, 2, 1, 4)
    np.testing.assert_array_equal(logits[0, 0], 0.0)
    np.testing.assert_allclose(
        logits[0, 1, 0], 10.0 * (np.array([-0.5, 0.2, 1 / 3, 0.0]) - 0.2), atol=1e-5
    )
    # index == threshold is a tie -> the first class (land): water is index > t
    assert list(logits[0].argmax(axis=0)[0]) == [0, 0, 1, 0]
    otsu = make_index_bundle("y", index="ndwi", threshold="otsu", classes=WATER)
    with pytest.raises(BundleError, match="per scene"):
        IndexPredictor(otsu)


# -- Otsu once per scene -----------------------------------------------------------


def test_scene_histogram_does_not_depend_on_strip_size() -> None:
    bundle = load_bundle("ndwi-otsu")
    scene = open_scene(str(OLINDA), bands=[2, 4])
    small, edges = scene_index_histogram(scene, bundle, strip_pixels=349 * 7)
    large, _ = scene_index_histogram(scene, bundle, strip_pixels=1 << 24)
    np.testing.assert_array_equal(small, large)
    # and it is the histogram of the whole scene read at once
    with rasterio.open(OLINDA) as ds:
        g, n = ds.read(2).astype(np.float32), ds.read(4).astype(np.float32)
    ok = (g + n) != 0
    whole, _ = np.histogram(normalized_difference(g, n)[ok], bins=edges)
    np.testing.assert_array_equal(small, whole)


def test_resolved_bundle_records_threshold_and_source() -> None:
    bundle = load_bundle("ndwi-otsu")
    scene = open_scene(str(OLINDA), bands=[2, 4])
    resolved = resolve_scene_bundle(scene, bundle)
    thr = resolved.meta["index"]["threshold"]
    counts, edges = scene_index_histogram(scene, bundle)
    assert thr["mode"] == "fixed" and thr["value"] == otsu_threshold(counts, edges)
    assert thr["otsu"]["resolved_from_sha256"] == bundle.sha256
    assert thr["otsu"]["valid_pixels"] == int(counts.sum())
    assert resolve_scene_bundle(scene, load_bundle("ndwi")) is not None
    fixed = load_bundle("ndwi")
    assert resolve_scene_bundle(scene, fixed) is fixed


def test_all_nodata_scene_cannot_be_resolved(tmp_path: Path) -> None:
    data = np.zeros((2, 40, 40), dtype=np.uint8)
    path = write_raster(tmp_path / "empty.tif", data, nodata=0)
    with pytest.raises(SceneError, match="no valid pixel"):
        resolve_scene_bundle(open_scene(str(path)), load_bundle("ndwi-otsu"))


def test_otsu_predict_is_identical_across_block_and_chip_sizes(tmp_path: Path) -> None:
    """Per-scene Otsu + a per-pixel model: any chip grid and block size give the same bytes."""
    runs = [(64, 64), (64, 256), (200, 400)]  # (chip, block)
    outs = []
    for chip, block in runs:
        [res] = geoseg.predict(
            OLINDA,
            "ndwi-otsu",
            tmp_path / f"c{chip}b{block}",
            bands=[2, 4],
            chip=chip,
            block=block,
            vector=False,
            device="cpu",
        )
        outs.append(res)
    first = read(outs[0].outputs["classes"])
    for res in outs[1:]:
        np.testing.assert_array_equal(read(res.outputs["classes"]), first)
    thresholds = {json.dumps(r.record["bundle"]["index"]["threshold"]) for r in outs}
    assert len(thresholds) == 1
    # the map is exactly index > Otsu threshold, nodata where the scene has none
    t = outs[0].record["bundle"]["index"]["threshold"]["value"]
    with rasterio.open(OLINDA) as ds:
        g, n = ds.read(2).astype(np.float32), ds.read(4).astype(np.float32)
    want = (normalized_difference(g, n) > np.float32(t)).astype(np.uint8)
    np.testing.assert_array_equal(first, want)
    assert 0.05 < want.mean() < 0.5  # the Olinda coast: sea and rivers are a real share


def test_otsu_on_dask_gives_the_local_bytes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    [local] = geoseg.predict(
        OLINDA, "ndwi-otsu", tmp_path / "local", bands=[2, 4], chip=128, vector=False
    )
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        [remote] = geoseg.predict(
            OLINDA,
            "ndwi-otsu",
            tmp_path / "dask",
            bands=[2, 4],
            chip=128,
            block=128,
            vector=False,
            client=client,
        )
    assert remote.record["parameters"]["engine"] == "dask"
    assert remote.record["bundle"]["index"] == local.record["bundle"]["index"]
    np.testing.assert_array_equal(read(remote.outputs["classes"]), read(local.outputs["classes"]))


def test_cli_predict_with_index_bundle_end_to_end(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli,
        [
            "predict",
            str(REPO / "data" / "zion" / "landsat8_2015-08-18_b2345.tif"),
            "--model",
            "ndwi",
            "--bands",
            "2,4",
            "--out",
            str(tmp_path),
            "--confidence",
        ],
    )
    assert out.exit_code == 0, out.output
    classes = read(tmp_path / "landsat8_2015-08-18_b2345_classes.tif")
    conf = read(tmp_path / "landsat8_2015-08-18_b2345_confidence.tif")
    assert set(np.unique(classes)) <= {0, 1, 255}
    assert 0 < (classes == 1).sum() < 0.01 * classes.size  # Zion: a little water
    assert conf[classes == 0].min() >= 50
    assert (tmp_path / "landsat8_2015-08-18_b2345_classes.gpkg").exists()


def test_joint_percentile_stretch_keeps_band_order() -> None:
    """The water model's normalization: one stretch for all bands keeps green > nir."""
    from geoseg.io.normalize import build_normalizer, validate_normalization

    stats = [(60.0, 200.0), (10.0, 70.0)]  # green, nir percentiles of one scene
    pixel = np.array([[[[80.0]], [[60.0]]]], dtype=np.float32)  # water-like: green > nir
    joint = build_normalizer(
        validate_normalization({"type": "percentile", "joint": True}, 2), stats=stats
    )
    per_band = build_normalizer(validate_normalization({"type": "percentile"}, 2), stats=stats)
    j = joint(pixel.copy())[0, :, 0, 0]
    p = per_band(pixel.copy())[0, :, 0, 0]
    assert j == pytest.approx([70 / 190, 50 / 190])  # one stretch 10..200: order kept
    assert p == pytest.approx([20 / 140, 50 / 60])  # per band: nir now looks brighter
    assert "joint" not in validate_normalization({"type": "percentile"}, 2)
