"""Training labels on an image's pixel grid: class rasters or vector polygons.

Labels come in as class *ids* of a scheme (``catalogs/*.yaml``) and leave as
model class *indexes* (``0 .. n_classes - 1``, the scheme's order) with
:data:`IGNORE` wherever there is no usable label: outside the polygons, label
nodata, ids not in the scheme, and pixels the image itself marks invalid. Loss
and metrics skip :data:`IGNORE`, so sparse polygon labels train correctly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import (
    InputError,
    RasterReadError,
)
from geoseg.errors import (
    LabelError as LabelError,  # re-exported: defined in errors since 0.2
)
from geoseg.io.scene import Scene
from geoseg.schemes import ClassInfo

IGNORE = 255
"""Label index of pixels that neither the loss nor the metrics count."""
NO_LABEL = -1
"""Class id of unlabelled pixels before mapping to indexes."""
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet", ".zip")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, for the training record."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_vector(path: str | os.PathLike[str]) -> bool:
    """Whether a label path is a vector file (by suffix)."""
    return os.fspath(path).lower().endswith(VECTOR_SUFFIXES)


def _scene_bounds(scene: Scene) -> tuple[float, float, float, float]:
    from rasterio.transform import array_bounds

    rows, cols = scene.shape
    b = array_bounds(rows, cols, scene.transform)
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _no_overlap(labels: str, scene: Scene) -> LabelError:
    return LabelError(
        f"labels {labels} do not overlap image {scene.path} (no labelled pixel falls on it); "
        "check that they cover the same area and that both have the right CRS"
    )


def raster_label_ids(path: str, scene: Scene) -> NDArray[np.int32]:
    """Class ids of a label raster on the scene grid (nearest), :data:`NO_LABEL` where none.

    Grids that differ (CRS, transform or shape) are reprojected with
    :func:`rasterio.warp.reproject` (nearest neighbour: class ids must never be
    averaged).
    """
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.warp import Resampling, reproject, transform_bounds

    if not os.path.exists(path):
        raise RasterReadError(f"labels {path} do not exist; check the path")
    try:
        with rasterio.open(path) as ds:
            same = (
                ds.crs == scene.crs
                and ds.transform.almost_equals(scene.transform)
                and (ds.height, ds.width) == scene.shape
            )
            if ds.crs is not None and scene.crs is not None:
                lb = transform_bounds(ds.crs, scene.crs, *ds.bounds)
                if not _overlaps(lb, _scene_bounds(scene)):
                    raise _no_overlap(path, scene)
            src = ds.read(1, masked=True)
            data = np.asarray(src.data, dtype=np.int32)
            data[np.ma.getmaskarray(src)] = NO_LABEL
            if same:
                return data
            out = np.full(scene.shape, NO_LABEL, dtype=np.int32)
            reproject(
                data,
                out,
                src_transform=ds.transform,
                src_crs=ds.crs or scene.crs,
                dst_transform=scene.transform,
                dst_crs=scene.crs,
                src_nodata=NO_LABEL,
                dst_nodata=NO_LABEL,
                resampling=Resampling.nearest,
            )
            return out
    except RasterioIOError as err:
        raise RasterReadError(
            f"cannot read labels {path} ({str(err).splitlines()[0]}); is it a raster?"
        ) from err


UNKNOWN_NAME = -2
"""Class id given to a polygon whose class name is not in the scheme."""


def read_label_polygons(
    path: str,
    crs: Any,
    field: str | None,
    classes: Sequence[ClassInfo],
    *,
    field_option: str = "label_field",
) -> list[tuple[Any, int]]:
    """Polygons of a vector file in ``crs``, each with its class id.

    The attribute ``field`` holds class ids (integers) or class names of the scheme
    (case-insensitive); a name not in the scheme gets :data:`UNKNOWN_NAME`, a null value
    leaves the polygon out. ``field_option`` names the option that sets ``field`` in
    error messages. Polygons are reprojected to ``crs`` when both CRSs are known.
    """
    import geopandas as gpd

    if not os.path.exists(path):
        raise InputError(f"labels {path} do not exist; check the path")
    try:
        df = gpd.read_file(path)
    except Exception as err:  # pyogrio raises its own DataSourceError types
        raise InputError(
            f"cannot read labels {path} as vector data ({str(err).splitlines()[0]})"
        ) from err
    columns = [c for c in df.columns if c != df.geometry.name]
    if field is None or field not in df.columns:
        what = f"no {field_option} given" if field is None else f"no attribute '{field}'"
        raise LabelError(
            f"{what} for polygons {path}; set {field_option} to the attribute holding the class "
            f"(available: {', '.join(columns) or 'none'})"
        )
    if df.crs is not None and crs is not None and df.crs != crs:
        df = df.to_crs(crs)
    df = df[df.geometry.notna() & ~df.geometry.is_empty]
    by_name = {c.name.lower(): c.id for c in classes}
    shapes = []
    for geom, v in zip(df.geometry, df[field], strict=True):
        if isinstance(v, str) and not v.strip().lstrip("-").isdigit():
            shapes.append((geom, by_name.get(v.strip().lower(), UNKNOWN_NAME)))
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        else:
            shapes.append((geom, int(v)))
    return shapes


def vector_label_ids(
    path: str, scene: Scene, field: str | None, classes: Sequence[ClassInfo]
) -> NDArray[np.int32]:
    """Rasterize polygons' class attribute onto the scene grid; :data:`NO_LABEL` outside.

    See :func:`read_label_polygons` for the attribute; a pixel takes the class of the
    polygon covering its centre (later features win where polygons overlap).
    """
    import shapely
    from rasterio.features import rasterize

    shapes = read_label_polygons(path, scene.crs, field, classes)
    if not shapes:
        raise _no_overlap(path, scene)
    bounds = shapely.total_bounds([g for g, _ in shapes])
    if not _overlaps(bounds, _scene_bounds(scene)):
        raise _no_overlap(path, scene)
    out: NDArray[np.int32] = rasterize(
        shapes, out_shape=scene.shape, transform=scene.transform, fill=NO_LABEL, dtype="int32"
    )
    return out


def ids_to_index(ids: NDArray[np.int32], classes: Sequence[ClassInfo]) -> NDArray[np.uint8]:
    """Map class ids to model indexes (scheme order); everything else to :data:`IGNORE`.

    Examples
    --------
    >>> from geoseg.schemes import load_scheme
    >>> ids_to_index(np.array([[1, 8, 0, -1, 9]], np.int32), load_scheme("nlcd8")).tolist()
    [[0, 7, 255, 255, 255]]
    """
    out = np.full(ids.shape, IGNORE, dtype=np.uint8)
    for index, c in enumerate(classes):
        out[ids == c.id] = index
    return out


def read_labels(
    path: str,
    scene: Scene,
    classes: Sequence[ClassInfo],
    *,
    field: str | None = None,
    valid: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Label indexes on the scene grid; :data:`IGNORE` where unusable or ``~valid``.

    Raises
    ------
    LabelError
        Labels do not overlap the image, or a vector file lacks ``field``.
    """
    ids = (
        vector_label_ids(path, scene, field, classes)
        if is_vector(path)
        else raster_label_ids(path, scene)
    )
    if not (ids != NO_LABEL).any():
        raise _no_overlap(path, scene)
    index = ids_to_index(ids, classes)
    if valid is not None:
        index[~valid] = IGNORE
    return index


def rasterize_mask(path: str, scene: Scene) -> NDArray[np.bool_]:
    """Pixels (by centre) inside any polygon of a vector file, on the scene grid."""
    import geopandas as gpd
    from rasterio.features import geometry_mask

    if not os.path.exists(path):
        raise InputError(f"validation polygon file {path} does not exist; check split.polygon")
    df: Any = gpd.read_file(path)
    if df.crs is not None and scene.crs is not None and df.crs != scene.crs:
        df = df.to_crs(scene.crs)
    geoms = [g for g in df.geometry if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(scene.shape, dtype=bool)
    inside: NDArray[np.bool_] = geometry_mask(
        geoms, out_shape=scene.shape, transform=scene.transform, invert=True
    )
    return inside
