"""Canonical test objects: seeded synthetic rasters and tiny bundles, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

import geoseg
from geoseg.models.bundle import ModelBundle

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
ZION = DATA / "zion" / "landsat8_2015-08-18_b2345.tif"
BAHAMAS = DATA / "bahamas" / "RGB.byte.tif"
PUCALLPA = DATA / "pucallpa" / "2020.tif"

UTM = "EPSG:32612"
DEFAULT_TRANSFORM = Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4150000.0)

CLASSES3 = [
    {"id": 1, "name": "water", "color": "#1f78b4"},
    {"id": 2, "name": "forest", "color": "#33a02c"},
    {"id": 5, "name": "bare", "color": "#b15928"},
]


def structured(shape: tuple[int, int], bands: int, seed: int = 0) -> np.ndarray:
    """Blobby float data in [0, 1]: spatial structure so models give varied classes."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    out = np.empty((bands, rows, cols), dtype=np.float64)
    for b in range(bands):
        coarse = rng.random((rows // 16 + 2, cols // 16 + 2))
        up = np.kron(coarse, np.ones((16, 16)))[:rows, :cols]
        out[b] = 0.7 * up + 0.3 * rng.random((rows, cols))
    return out


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine = DEFAULT_TRANSFORM,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    alpha: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    **profile: Any,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a tiled GeoTIFF."""
    count = data.shape[0] + (1 if alpha is not None else 0)
    prof = {
        "driver": "GTiff",
        "dtype": str(data.dtype),
        "count": count,
        "height": data.shape[1],
        "width": data.shape[2],
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
        "photometric": "MINISBLACK",
        **profile,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **prof) as ds:
        ds.write(data, list(range(1, data.shape[0] + 1)))
        if alpha is not None:
            ds.write(alpha.astype(data.dtype), count)
            ci = list(ds.colorinterp)
            ci[-1] = rasterio.enums.ColorInterp.alpha
            ds.colorinterp = ci
        if descriptions:
            for i, d in enumerate(descriptions, 1):
                ds.set_band_description(i, d)
        if mask is not None:
            ds.write_mask(np.where(mask, 255, 0).astype("uint8"))
    return path


def scene_file(
    path: Path,
    shape: tuple[int, int] = (300, 280),
    *,
    bands: int = 4,
    dtype: str = "uint16",
    seed: int = 0,
    **kw: Any,
) -> Path:
    """A structured synthetic scene scaled to ``dtype``."""
    data = structured(shape, bands, seed)
    if dtype == "uint8":
        arr = (data * 250).astype("uint8")
    elif dtype == "uint16":
        arr = (data * 20000 + 5000).astype("uint16")
    elif dtype == "int16":
        arr = (data * 20000 - 8000).astype("int16")
    else:
        arr = data.astype(dtype)
    return write_raster(path, arr, **kw)


def make_bundle(
    arch: str = "ConvStack",
    *,
    bands: int = 4,
    seed: int = 0,
    chip: int = 64,
    overlap: int = 16,
    normalization: dict[str, Any] | None = None,
    band_names: list[str] | None = None,
    **kw: Any,
) -> ModelBundle:
    """A small bundle with seeded random weights."""
    import torch

    torch.manual_seed(seed)
    params = kw.pop("arch_params", {"layers": 3, "width": 8} if arch == "ConvStack" else {})
    return geoseg.ModelBundle.create(
        name=f"test-{arch.lower()}",
        architecture=arch,
        arch_params=params,
        bands=band_names or [f"b{i + 1}" for i in range(bands)],
        classes=CLASSES3,
        normalization=normalization or {"type": "percentile", "low": 1, "high": 99},
        chip=chip,
        overlap=overlap,
        **kw,
    )


def read(path: str | Path, band: int = 1) -> np.ndarray:
    """Read one band."""
    with rasterio.open(path) as ds:
        return ds.read(band)


def worker_settings() -> tuple[bool, str]:
    """A Dask worker's profiler switch and tick interval (run with ``client.run``)."""
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled")), str(
        dask.config.get("distributed.admin.tick.interval")
    )


def dead_pid() -> int:
    """The pid of a process that has just exited (what an interrupted run leaves in names)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def crop_raster(src: Path, dst: Path, window: Any, **profile: Any) -> Path:
    """A window of a real raster as its own GeoTIFF, band names (descriptions) kept."""
    with rasterio.open(src) as ds:
        prof = {
            **ds.profile,
            "width": int(window.width),
            "height": int(window.height),
            "transform": ds.window_transform(window),
            **profile,
        }
        if not prof.get("tiled", True):
            prof.pop("blockxsize", None)
            prof.pop("blockysize", None)
        with rasterio.open(dst, "w", **prof) as out:
            out.write(ds.read(window=window))
            out.descriptions = ds.descriptions
    return dst


def reflectance_bundle(tmp: Path) -> tuple[Any, Path]:
    """The landcover bundle re-described as trained on surface reflectance with fixed
    statistics, and the Zion scene copied under a Landsat-8 C2 L2 product name."""
    import shutil

    from geoseg.models.bundle import load_bundle
    from geoseg.sensors.domain import InputDomain

    sr = InputDomain(("blue", "green", "red", "nir"), quantity="sr", resolution_m=(10, 60))
    spec = {"type": "fixed", "mean": [0.05, 0.08, 0.1, 0.3], "std": [0.03, 0.03, 0.05, 0.1]}
    bundle = load_bundle("landcover-nlcd8").with_meta(domain=sr.to_dict(), normalization=spec)
    product = tmp / "LC08_L2SP_038034_20150818_20200908_02_T1_SR_stack.tif"
    shutil.copyfile(ZION, product)
    return bundle, product
