"""Reading for ``geoseg eval``: open rasters, and truth class ids window by window.

Truth comes from a raster (read on the prediction's grid, maybe through a warped
view) or from polygons rasterized per window; both answer ``read(window)`` with
class ids and where they are valid. Split from :mod:`geoseg.train.evaluate`,
which counts what these return.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import InputError, RasterReadError
from geoseg.io.scene import read_masks
from geoseg.train.labels import NO_LABEL


def open_raster(path: str | os.PathLike[str], what: str) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    text = os.fspath(path)
    if not os.path.exists(text) and "://" not in text and not text.startswith("/vsi"):
        raise RasterReadError(f"{what} raster {text} does not exist; check the path")
    try:
        return rasterio.open(text)
    except RasterioIOError as err:
        raise RasterReadError(
            f"cannot open {what} raster {text} ({str(err).splitlines()[0]}); is it a GeoTIFF?"
        ) from err


def valid_mask(ds: Any, band: int, data: NDArray[Any], window: Any) -> NDArray[np.bool_]:
    ok: NDArray[np.bool_] = read_masks(ds, band, window=window) > 0
    if ds.nodata is not None and not math.isnan(ds.nodata):
        ok &= data != ds.nodata
    return ok


def check_class_dtype(ds: Any, what: str) -> None:
    if ds.dtypes[0] not in ("uint8", "int8", "uint16", "int16", "int32", "uint32"):
        raise InputError(
            f"{what} raster {ds.name} holds {ds.dtypes[0]} values, not class ids; pass a class "
            "raster (integers, e.g. a geoseg *_classes.tif)"
        )


class RasterTruth:
    """Truth class ids and validity of one window, from a raster (maybe a warped view)."""

    def __init__(self, ds: Any, nodata: float | None, warped: bool) -> None:
        self.ds, self.nodata, self.warped, self.name = ds, nodata, warped, ds.name

    def read(self, window: Any) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        t = self.ds.read(1, window=window)
        if not self.warped:
            return t, valid_mask(self.ds, 1, t, window)
        ok = self.ds.read(self.ds.count, window=window) > 0  # the alpha the warper added
        if self.nodata is not None and not math.isnan(self.nodata):
            ok &= t != self.nodata
        return t, ok


class PolygonTruth:
    """Truth class ids and validity of one window, rasterized from polygons on the fly."""

    def __init__(self, shapes: list[tuple[Any, int]], transform: Any, name: str) -> None:
        import shapely

        self.geoms = [g for g, _ in shapes]
        self.ids = [i for _, i in shapes]
        self.tree = shapely.STRtree(self.geoms)
        self.transform, self.name = transform, name

    def read(self, window: Any) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        import shapely
        from rasterio.features import rasterize
        from rasterio.windows import bounds, transform

        shape = (int(window.height), int(window.width))
        # sorted: where polygons overlap, the later feature wins, as in training labels
        hits = sorted(self.tree.query(shapely.box(*bounds(window, self.transform))))
        if not hits:
            return np.full(shape, NO_LABEL, np.int32), np.zeros(shape, bool)
        t = rasterize(
            [(self.geoms[i], self.ids[i]) for i in hits],
            out_shape=shape,
            transform=transform(window, self.transform),
            fill=NO_LABEL,
            dtype="int32",
        )
        return t, t != NO_LABEL


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
