"""Open a raster as a :class:`Scene`: band selection, georeferencing, valid-pixel mask.

A ``Scene`` is a small, picklable description of one input raster; pixels are
read window by window with :meth:`Scene.read`, so nothing here holds a whole
scene in memory. Each thread (or Dask worker) keeps its own dataset handle,
because a GDAL dataset must not be shared between threads.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NodataShadowWarning, RasterioIOError

from geoseg.errors import RasterReadError, SceneError, silenced
from geoseg.grid.windows import PixelWindow
from geoseg.io.masks import MaskSource, MaskSpec

SUPPORTED_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")

_local = threading.local()


def _dataset(path: str) -> Any:
    """This thread's open handle on ``path``."""
    cache: dict[str, Any] = getattr(_local, "datasets", None) or {}
    _local.datasets = cache
    ds = cache.get(path)
    if ds is None or ds.closed:
        ds = cache[path] = rasterio.open(path)
    return ds


def close_datasets() -> None:
    """Close this thread's cached dataset handles (scenes and masks)."""
    for ds in getattr(_local, "datasets", {}).values():
        ds.close()
    _local.datasets = {}
    for src in getattr(_local, "masks", {}).values():
        src.close()
    _local.masks = {}


@dataclass(frozen=True, slots=True)
class Scene:
    """One input raster with the bands a model will see.

    Shapes are ``(rows, cols)``. ``bands`` are 1-based indexes into the file;
    ``band_names`` are their descriptions (or ``band<N>``).
    """

    path: str
    shape: tuple[int, int]
    dtype: str
    crs: Any  # rasterio.crs.CRS | None
    transform: Any  # affine.Affine
    bands: tuple[int, ...]
    band_names: tuple[str, ...]
    nodata: float | None
    has_mask: bool  # alpha band, internal mask or nodata value
    count: int = 0  # bands in the file
    alpha: int | None = None  # 1-based alpha band, also applied as a mask
    mask: MaskSpec | None = None  # a QA/cloud mask: masked pixels are nodata
    sensor: str | None = None  # the sensor preset in force (geoseg.sensors.presets)
    notes: tuple[str, ...] = ()  # what the input check found (domain warnings)

    def mask_source(self) -> MaskSource:
        """This thread's open :class:`~geoseg.io.masks.MaskSource` of :attr:`mask` on this grid."""
        assert self.mask is not None
        cache: dict[Any, MaskSource] = getattr(_local, "masks", None) or {}
        _local.masks = cache
        key = (self.mask, self.shape, tuple(self.transform), str(self.crs))
        src = cache.get(key)
        if src is None:
            src = cache[key] = self.mask.source(
                crs=self.crs, transform=self.transform, shape=self.shape
            )
        return src

    @property
    def stem(self) -> str:
        """File name without directory and extension."""
        return os.path.splitext(os.path.basename(self.path))[0]

    @property
    def is_geographic(self) -> bool:
        """Whether coordinates are in degrees."""
        return bool(self.crs is not None and self.crs.is_geographic)

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in CRS units squared (|det| of the transform)."""
        t = self.transform
        return float(abs(t.a * t.e - t.b * t.d))

    def read(
        self, window: PixelWindow, *, raw: bool = False
    ) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """Read ``window`` ``(row, col, height, width)`` as ``(bands, rows, cols)`` plus validity.

        Values are float32, or the file's own type with ``raw=True`` (a quarter
        of the memory for uint8). The window may reach past the scene (chips
        larger than the scene): those pixels are 0 and not valid, as are pixels
        GDAL masks (nodata, alpha, mask band) in any selected band and
        non-finite values; invalid pixels read as 0.
        """
        r0, c0, h, w = PixelWindow(*window)
        rows, cols = self.shape
        dtype = np.dtype(self.dtype) if raw else np.dtype(np.float32)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, rows), min(c0 + w, cols)
        inside = (rr0, cc0, rr1, cc1) == (r0, c0, r0 + h, c0 + w)
        if rr1 <= rr0 or cc1 <= cc0:
            return np.zeros((len(self.bands), h, w), dtype=dtype), np.zeros((h, w), dtype=bool)
        rio_window = PixelWindow(rr0, cc0, rr1 - rr0, cc1 - cc0).to_rasterio()
        try:
            ds = _dataset(self.path)
            arr = ds.read(list(self.bands), window=rio_window, out_dtype=dtype)
            ok = np.isfinite(arr).all(axis=0) if arr.dtype.kind == "f" else None
            if self.has_mask:
                masks = read_masks(ds, list(self.bands), window=rio_window).all(axis=0)
                ok = masks if ok is None else ok & masks
            if self.alpha is not None:  # GDAL ignores an alpha band known only from PAM
                opaque = ds.read(self.alpha, window=rio_window) > 0
                ok = opaque if ok is None else ok & opaque
            if self.mask is not None:
                clear = ~self.mask_source().read(rio_window)
                ok = clear if ok is None else ok & clear
        except RasterioIOError as err:
            raise read_error(self.path, err) from err
        if ok is None:
            ok = np.ones(arr.shape[1:], dtype=bool)
        elif not ok.all():
            arr[:, ~ok] = 0
        if inside:
            return arr, ok
        data = np.zeros((len(self.bands), h, w), dtype=dtype)
        valid = np.zeros((h, w), dtype=bool)
        inner = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
        data[(slice(None), *inner)] = arr
        valid[inner] = ok
        return data, valid


GDAL_CACHE_BYTES = 64 * 2**20
"""GDAL block cache where chips are read: a row of a wide scene's tiles, re-read by next chips."""

WRITE_CACHE_BYTES = 16 * 2**20
"""GDAL block cache in a process that only writes (a Dask client): enough for a block's tiles."""


def gdal_env(*, reads_chips: bool = True) -> Any:
    """GDAL settings for a run: a bounded block cache unless the user set one.

    GDAL's default cache is 5% of RAM per process and fills up reading a large
    scene; memory must not grow with the scene, and re-reads stay within a block.
    A process whose chips are read elsewhere (``reads_chips=False``: the client
    of a Dask run) only writes the uncompressed class raster, and a cache as big
    as a reader's would only hold written tiles: 48 MB more at 16384² than at
    4096², where the whole map fits in 16 MiB.
    """
    if "GDAL_CACHEMAX" in os.environ:
        return rasterio.Env()
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES if reads_chips else WRITE_CACHE_BYTES)


def read_masks(ds: Any, bands: Any, **kwargs: Any) -> NDArray[np.uint8]:
    """``ds.read_masks(bands, **kwargs)`` without rasterio's NodataShadowWarning.

    With a nodata value beside an alpha band GDAL's masks come from the nodata
    value (it "shadows" the alpha) and rasterio warns; geoseg applies the alpha
    band itself where it matters, so the warning tells the user nothing.

    Block threads read masks at once, and silencing a warning takes a process-wide
    lock (:func:`geoseg.errors.silenced`), so it is done only when rasterio would
    warn: the condition it checks is four bands, the fourth alpha, a nodata mask.
    """
    if not _shadows_alpha(ds):
        out: NDArray[np.uint8] = ds.read_masks(bands, **kwargs)
        return out
    with silenced(NodataShadowWarning):
        out = ds.read_masks(bands, **kwargs)
    return out


def _shadows_alpha(ds: Any) -> bool:
    return bool(
        ds.count == 4
        and ds.colorinterp[3] == ColorInterp.alpha
        and any(MaskFlags.nodata in flags for flags in ds.mask_flag_enums)
    )


def read_error(path: str, err: BaseException) -> RasterReadError:
    """The error for pixels GDAL could not read."""
    return RasterReadError(
        f"cannot read pixels of {path} ({str(err).splitlines()[0]}); the file may be "
        "truncated or corrupt — re-download or re-export it"
    )


def _band_name(ds: Any, idx: int) -> str:
    desc = ds.descriptions[idx - 1]
    return str(desc) if desc else f"band{idx}"


def _resolve_bands(ds: Any, path: str, bands: Sequence[int | str] | None) -> tuple[int, ...]:
    alpha = {i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha}
    if bands is None:
        return tuple(i for i in range(1, ds.count + 1) if i not in alpha)
    names = {_band_name(ds, i).lower(): i for i in range(1, ds.count + 1)}
    out = []
    for b in bands:
        if isinstance(b, int) or (isinstance(b, str) and b.strip().isdigit()):
            idx = int(b)
            if not 1 <= idx <= ds.count:
                raise SceneError(
                    f"band {idx} is out of range: {path} has {ds.count} bands (1..{ds.count}); "
                    "fix --bands"
                )
            out.append(idx)
        else:
            key = str(b).strip().lower()
            if key not in names:
                raise SceneError(
                    f"no band named '{b}' in {path}; its bands are "
                    f"{', '.join(_band_name(ds, i) for i in range(1, ds.count + 1))}; fix --bands"
                )
            out.append(names[key])
    return tuple(out)


def _check_transform(transform: Any, path: str) -> None:
    coeffs = (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    if not all(math.isfinite(v) for v in coeffs) or abs(transform.determinant) == 0.0:
        raise SceneError(
            f"{path} has a degenerate geotransform {tuple(coeffs)}; fix its georeferencing "
            "(gdal_edit.py -a_ullr or -a_gt)"
        )


def open_scene(
    path: str | os.PathLike[str],
    *,
    bands: Sequence[int | str] | None = None,
    allow_no_crs: bool = False,
) -> Scene:
    """Open a GDAL-readable raster as a :class:`Scene`.

    Parameters
    ----------
    path
        A GeoTIFF, COG, VRT or any path GDAL opens (``/vsicurl/...`` included).
    bands
        1-based band indexes or band descriptions, in the order the model
        expects; default: every band that is not alpha.
    allow_no_crs
        Proceed with a raster that has no CRS (outputs will have none either).

    Raises
    ------
    RasterReadError
        The file is missing or not a raster GDAL can read.
    SceneError
        No CRS, unsupported data type, bad band selection, degenerate transform.

    Examples
    --------
    >>> scene = open_scene("data/zion/landsat8_2015-08-18_b2345.tif")
    >>> scene.shape, scene.band_names
    ((1428, 1128), ('B2', 'B3', 'B4', 'B5'))
    """
    path = os.fspath(path)
    if "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
        raise RasterReadError(f"scene {path} does not exist; check the path")
    try:
        ds = rasterio.open(path)
    except RasterioIOError as err:
        raise RasterReadError(
            f"cannot open {path} as a raster ({str(err).splitlines()[0]}); "
            "is it a GeoTIFF/COG/VRT, complete and not corrupt?"
        ) from err
    with ds:
        if ds.count < 1 or ds.width < 1 or ds.height < 1:
            raise SceneError(f"{path} has no pixels or no bands; pass a raster with image data")
        if ds.crs is None and not allow_no_crs:
            raise SceneError(
                f"{path} has no CRS, so outputs could not be placed on a map; assign one "
                "(gdal_edit.py -a_srs EPSG:xxxx) or pass --allow-no-crs"
            )
        _check_transform(ds.transform, path)
        idx = _resolve_bands(ds, path, bands)
        dtypes = {ds.dtypes[i - 1] for i in idx}
        bad = dtypes - set(SUPPORTED_DTYPES)
        if bad:
            raise SceneError(
                f"{path} has bands of type {', '.join(sorted(bad))}; geoseg reads "
                f"{', '.join(SUPPORTED_DTYPES)} — convert with gdal_translate -ot"
            )
        flags = [ds.mask_flag_enums[i - 1] for i in idx]
        has_mask = any(MaskFlags.all_valid not in f for f in flags)
        return Scene(
            path=path,
            shape=(ds.height, ds.width),
            dtype=ds.dtypes[idx[0] - 1],
            crs=ds.crs,
            transform=ds.transform,
            bands=idx,
            band_names=tuple(_band_name(ds, i) for i in idx),
            nodata=ds.nodata,
            has_mask=has_mask,
            count=ds.count,
            alpha=next(
                (i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha), None
            ),
        )
