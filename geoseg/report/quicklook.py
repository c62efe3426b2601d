"""Quicklook PNGs: a class raster (and its scene) with a legend of class names.

Rasters are read decimated (GDAL uses the COG overviews), so a quicklook of
any scene size costs a few megabytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling

from geoseg.atomic import atomic_path
from geoseg.errors import InputError, RasterReadError
from geoseg.io.classraster import SchemeSource, open_class_raster, read_scheme
from geoseg.io.scene import read_masks
from geoseg.outfile import check_output_file, make_parent
from geoseg.schemes import NODATA_CLASS, ClassInfo


def _decimated_shape(shape: tuple[int, int], max_size: int) -> tuple[int, int]:
    f = max(1.0, max(shape) / max_size)
    return max(1, round(shape[0] / f)), max(1, round(shape[1] / f))


def read_classes(path: str) -> tuple[NDArray[np.uint8], tuple[ClassInfo, ...]]:
    """Class ids (full resolution) and the class scheme stored in the raster."""
    with rasterio.open(path) as ds:
        return ds.read(1), read_scheme(ds)


classes_of = read_scheme
"""Old name of :func:`geoseg.io.classraster.read_scheme` (the scheme of an open class raster)."""


def _true_color(scene: str, rgb_bands: tuple[int, ...] | None, shape: tuple[int, int]) -> Any:
    try:
        return _read_true_color(scene, rgb_bands, shape)
    except rasterio.errors.RasterioIOError as err:
        raise RasterReadError(f"cannot read scene {scene}: {err}") from err


def _read_true_color(
    scene: str, rgb_bands: tuple[int, ...] | None, shape: tuple[int, int]
) -> NDArray[np.float64]:
    with rasterio.open(scene) as ds:
        bad = [b for b in rgb_bands or () if not 1 <= b <= ds.count]
        if bad or (rgb_bands is not None and len(rgb_bands) != 3):
            raise InputError(
                f"--bands takes three band numbers of {scene} (1..{ds.count}) for red, green, "
                f"blue, e.g. --bands 3,2,1; got {','.join(str(b) for b in rgb_bands or ())}"
            )
        if rgb_bands is None:
            names = [(d or "").lower() for d in ds.descriptions]
            if all(n in names for n in ("red", "green", "blue")):
                rgb_bands = tuple(names.index(n) + 1 for n in ("red", "green", "blue"))
            elif ds.count >= 3:
                rgb_bands = (3, 2, 1) if ds.count >= 4 else (1, 2, 3)
            else:
                rgb_bands = (1, 1, 1)
        data = ds.read(
            list(rgb_bands), out_shape=(3, *shape), resampling=Resampling.average
        ).astype(np.float64)
        valid = read_masks(ds, list(rgb_bands), out_shape=(3, *shape)).all(axis=0)
    out = np.zeros((*shape, 4))
    if valid.any():
        for i in range(3):
            lo, hi = np.percentile(data[i][valid], [2, 98])
            out[..., i] = np.clip((data[i] - lo) / max(hi - lo, 1e-9), 0, 1)
    out[..., 3] = valid
    return out


def quicklook(
    classes: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    scene: str | None = None,
    rgb_bands: tuple[int, ...] | None = None,
    max_size: int = 900,
    title: str | None = None,
    scheme: SchemeSource | None = None,
) -> Path:
    """Write a PNG of ``classes`` (beside a true-color ``scene`` if given) with a legend.

    Colors and legend names come from ``scheme`` (a catalog name, YAML path or
    classes), else the raster's own scheme, else ``class_<id>`` with generated colors.

    Raises
    ------
    RasterReadError
        A raster cannot be read.
    InputError
        Not a uint8 class raster, an unreadable ``GEOSEG_CLASSES`` tag, an unknown scheme.
    """
    import matplotlib

    from geoseg.io.writer import output_error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = os.fspath(classes)
    target = _check_target(out, max_size)
    try:
        with open_class_raster(path, command="quicklook", uint8=True, hint=_SCENE_HINT) as ds:
            shape = _decimated_shape((ds.height, ds.width), max_size)
            ids = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
            scheme = read_scheme(ds, scheme)
    except rasterio.errors.RasterioIOError as err:
        raise RasterReadError(f"cannot read class raster {path}: {err}") from err
    present = {int(v) for v in np.unique(ids)} - {NODATA_CLASS}
    if not scheme:
        scheme = tuple(
            ClassInfo(i, f"class_{i}", "#{:02x}{:02x}{:02x}".format(*_auto_color(i)))
            for i in sorted(present)
        )
    lut = np.zeros((256, 4))
    for c in scheme:
        lut[c.id] = (*(v / 255 for v in c.rgb), 1.0)
    panels = [("classes", lut[ids])]
    if scene:
        panels.insert(0, ("scene (true color)", _true_color(scene, rgb_bands, shape)))
    width = 5.0 * len(panels) * shape[1] / max(shape) + 2.5
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width, 5.5 * shape[0] / max(shape) + 0.8), squeeze=False
    )
    for ax, (name, img) in zip(axes[0], panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    handles = [
        Patch(facecolor=c.color, edgecolor="#555555", label=f"{c.id} {c.name}")
        for c in scheme
        if c.id in present
    ]
    fig.legend(handles=handles, loc="center right", fontsize=9, frameon=False)
    fig.suptitle(title or Path(path).name, fontsize=11)
    fig.subplots_adjust(left=0.01, right=1 - 2.3 / width, top=0.9, bottom=0.02, wspace=0.03)
    try:
        make_parent(target)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    except OSError as err:
        raise output_error(target, err) from err
    finally:
        plt.close(fig)
    return target


def _check_target(out: str | os.PathLike[str], max_size: int) -> Path:
    """The PNG path, checked before anything is read or drawn."""
    target = Path(out)
    if target.suffix.lower() != ".png":
        raise InputError(f"quicklook output must be a .png file, got {target}")
    if not 16 <= max_size <= 20_000:
        raise InputError(f"--max-size must be in 16..20000 pixels, got {max_size}")
    return check_output_file(target, overwrite=True)


_SCENE_HINT = "; pass the scene with --scene to show it beside the classes"


def _auto_color(i: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(i)
    r, g, b = (int(v) for v in rng.integers(40, 230, size=3))
    return r, g, b
