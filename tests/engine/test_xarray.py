from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import geoseg
from tests.common import make_bundle, read, scene_file

rioxarray = pytest.importorskip("rioxarray")
dask = pytest.importorskip("dask")


@pytest.mark.parametrize(
    ("blend", "block", "backend"),
    [("smooth", 100, "auto"), ("crop", 1000, "auto"), ("smooth", 100, "torch")],
)
def test_lazy_dataarray_equals_predict(
    tmp_path: Path, blend: str, block: int, backend: str
) -> None:
    src = scene_file(tmp_path / "s.tif", (230, 210), nodata=0, seed=4)
    bundle = make_bundle(
        "Unet",
        encoder="resnet18",
        chip=96,
        overlap=32,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )
    [ref] = geoseg.predict(
        src,
        bundle,
        tmp_path / "out",
        blend=blend,
        confidence=True,
        vector=False,
        backend=backend,
    )
    da = rioxarray.open_rasterio(src, chunks={"x": 64, "y": 64})
    ds = geoseg.predict_xarray(
        da, bundle, blend=blend, block=block, confidence=True, backend=backend
    )
    assert isinstance(ds["classes"].data, dask.array.Array)  # lazy until computed
    cls = ds["classes"].compute()
    assert np.array_equal(cls.values, read(ref.outputs["classes"]))
    assert np.abs(ds["confidence"].values.astype(int) - read(ref.outputs["confidence"])).max() <= 1
    assert cls.rio.crs == da.rio.crs
    assert cls.rio.transform() == da.rio.transform()
    window = ds["classes"][50:120, 30:90].values  # slicing computes only what it needs
    assert np.array_equal(window, cls.values[50:120, 30:90])


def test_band_selection_and_errors(tmp_path: Path) -> None:
    src = scene_file(tmp_path / "s.tif", (80, 90), bands=5)
    da = rioxarray.open_rasterio(src)
    bundle = make_bundle(chip=32, overlap=8)
    with pytest.raises(geoseg.InputError, match="expects 4"):
        geoseg.predict_xarray(da, bundle)
    with pytest.raises(geoseg.InputError, match="must be one of auto, torch, onnxruntime"):
        geoseg.predict_xarray(da, bundle, bands=[0, 1, 2, 3], backend="tensorrt")
    out = geoseg.predict_xarray(da, bundle, bands=[0, 1, 2, 3])
    assert out.shape == (80, 90) and out.dtype == np.uint8


def test_plain_dataarray_is_lazy_and_a_slice_runs_only_its_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geoseg.engine.xarray as xp

    src = scene_file(tmp_path / "s.tif", (230, 210), nodata=0, seed=5)
    bundle = make_bundle(chip=64, overlap=16)
    ran: list[tuple[int, int]] = []
    task = xp._block_task

    def counting(job, block, *args):  # type: ignore[no-untyped-def]
        ran.append(block.index)
        return task(job, block, *args)

    monkeypatch.setattr(xp, "_block_task", counting)
    da = rioxarray.open_rasterio(src, chunks={"x": 64, "y": 64})
    classes = geoseg.predict_xarray(da, bundle, block=48)
    assert ran == []  # nothing has run yet
    assert isinstance(classes.data, dask.array.Array) and classes.dims == ("y", "x")
    assert classes.rio.crs == da.rio.crs and classes.rio.transform() == da.rio.transform()
    corner = classes[:40, :40].values
    corner_blocks = set(ran)
    whole = classes.values
    assert np.array_equal(corner, whole[:40, :40])
    total = len(set(ran))
    assert total > 9 and len(corner_blocks) <= 4, (len(corner_blocks), total)


def test_a_reflectance_bundle_reads_the_sensor_like_predict(tmp_path: Path) -> None:
    """``sensor=`` gives a reflectance bundle the preset's scale and offset, as ``--sensor``."""
    from geoseg.errors import InputError
    from tests.common import reflectance_bundle

    bundle, product = reflectance_bundle(tmp_path)
    [ref] = geoseg.predict(
        str(product), bundle, tmp_path / "out", bands=(1, 2, 3, 4), sensor="landsat8-c2l2",
        vector=False, allow_domain_shift=True,
    )  # fmt: skip
    da = rioxarray.open_rasterio(product, chunks={"x": 512, "y": 512})
    classes = geoseg.predict_xarray(da, bundle, sensor="landsat8-c2l2").compute()
    assert np.array_equal(classes.values, read(ref.outputs["classes"]))
    with pytest.raises(InputError, match="trained on reflectance .* pass sensor="):
        geoseg.predict_xarray(da, bundle)
