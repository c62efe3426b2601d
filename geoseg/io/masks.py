"""Cloud, shadow, snow and fill masks from a product's QA layer (or any 0/1 raster).

Three QA encodings are understood, plus plain masks:

- ``landsat-qa-pixel``: Landsat Collection 2 ``QA_PIXEL`` bits (0 fill, 1 dilated
  cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow);
- ``sentinel2-scl``: the Sentinel-2 L2A scene classification (0 no data,
  1 saturated or defective, 2 dark area / cast shadow, 3 cloud shadow, 8 and 9
  cloud of medium and high probability, 10 thin cirrus, 11 snow or ice);
- ``fmask``: Fmask codes (0 clear land, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill);
- ``binary``: any raster where non-zero means "masked";
- ``model``: a *mask bundle* (such as the shipped ``cloud``) whose classes are Fmask
  codes: ``predict`` runs it on the scene first, into ``<out>/_masks/``, and masks with
  its class raster as an ``fmask`` raster (:mod:`geoseg.pipeline.maskmodel`).

Which classes mask is a choice (:data:`DEFAULT_CLASSES`: cloud, shadow and
cirrus; fill always). A masked pixel is nodata end to end: weight 0 when
blending, class 255 in the map, no polygon. :class:`MaskSource` reads a mask
window by window on a scene's grid, warping it (nearest) when it lies on
another grid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from geoseg.errors import InputError, RasterReadError
from geoseg.grid.windows import iter_strips

MaskKind = Literal["landsat-qa-pixel", "sentinel2-scl", "fmask", "binary", "model"]
KINDS: tuple[MaskKind, ...] = ("landsat-qa-pixel", "sentinel2-scl", "fmask", "binary", "model")

CLASSES = ("cloud", "shadow", "cirrus", "snow", "fill")
"""What a QA layer can mask (``fill`` is always masked)."""

DEFAULT_CLASSES = ("cloud", "shadow", "cirrus")

_LANDSAT_BITS = {"fill": (0,), "cloud": (1, 3), "cirrus": (2,), "shadow": (4,), "snow": (5,)}
_SCL_VALUES = {
    "fill": (0, 1),
    "shadow": (2, 3),
    "cloud": (8, 9),
    "cirrus": (10,),
    "snow": (11,),
}
_FMASK_VALUES = {"fill": (255,), "shadow": (2,), "snow": (3,), "cloud": (4,)}


def parse_classes(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The mask classes of ``--mask-classes`` (comma-separated or a list); default if empty.

    >>> parse_classes("cloud, shadow,snow")
    ('cloud', 'shadow', 'snow', 'fill')
    >>> parse_classes(None)
    ('cloud', 'shadow', 'cirrus', 'fill')
    """
    items = text.split(",") if isinstance(text, str) else list(text or [])
    names = [i.strip().lower() for i in items if i.strip()] or list(DEFAULT_CLASSES)
    unknown = [n for n in names if n not in CLASSES]
    if unknown:
        raise InputError(
            f"unknown mask class {unknown[0]!r}; choose from {', '.join(CLASSES)} "
            "(e.g. --mask-classes cloud,shadow,snow)"
        )
    return tuple(dict.fromkeys([*names, "fill"]))


def detect_kind(path: str | os.PathLike[str]) -> MaskKind:
    """The encoding of a mask file, from its name (``binary`` when it names none).

    >>> detect_kind("LC09_L2SP_038034_20220818_20230405_02_T1_QA_PIXEL.TIF")
    'landsat-qa-pixel'
    >>> detect_kind("T33UUU_20230216T102101_SCL_20m.jp2"), detect_kind("x_fmask.tif")
    ('sentinel2-scl', 'fmask')
    """
    name = Path(path).name.upper()
    if "QA_PIXEL" in name:
        return "landsat-qa-pixel"
    if re.search(r"(^|_)SCL(_|\.)", name):
        return "sentinel2-scl"
    if "FMASK" in name:
        return "fmask"
    return "binary"


def masked(values: NDArray[Any], kind: MaskKind, classes: Collection[str]) -> NDArray[np.bool_]:
    """Which pixels of a QA array the chosen classes mask (``True``: masked).

    >>> masked(np.array([0, 1, 2, 3, 4, 255]), "fmask", ["cloud", "fill"]).tolist()
    [False, False, False, False, True, True]
    >>> qa = np.array([1 << 6, 1 << 3, 1 << 4, (1 << 5) | (1 << 6)], dtype=np.uint16)
    >>> masked(qa, "landsat-qa-pixel", ["cloud", "shadow"]).tolist()
    [False, True, True, False]
    """
    if kind == "binary":
        return np.asarray(values != 0)
    if kind == "model":
        raise InputError("a mask bundle must be run before its mask is read (geoseg bug)")
    out = np.zeros(values.shape, dtype=bool)
    if kind == "landsat-qa-pixel":
        v = values.astype(np.int64)
        for name in classes:
            for bit in _LANDSAT_BITS.get(name, ()):
                out |= (v >> bit) & 1 == 1
        return out
    table = _SCL_VALUES if kind == "sentinel2-scl" else _FMASK_VALUES
    codes = [c for name in classes for c in table.get(name, ())]
    return np.isin(values, codes)


def find_auto_mask(scene: str | os.PathLike[str]) -> tuple[Path, MaskKind] | None:
    """The product's own QA layer beside a scene or its band files, if there is one.

    Looked for: ``<product>_QA_PIXEL.TIF`` (Landsat Collection 2), ``*_SCL_20m.jp2`` or
    ``*_SCL_*.tif`` (Sentinel-2 L2A, also in ``../R20m``), ``<product>_fmask.tif``.
    A VRT is looked beside the band files it stacks.
    """
    path = Path(scene)
    if path.suffix.lower() == ".vrt":
        from geoseg.io.bandstack import vrt_sources

        local = sorted(
            s for s in vrt_sources(str(path)) if "://" not in s and not s.startswith("/vsi")
        )
        if local:
            path = Path(local[0])
    folder = path if path.is_dir() else path.parent
    product = re.match(r"^(L[CTEO]0\d_L\w{3}_\d{6}_\d{8}_\d{8}_\d{2}_\w{2})", path.name)
    candidates: list[Path] = []
    for pattern in ("*QA_PIXEL.TIF", "*QA_PIXEL.tif", "*_SCL_*.jp2", "*_SCL_*.tif", "*fmask.tif"):
        candidates += sorted(folder.glob(pattern))
        candidates += sorted(folder.parent.glob(f"R20m/{pattern}")) if "SCL" in pattern else []
    if product:
        candidates = [c for c in candidates if c.name.startswith(product.group(1))] or candidates
    elif not path.is_dir():
        stem = re.split(r"_(?:b\d+|SR_B\d+|B\d+)\b", path.stem, maxsplit=1, flags=re.I)[0]
        candidates = [c for c in candidates if c.name.startswith(stem)] or candidates
    return (candidates[0], detect_kind(candidates[0])) if candidates else None


@dataclass(frozen=True)
class MaskSpec:
    """A mask for a scene: the file, its encoding and the classes that mask (picklable).

    A ``model`` spec's ``path`` is the mask bundle (a name or path), until
    :mod:`geoseg.pipeline.maskmodel` has run it and made an ``fmask`` spec whose
    ``bundle`` says where the raster came from.
    """

    path: str
    kind: MaskKind
    classes: tuple[str, ...]
    bundle: str | None = None

    @classmethod
    def resolve(
        cls, mask: str, scene_path: str, classes: str | Sequence[str] | None = None
    ) -> MaskSpec:
        """``--mask PATH|auto`` for a scene (``auto``: the product's own QA layer).

        Raises
        ------
        InputError
            ``auto`` finds no QA layer, or the path does not exist.
        """
        picked = parse_classes(classes)
        if mask == "auto":
            found = find_auto_mask(scene_path)
            if found is None:
                raise InputError(
                    f"--mask auto found no QA layer beside {scene_path} (QA_PIXEL, SCL, fmask); "
                    "pass --mask PATH"
                )
            return cls(str(found[0]), found[1], picked)
        if not os.path.exists(mask) and "://" not in mask and not mask.startswith("/vsi"):
            raise InputError(f"mask {mask} does not exist; check --mask")
        return cls(mask, detect_kind(mask), picked)

    def source(self, *, crs: Any, transform: Any, shape: tuple[int, int]) -> MaskSource:
        """Open it on a scene's grid."""
        return MaskSource(
            self.path,
            crs=crs,
            transform=transform,
            shape=shape,
            kind=self.kind,
            classes=self.classes,
        )

    def record(self) -> dict[str, Any]:
        """JSON-ready, for the run record."""
        out = {"path": self.path, "kind": self.kind, "classes": list(self.classes)}
        if self.bundle is not None:
            out["bundle"] = self.bundle
        return out


def count_masked(source: MaskSource, window_pixels: int = 1 << 22) -> int:
    """Pixels of the scene grid that ``source`` masks, counted window by window."""
    shape = (source.source.height, source.source.width)
    return sum(int(source.read(w).sum()) for w in iter_strips(shape, window_pixels))


class MaskSource:
    """A mask raster read window by window on a scene's grid (warped nearest if needed).

    Pixels outside the mask raster's footprint are not masked. Use as a context manager.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        crs: Any,
        transform: Any,
        shape: tuple[int, int],
        kind: MaskKind | None = None,
        classes: Collection[str] = DEFAULT_CLASSES,
    ) -> None:
        import rasterio
        from rasterio.errors import RasterioIOError

        self.path = os.fspath(path)
        self.kind: MaskKind = kind or detect_kind(self.path)
        self.classes = tuple(dict.fromkeys([*classes, "fill"]))  # fill always masks
        try:
            self.ds = rasterio.open(self.path)
        except RasterioIOError as err:
            raise RasterReadError(f"cannot open mask {self.path} ({err})") from err
        if self.ds.crs is None and crs is not None:
            self.ds.close()
            raise InputError(
                f"mask {self.path} has no CRS, so it cannot be put on the scene's grid; "
                "assign one (gdal_edit.py -a_srs) or pass a mask on the scene's grid"
            )
        rows, cols = shape
        same = (
            self.ds.crs == crs
            and (self.ds.height, self.ds.width) == (rows, cols)
            and self.ds.transform.almost_equals(transform)
        )
        self.source: Any = self.ds
        self.warped = not same
        if self.warped:
            from rasterio.enums import Resampling
            from rasterio.vrt import WarpedVRT

            self.source = WarpedVRT(
                self.ds,
                crs=crs,
                transform=transform,
                width=cols,
                height=rows,
                resampling=Resampling.nearest,
                add_alpha=True,
            )

    def read(self, window: Any) -> NDArray[np.bool_]:
        """``True`` where the mask removes a pixel of ``window`` (a rasterio Window)."""
        values = self.source.read(1, window=window)
        out = masked(values, self.kind, self.classes)
        if self.warped:  # outside the mask's footprint: unknown, so not masked
            out &= self.source.read(self.source.count, window=window) > 0
        return out

    def masked_share(self, max_pixels: int = 1 << 20) -> float:
        """The share of the scene the mask removes, from a decimated read (nearest)."""
        rows, cols = self.source.height, self.source.width
        f = max(1.0, (rows * cols / max_pixels) ** 0.5)
        shape = (max(1, int(rows / f)), max(1, int(cols / f)))
        values = self.source.read(1, out_shape=shape)
        out = masked(values, self.kind, self.classes)
        if self.warped:
            out &= self.source.read(self.source.count, out_shape=shape) > 0
        return float(out.mean())

    def close(self) -> None:
        if self.warped:
            self.source.close()
        self.ds.close()

    def __enter__(self) -> MaskSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
