"""The spine's invariants: georeferencing, chips once, partition invariance, seams, nodata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

import geoseg
from geoseg.grid.chips import ChipGrid
from geoseg.io.normalize import build_normalizer, scene_percentiles
from geoseg.io.styles import data_layer
from tests.common import (
    BAHAMAS,
    PUCALLPA,
    ZION,
    make_bundle,
    read,
    scene_file,
    structured,
    write_raster,
)


@pytest.fixture(scope="module")
def conv_bundle() -> geoseg.ModelBundle:
    return make_bundle("ConvStack", chip=64, overlap=16)


def _bundle_for(path: Path, arch: str = "ConvStack") -> geoseg.ModelBundle:
    with rasterio.open(path) as ds:
        n = ds.count
    return make_bundle(arch, bands=n, chip=128, overlap=32)


# -- 1. georeferencing -----------------------------------------------------------


@pytest.mark.parametrize("path", [ZION, BAHAMAS, PUCALLPA], ids=["zion", "bahamas", "pucallpa"])
def test_outputs_keep_exact_georeferencing(path: Path, tmp_path: Path) -> None:
    [res] = geoseg.predict(path, _bundle_for(path), tmp_path, confidence=True, vector=False)
    with rasterio.open(path) as src:
        for key in ("classes", "confidence"):
            with rasterio.open(res.outputs[key]) as out:
                assert out.crs == src.crs
                assert out.transform == src.transform  # exact, not almost
                assert (out.width, out.height) == (src.width, src.height)
                assert out.dtypes[0] == "uint8" and out.nodata == 255
                assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert out.overviews(1) or max(out.shape) <= 512


@pytest.mark.parametrize(
    "shape",
    [(200, 300), (100, 513), (300, 1025), (2049, 2048), (9000, 100), (1024, 2048)],
    ids=str,
)
def test_overviews_match_the_cog_drivers_levels(shape: tuple[int, int], tmp_path: Path) -> None:
    """The writer builds overviews itself (3x faster, less memory than the COG driver's).

    Same levels as the COG driver; sizes rounded up as gdaladdo does (the COG driver
    rounds down, dropping a last odd row/column); where the sides divide evenly,
    the very same bytes.
    """
    from rasterio.shutil import copy as rio_copy

    from geoseg.io.writer import RasterSink
    from geoseg.schemes import load_scheme

    values = (structured(shape, 1, seed=1)[0] * 7.99).astype(np.uint8)
    ref_src = write_raster(tmp_path / "ref_src.tif", values[None])
    rio_copy(str(ref_src), str(tmp_path / "ref.tif"), driver="COG", OVERVIEW_RESAMPLING="NEAREST")
    with rasterio.open(ref_src) as src:
        sink = RasterSink(
            tmp_path / "ours.tif",
            shape=shape,
            crs=src.crs,
            transform=src.transform,
            classes=load_scheme("nlcd8"),
            description="classes",
        )
    sink.write((0, 0, *shape), values)
    ours = sink.publish(sink.finish())
    with rasterio.open(tmp_path / "ref.tif") as ref, rasterio.open(ours) as out:
        levels = len(ref.overviews(1))
        assert len(out.overviews(1)) == levels
        assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(out.read(1), values)
    even = all(side % 2**levels == 0 for side in shape)
    for k in range(levels):
        factor = 2 ** (k + 1)
        with (
            rasterio.open(tmp_path / "ref.tif", overview_level=k) as a,
            rasterio.open(ours, overview_level=k) as b,
        ):
            assert b.shape == (-(-shape[0] // factor), -(-shape[1] // factor))
            got = b.read(1)
            assert set(np.unique(got)) <= set(np.unique(values))
            if even:
                np.testing.assert_array_equal(got, a.read(1))


def test_rotated_geotransform_is_kept(tmp_path: Path, conv_bundle: geoseg.ModelBundle) -> None:
    rotated = Affine.translation(300000, 4150000) @ Affine.rotation(20) @ Affine.scale(30, -30)
    src = scene_file(tmp_path / "rot.tif", (150, 170), transform=rotated)
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", vector=True)
    with rasterio.open(res.outputs["classes"]) as out:
        assert out.transform == rotated
    import geopandas as gpd

    gdf = gpd.read_file(res.outputs["vector"], layer=data_layer(res.outputs["vector"]))
    poly_area = gdf.geometry.area.sum()
    valid = (read(res.outputs["classes"]) != 255).sum()
    assert poly_area == pytest.approx(valid * 900.0, rel=1e-9)


def test_class_raster_carries_palette_and_names(
    tmp_path: Path, conv_bundle: geoseg.ModelBundle
) -> None:
    src = scene_file(tmp_path / "s.tif", (100, 90))
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", vector=False)
    with rasterio.open(res.outputs["classes"]) as ds:
        cmap = ds.colormap(1)
        assert cmap[1][:3] == (0x1F, 0x78, 0xB4) and cmap[5][:3] == (0xB1, 0x59, 0x28)
        assert json.loads(ds.tags()["GEOSEG_CLASSES"])[1]["name"] == "forest"
    import xml.etree.ElementTree as ET

    aux = ET.parse(res.outputs["classes"] + ".aux.xml").getroot()
    cats = [c.text or "" for c in aux.iter("Category")]
    assert cats[1] == "water" and cats[2] == "forest" and cats[5] == "bare"
    assert aux.find(".//GDALRasterAttributeTable") is not None


def test_gdal_reads_category_names(tmp_path: Path, conv_bundle: geoseg.ModelBundle) -> None:
    import shutil
    import subprocess

    if shutil.which("gdalinfo") is None:
        pytest.skip("gdalinfo (Debian gdal-bin) not installed; make test installs it")
    src = scene_file(tmp_path / "s.tif", (100, 90))
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", vector=False)
    info = json.loads(
        subprocess.run(
            ["gdalinfo", "-json", res.outputs["classes"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    band = info["bands"][0]
    assert band["categories"][1] == "water" and band["categories"][5] == "bare"
    assert band["colorInterpretation"] == "Palette"
    assert "rat" in info
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"


# -- 2. each chip once --------------------------------------------------------------


def _nonempty_chips(path: Path, chip: int, overlap: int) -> int:
    scene = geoseg.open_scene(path)
    grid = ChipGrid(scene.shape, chip, overlap)
    _, valid = scene.read((0, 0, *scene.shape))
    return sum(
        bool(valid[r : r + chip, c : c + chip].any())
        for r in grid.row_starts
        for c in grid.col_starts
    )


@pytest.mark.parametrize("block", [64, 100, 256, 4096])
def test_each_nonempty_chip_inferred_once(
    tmp_path: Path, block: int, conv_bundle: geoseg.ModelBundle
) -> None:
    data = (structured((260, 300), 4, seed=3) * 20000).astype("uint16")
    data[:, :130, :150] = 0  # a nodata corner: whole chips there are empty
    src = write_raster(tmp_path / "s.tif", data, nodata=0)
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", block=block, vector=False)
    rec = res.record
    expected = _nonempty_chips(src, 64, 16)
    assert rec["chips_inferred"] == expected
    assert rec["chips_total"] == len(ChipGrid((260, 300), 64, 16))
    assert rec["chips_skipped_nodata"] == rec["chips_total"] - expected > 0


# -- 3. partition invariance ----------------------------------------------------------


def _batch_invariant(bundle: geoseg.ModelBundle) -> bool:
    """Whether the predictor gives the same floats for 8 chips batched and one by one."""
    from geoseg.models.torch_model import TorchPredictor

    pred = TorchPredictor(bundle)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, len(bundle.bands), bundle.chip, bundle.chip)).astype(np.float32)
    return np.array_equal(
        pred.predict(x), np.concatenate([pred.predict(x[i : i + 1]) for i in range(8)])
    )


def _partition_runs(
    scene: Path, bundle: geoseg.ModelBundle, out: Path, combos: list[tuple[int, int]]
) -> dict[tuple[int, int], tuple]:
    runs = {}
    for block, batch in combos:
        [res] = geoseg.predict(
            scene,
            bundle,
            out / f"{block}-{batch}",
            block=block,
            batch_size=batch,
            confidence=True,
            vector=False,
        )
        runs[(block, batch)] = (read(res.outputs["classes"]), read(res.outputs["confidence"]))
    return runs


COMBOS = [(256, 1), (512, 8), (2048, 8), (2048, 1), (512, 1)]


def test_partition_invariance_shipped_model_real_scene(tmp_path: Path) -> None:
    """Block sizes 256/512/2048 x batch sizes 1/8: byte-identical classes (shipped model, Zion)."""
    bundle = geoseg.load_bundle("landcover-nlcd8")
    assert _batch_invariant(bundle)  # its kernels give the same floats at any batch size
    runs = _partition_runs(ZION, bundle, tmp_path, COMBOS)
    ref_cls, ref_conf = runs[(2048, 1)]
    assert len(np.unique(ref_cls)) >= 4
    for key, (cls, conf) in runs.items():
        assert np.array_equal(cls, ref_cls), key
        assert np.abs(conf.astype(int) - ref_conf).max() <= 1, key


def test_partition_invariance_any_model_fixed_batch(tmp_path: Path) -> None:
    """A model whose floats depend on batch shape: blocks still never matter.

    Every forward pass has the same shape (short batches are padded), so for a
    given batch size the class raster is byte-identical whatever the block size.
    Across batch sizes such a model differs in the last float bits, which can
    only flip pixels whose top two classes are tied to ~1e-6.
    """
    bundle = make_bundle(
        "Unet",
        encoder="resnet18",
        bands=3,
        chip=96,
        overlap=32,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )
    assert not _batch_invariant(bundle)  # the point of this test
    runs = _partition_runs(BAHAMAS, bundle, tmp_path, COMBOS)
    for batch in (1, 8):
        ref = runs[(2048, batch)][0]
        for block in (256, 512):
            if (block, batch) in runs:
                assert np.array_equal(runs[(block, batch)][0], ref), (block, batch)
    a, b = runs[(2048, 1)][0], runs[(2048, 8)][0]
    assert (a != b).mean() < 1e-4


@pytest.mark.parametrize("blend", ["smooth", "crop"])
def test_partition_invariance_thread_counts(
    tmp_path: Path, blend: str, conv_bundle: geoseg.ModelBundle
) -> None:
    src = scene_file(tmp_path / "s.tif", (333, 270), seed=5)
    outs = []
    for block, threads in [(50, 1), (70, 2), (1000, 3)]:
        [res] = geoseg.predict(
            src,
            conv_bundle,
            tmp_path / f"{block}",
            block=block,
            threads=threads,
            blend=blend,
            vector=False,
            confidence=True,
        )
        outs.append((read(res.outputs["classes"]), read(res.outputs["confidence"])))
    for cls, conf in outs[1:]:
        assert np.array_equal(cls, outs[0][0])
        assert np.array_equal(conf, outs[0][1])


def test_spilled_shared_cells_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conv_bundle: geoseg.ModelBundle
) -> None:
    """Shared-cell sums spilled to disk (a zero memory budget) merge to the same bytes."""
    import tempfile

    import geoseg.pipeline.merge as merge

    src = scene_file(tmp_path / "s.tif", (333, 270), seed=7)
    kw = {"block": 70, "vector": False, "confidence": True}
    [ref] = geoseg.predict(src, conv_bundle, tmp_path / "mem", **kw)
    assert ref.record["shared_cells_spilled"] == 0
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    monkeypatch.setattr(merge, "SPILL_BUDGET", 0)
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "disk", **kw)
    assert res.record["shared_cells_spilled"] > 10
    for key in ("classes", "confidence"):
        assert np.array_equal(read(res.outputs[key]), read(ref.outputs[key])), key
    assert list(spill_root.iterdir()) == []  # the spill folder is gone


def test_local_engine_is_an_engine_and_options_match_their_checks() -> None:
    """The engine has every member predict uses; typed options accept what they list, only that."""
    from geoseg.engine.base import Engine
    from geoseg.engine.local import LocalEngine
    from geoseg.errors import InputError
    from geoseg.grid.blend import BLENDS
    from geoseg.models.device import PRECISIONS
    from geoseg.pipeline.options import OVERVIEWS, PredictOptions

    engine = LocalEngine(threads=1)
    assert isinstance(engine, Engine)
    assert engine.resolve_device("cpu") == "cpu"
    assert engine.parallelism == 1 and engine.memory_budget("cpu")[1:] == (1, "this machine")
    for name, values in (("precision", PRECISIONS), ("blend", BLENDS), ("overviews", OVERVIEWS)):
        assert len(values) >= 2, name
        for value in values:
            PredictOptions(**{name: value})
        with pytest.raises(InputError, match=rf"{name}=\.\.\. must be one of"):
            PredictOptions(**{name: "int8"})


def test_auto_block_keeps_two_workers_even() -> None:
    """9 x 9 chips on 2 workers: 2 x 2-chip blocks (41 chips on the busiest), not 3 x 3 (45)."""
    from geoseg.pipeline.plan import _makespan, auto_block

    grid = ChipGrid((4096, 4096), 512, 64)
    assert len(grid.row_starts) == 9
    block = auto_block(grid.shape, grid, 2)
    assert block == 2 * grid.stride
    assert _makespan([2, 2, 2, 2, 1], [2, 2, 2, 2, 1], 2) == 41
    assert _makespan([3, 3, 3], [3, 3, 3], 2) == 45
    # one worker: the largest block (fewest re-read margins); many chips: large blocks too
    assert auto_block(grid.shape, grid, 1) == 3 * grid.stride
    big = ChipGrid((16384, 16384), 512, 64)
    assert auto_block(big.shape, big, 2) == 3 * big.stride


# -- 4. seams --------------------------------------------------------------------------


def _whole_image_probs(path: Path, bundle: geoseg.ModelBundle) -> np.ndarray:
    scene = geoseg.open_scene(path)
    spec = bundle.meta["normalization"]
    norm = build_normalizer(spec, stats=scene_percentiles(scene, spec["low"], spec["high"]))
    data, _ = scene.read((0, 0, *scene.shape))
    x = torch.from_numpy(norm(data)[None])
    with torch.inference_mode():
        return torch.softmax(bundle.build_model()(x), dim=1)[0].numpy()


@pytest.mark.parametrize("block", [64, 1000])
def test_crop_blend_equals_whole_image_forward(tmp_path: Path, block: int) -> None:
    layers = 4  # receptive-field radius 4 px; overlap 16 >= 2 * 4
    bundle = make_bundle(
        "ConvStack", chip=48, overlap=16, arch_params={"layers": layers, "width": 8}
    )
    src = scene_file(tmp_path / "s.tif", (203, 187), seed=7)
    [res] = geoseg.predict(
        src, bundle, tmp_path / "out", blend="crop", block=block, confidence=True, vector=False
    )
    probs = _whole_image_probs(src, bundle)
    ids = np.array([1, 2, 5], dtype=np.uint8)
    whole = ids[probs.argmax(0)]
    top2 = np.sort(probs, axis=0)[-2:]
    decidable = (top2[1] - top2[0]) > 1e-5  # exact float ties cannot be decided either way
    inner = np.zeros(whole.shape, dtype=bool)
    inner[layers:-layers, layers:-layers] = True
    cls = read(res.outputs["classes"])
    assert np.array_equal(cls[inner & decidable], whole[inner & decidable])
    assert (inner & ~decidable).sum() <= 2
    conf = read(res.outputs["confidence"]).astype(int)
    want = np.rint(probs.max(0) * 100).astype(int)
    assert np.abs(conf[inner] - want[inner]).max() <= 1


def test_smooth_blend_has_no_seams_for_equivariant_model(tmp_path: Path) -> None:
    """Equivariant model + enough overlap: every chip agrees, so blending is exact too."""
    bundle = make_bundle("ConvStack", chip=48, overlap=16, arch_params={"layers": 3, "width": 8})
    src = scene_file(tmp_path / "s.tif", (150, 170), seed=9)
    [res] = geoseg.predict(src, bundle, tmp_path / "out", blend="smooth", vector=False)
    probs = _whole_image_probs(src, bundle)
    top2 = np.sort(probs, axis=0)[-2:]
    ok = (top2[1] - top2[0]) > 1e-4
    whole = np.array([1, 2, 5], dtype=np.uint8)[probs.argmax(0)]
    cls = read(res.outputs["classes"])
    # pixels nearer than the receptive field to any chip edge mix padded chips, so
    # compare the inner part and require agreement almost everywhere
    agree = (cls == whole)[3:-3, 3:-3][ok[3:-3, 3:-3]]
    assert agree.mean() > 0.995


# -- 5. nodata end to end ------------------------------------------------------------


def _nodata_cases(tmp_path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    shape = (140, 150)
    base = structured(shape, 4, seed=11)
    hole = np.zeros(shape, dtype=bool)
    hole[30:70, 40:100] = True
    hole[:, :12] = True
    cases = {}
    u16 = (base * 20000 + 1).astype("uint16")
    d = u16.copy()
    d[:, hole] = 0
    cases["nodata"] = (write_raster(tmp_path / "nodata.tif", d, nodata=0), hole)
    cases["alpha"] = (
        write_raster(tmp_path / "alpha.tif", u16, alpha=np.where(hole, 0, 65535)),
        hole,
    )
    cases["mask"] = (write_raster(tmp_path / "mask.tif", u16, mask=~hole), hole)
    f = base.astype("float32")
    f[2, hole] = np.nan  # NaN in one band only: the pixel is still unusable
    cases["nan"] = (write_raster(tmp_path / "nan.tif", f), hole)
    cases["nan_nodata"] = (write_raster(tmp_path / "nann.tif", f, nodata=float("nan")), hole)
    return cases


@pytest.mark.parametrize("kind", ["nodata", "alpha", "mask", "nan", "nan_nodata"])
def test_nodata_is_carried_end_to_end(
    tmp_path: Path, kind: str, conv_bundle: geoseg.ModelBundle
) -> None:
    src, hole = _nodata_cases(tmp_path)[kind]
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", confidence=True)
    cls = read(res.outputs["classes"])
    conf = read(res.outputs["confidence"])
    assert (cls[hole] == 255).all() and (conf[hole] == 255).all()
    assert (cls[~hole] != 255).all() and (conf[~hole] <= 100).all()
    import geopandas as gpd
    from shapely.geometry import box

    gdf = gpd.read_file(res.outputs["vector"], layer=data_layer(res.outputs["vector"]))
    with rasterio.open(src) as ds:
        t = ds.transform
    x0, y0 = t @ (45, 35)
    x1, y1 = t @ (95, 65)
    inside_hole = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    assert gdf.geometry.intersection(inside_hole).area.sum() == 0.0


def test_nodata_pixels_do_not_leak_into_neighbours(tmp_path: Path) -> None:
    """Weight 0 in blending: invalid pixels never influence valid ones' blending weights."""
    bundle = make_bundle("Pointwise", chip=32, overlap=8)
    base = (structured((90, 90), 4, seed=2) * 20000 + 1).astype("uint16")
    holed = base.copy()
    holed[:, 40:50, :] = 0
    a = write_raster(tmp_path / "a.tif", base, nodata=0)
    b = write_raster(tmp_path / "b.tif", holed, nodata=0)
    norm = {"type": "fixed", "mean": [0.0] * 4, "std": [20000.0] * 4}
    bundle = make_bundle("Pointwise", chip=32, overlap=8, normalization=norm)
    [ra] = geoseg.predict(a, bundle, tmp_path / "oa", vector=False, confidence=True)
    [rb] = geoseg.predict(b, bundle, tmp_path / "ob", vector=False, confidence=True)
    keep = np.ones((90, 90), dtype=bool)
    keep[40:50] = False
    # a per-pixel model: valid pixels get the same class with or without the hole
    assert np.array_equal(read(ra.outputs["classes"])[keep], read(rb.outputs["classes"])[keep])


# -- 8. inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_input_dtypes(tmp_path: Path, dtype: str, conv_bundle: geoseg.ModelBundle) -> None:
    src = scene_file(tmp_path / "s.tif", (120, 110), dtype=dtype)
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", vector=False)
    cls = read(res.outputs["classes"])
    assert cls.shape == (120, 110) and (cls != 255).all()


def test_odd_size_and_scene_smaller_than_chip(tmp_path: Path) -> None:
    bundle = make_bundle("ConvStack", chip=256, overlap=32)
    odd = scene_file(tmp_path / "odd.tif", (1001, 777), dtype="uint8")
    small = scene_file(tmp_path / "small.tif", (37, 53), dtype="uint8")
    r1, r2 = geoseg.predict([odd, small], bundle, tmp_path / "out", vector=False)
    assert read(r1.outputs["classes"]).shape == (1001, 777)
    small_cls = read(r2.outputs["classes"])
    assert small_cls.shape == (37, 53) and (small_cls != 255).all()
    assert r2.record["chips_total"] == 1


def test_vrt_and_cog_inputs_match_geotiff(tmp_path: Path, conv_bundle: geoseg.ModelBundle) -> None:
    from rasterio.shutil import copy as rio_copy

    src = scene_file(tmp_path / "s.tif", (130, 120))
    rio_copy(src, tmp_path / "s_cog.tif", driver="COG")
    vrt = tmp_path / "s_vrt.vrt"
    with rasterio.open(src) as ds:
        from rasterio.vrt import WarpedVRT  # noqa: F401  (a plain VRT via gdal_translate-like copy)

        rio_copy(ds, vrt, driver="VRT")
    results = geoseg.predict(
        [src, tmp_path / "s_cog.tif", vrt], conv_bundle, tmp_path / "out", vector=False
    )
    ref = read(results[0].outputs["classes"])
    for r in results[1:]:
        assert np.array_equal(read(r.outputs["classes"]), ref)


def test_band_selection_by_index_and_name(tmp_path: Path) -> None:
    names = ["blue", "green", "red", "nir", "swir"]
    data = (structured((100, 100), 5, seed=4) * 1000).astype("uint16")
    src = write_raster(tmp_path / "s.tif", data, descriptions=names)
    bundle = make_bundle(
        "ConvStack", bands=4, band_names=["red", "green", "blue", "nir"], chip=64, overlap=16
    )
    [auto] = geoseg.predict(src, bundle, tmp_path / "auto", vector=False)  # matched by name
    [byname] = geoseg.predict(
        src, bundle, tmp_path / "name", bands=["red", "green", "blue", "nir"], vector=False
    )
    [byidx] = geoseg.predict(src, bundle, tmp_path / "idx", bands=[3, 2, 1, 4], vector=False)
    [wrong] = geoseg.predict(src, bundle, tmp_path / "wrong", bands=[1, 2, 3, 4], vector=False)
    ref = read(byidx.outputs["classes"])
    assert np.array_equal(read(auto.outputs["classes"]), ref)
    assert np.array_equal(read(byname.outputs["classes"]), ref)
    assert not np.array_equal(read(wrong.outputs["classes"]), ref)
    assert auto.record["scene"]["bands"] == [3, 2, 1, 4]


def test_run_record_contents(tmp_path: Path, conv_bundle: geoseg.ModelBundle) -> None:
    src = scene_file(tmp_path / "s.tif", (100, 100))
    [res] = geoseg.predict(src, conv_bundle, tmp_path / "out", confidence=True)
    rec = json.loads(Path(res.outputs["run"]).read_text())
    assert rec["bundle"]["sha256"] == conv_bundle.sha256
    assert {"geoseg", "torch", "rasterio", "gdal"} <= set(rec["versions"])
    assert rec["parameters"]["chip"] == 64 and rec["parameters"]["blend"] == "smooth"
    assert {"inference", "cog", "vectorize", "total"} <= set(rec["timings_s"])
    assert rec["peak_rss_mb"] > 0
    assert set(rec["outputs"]) == {"classes", "confidence", "vector", "run"}
    assert all(Path(p).exists() for p in rec["outputs"].values())


def test_several_scenes_by_glob(tmp_path: Path, conv_bundle: geoseg.ModelBundle) -> None:
    for i in range(3):
        scene_file(tmp_path / f"scene{i}.tif", (70, 80), seed=i)
    results = geoseg.predict(
        str(tmp_path / "scene*.tif"), conv_bundle, tmp_path / "out", vector=False
    )
    assert [Path(r.scene).name for r in results] == ["scene0.tif", "scene1.tif", "scene2.tif"]


def test_four_byte_bands_with_nodata_and_implicit_alpha_predict_quietly(tmp_path: Path) -> None:
    # 4 uint8 bands + a nodata value, photometric left to GDAL (RGB + alpha): GDAL
    # warns that the nodata value shadows the alpha; a predict must not surface that.
    # Many small blocks on 8 threads: the warning filter must hold when block
    # threads read masks at once (catch_warnings is process-wide, not per thread;
    # this failed two runs in three before the mask reads took a lock).
    import warnings

    from geoseg.engine.local import LocalEngine

    src = tmp_path / "rgba.tif"
    data = np.full((4, 512, 512), 120, dtype=np.uint8)
    data[:, :10] = 0
    with rasterio.open(
        src, "w", driver="GTiff", width=512, height=512, count=4, dtype="uint8", nodata=0,
        crs="EPSG:32612", transform=Affine(30, 0, 0, 0, -30, 0),
    ) as ds:  # fmt: skip
        ds.write(data)
    for i in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            [res] = geoseg.predict(src, make_bundle("Pointwise", chip=32, overlap=0),
                                   tmp_path / f"o{i}", vector=False, bands=[1, 2, 3, 4],
                                   block=64, engine=LocalEngine(threads=8))  # fmt: skip
    assert (read(res.outputs["classes"])[:10] == 255).all()
