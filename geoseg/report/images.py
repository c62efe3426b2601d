"""Report images: true- and false-color quicklooks of a scene, class quicklooks, data URIs.

Scenes are read decimated (GDAL picks overviews when there are some), so an
image of any scene size costs a few megabytes of memory and, as JPEG, a few
hundred kilobytes of HTML. Class images stay PNG: few colors, sharp edges.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError

from geoseg.errors import InputError, RasterReadError
from geoseg.io.scene import read_masks
from geoseg.schemes import NODATA_CLASS, ClassInfo

MAX_WIDTH = 1200
"""Widest image put into a report, in pixels (HTML size, not detail, is the limit)."""

_ALIASES = {
    "red": ("red", "r", "b4_red"),
    "green": ("green", "g", "b3_green"),
    "blue": ("blue", "b", "b2_blue"),
    "nir": ("nir", "nir08", "nir1", "near-infrared", "near infrared", "nearinfrared", "b5_nir"),
}
_COLORINTERP = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}


@dataclass(frozen=True, slots=True)
class BandChoice:
    """1-based band indices for a composite, and how they were chosen."""

    bands: tuple[int, int, int]
    note: str  # empty when chosen by band names


@dataclass(frozen=True, slots=True)
class Image:
    """An encoded image ready for a data URI."""

    data: bytes
    mime: str
    width: int
    height: int

    def data_uri(self) -> str:
        """``data:<mime>;base64,...``."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def band_roles(
    count: int, descriptions: Sequence[str | None], colorinterp: Sequence[Any] = ()
) -> dict[str, int]:
    """Which band is red, green, blue, nir, from band names and color interpretation.

    Examples
    --------
    >>> band_roles(4, ["blue", "green", "red", "NIR"])
    {'blue': 1, 'green': 2, 'red': 3, 'nir': 4}
    >>> band_roles(3, [None, None, None])
    {}
    """
    roles: dict[str, int] = {}
    for i in range(1, count + 1):
        name = (descriptions[i - 1] or "").strip().lower() if i <= len(descriptions) else ""
        for role, names in _ALIASES.items():
            if name in names and role not in roles:
                roles[role] = i
        ci = _COLORINTERP.get(colorinterp[i - 1]) if i <= len(colorinterp) else None
        if ci and ci not in roles:
            roles[ci] = i
    return roles


def choose_bands(count: int, roles: dict[str, int]) -> tuple[BandChoice, BandChoice | None]:
    """True color (red, green, blue) and false color (nir, red, green) band triples.

    Falls back to bands 3, 2, 1 and 4, 3, 2 (the blue-green-red-nir order of
    most 4-band products) with a note saying so; no false color without a 4th
    band or a band named nir.

    Examples
    --------
    >>> t, f = choose_bands(4, {"blue": 1, "green": 2, "red": 3, "nir": 4})
    >>> t.bands, f.bands, t.note
    ((3, 2, 1), (4, 3, 2), '')
    >>> t, f = choose_bands(4, {})
    >>> t.bands, f.bands
    ((3, 2, 1), (4, 3, 2))
    >>> t.note
    'bands 3, 2, 1 as red, green, blue: the band names do not say which is which'
    """
    why = "the band names do not say which is which"
    if all(r in roles for r in ("red", "green", "blue")):
        true = BandChoice((roles["red"], roles["green"], roles["blue"]), "")
    elif count >= 3:
        true = BandChoice((3, 2, 1), f"bands 3, 2, 1 as red, green, blue: {why}")
    else:
        true = BandChoice((1, 1, 1), "band 1 in gray: fewer than 3 bands")
    if all(r in roles for r in ("nir", "red", "green")):
        false: BandChoice | None = BandChoice((roles["nir"], roles["red"], roles["green"]), "")
    elif "nir" not in roles and count >= 4:
        false = BandChoice((4, 3, 2), f"bands 4, 3, 2 as nir, red, green: {why}")
    else:
        false = None
    return true, false


def fit_shape(shape: tuple[int, int], max_width: int = MAX_WIDTH) -> tuple[int, int]:
    """``(rows, cols)`` scaled down (never up) to at most ``max_width`` on either side."""
    f = max(1.0, shape[1] / max_width, shape[0] / max_width)
    return max(1, round(shape[0] / f)), max(1, round(shape[1] / f))


def composite(
    scene: str | os.PathLike[str], bands: tuple[int, int, int], *, max_width: int = MAX_WIDTH
) -> Image:
    """A 2–98 % percentile-stretched JPEG of three bands; nodata is light gray.

    Raises
    ------
    RasterReadError
        The scene cannot be read.
    InputError
        A band index is out of range.
    """
    path = os.fspath(scene)
    try:
        with rasterio.open(path) as ds:
            if max(bands) > ds.count:
                raise InputError(
                    f"{path} has {ds.count} bands, so band {max(bands)} cannot be shown; "
                    "pass band_names to say which band is which"
                )
            shape = fit_shape((ds.height, ds.width), max_width)
            data = ds.read(list(bands), out_shape=(3, *shape), resampling=Resampling.average)
            valid: NDArray[np.bool_] = np.asarray(
                read_masks(ds, list(bands), out_shape=(3, *shape)).all(axis=0)
            )
    except RasterioError as err:
        raise RasterReadError(f"cannot read scene {path}: {err}; check the path") from err
    rgb = np.full((*shape, 3), 235, dtype=np.uint8)
    stretched = stretch(data.astype(np.float64), valid)
    rgb[valid] = stretched[:, valid].T
    return encode(rgb, "jpeg")


def stretch(data: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """Each band's 2nd..98th percentile of the valid pixels to 0..255."""
    out = np.zeros(data.shape, dtype=np.uint8)
    if not valid.any():
        return out
    for i, band in enumerate(data):
        lo, hi = np.percentile(band[valid], [2, 98])
        scaled = (band - lo) / max(hi - lo, 1e-9)
        out[i] = np.round(255 * np.clip(scaled, 0, 1)).astype(np.uint8)
    return out


def encode(pixels: NDArray[np.uint8], fmt: str, *, palette: bytes | None = None) -> Image:
    """Encode ``(rows, cols[, bands])`` pixels as PNG or JPEG with Pillow."""
    from PIL import Image as PILImage

    if palette is not None:
        size = (pixels.shape[1], pixels.shape[0])
        img = PILImage.frombytes("P", size, np.ascontiguousarray(pixels).tobytes())
        img.putpalette(palette)
    else:
        img = PILImage.fromarray(pixels)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(buf, format="JPEG", quality=85, optimize=True)
        mime = "image/jpeg"
    else:
        img.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return Image(buf.getvalue(), mime, img.width, img.height)


def load_image(source: str | os.PathLike[str] | bytes) -> Image:
    """A PNG/JPEG/GIF/WebP file or its bytes, kind checked by its signature.

    Raises
    ------
    InputError
        Not a PNG, JPEG, GIF or WebP image.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    kinds = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
    mime = next((m for sig, m in kinds.items() if data.startswith(sig)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        what = f"{len(data)} bytes" if isinstance(source, bytes) else str(source)
        raise InputError(f"{what}: not a PNG, JPEG, GIF or WebP image; pass one of those")
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as img:
        width, height = img.size
    return Image(data, mime, width, height)


def class_image(
    classes: str | os.PathLike[str],
    scheme: Sequence[ClassInfo] | None = None,
    *,
    max_width: int = MAX_WIDTH,
) -> tuple[Image, tuple[ClassInfo, ...]]:
    """A class raster as a paletted PNG (nodata light gray) and the classes it shows.

    Colors come from ``scheme``, else the raster's own scheme (the
    ``GEOSEG_CLASSES`` tag, read by :func:`geoseg.io.classraster.read_scheme`), else
    its class names with generated colors. The legend is left to the page (as
    HTML it stays sharp and searchable at any width).

    Raises
    ------
    RasterReadError
        The raster cannot be read.
    """
    from geoseg.io.classraster import class_names, read_scheme

    path = os.fspath(classes)
    try:
        with rasterio.open(path) as ds:
            shape = fit_shape((ds.height, ds.width), max_width)
            ids = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
            given = scheme or None  # an explicit scheme wins: the raster's tags are not read
            own, names = read_scheme(ds, given), class_names(ds, given)
            nodata = ds.nodata
    except RasterioError as err:
        raise RasterReadError(f"cannot read class raster {path}: {err}; check the path") from err
    ids = np.where(ids == nodata, NODATA_CLASS, ids) if nodata is not None else ids
    ids = np.where((ids < 0) | (ids > NODATA_CLASS), NODATA_CLASS, ids).astype(np.uint8)
    present = sorted({int(v) for v in np.unique(ids)} - {NODATA_CLASS})
    known = {c.id: c for c in own}
    shown = tuple(
        known.get(i) or ClassInfo(i, names.get(i) or f"class_{i}", auto_color(i)) for i in present
    )
    lut = bytearray(class_colors(shown))
    lut[3 * NODATA_CLASS : 3 * NODATA_CLASS + 3] = b"\xeb\xeb\xeb"
    return encode(ids, "png", palette=bytes(lut)), shown


def auto_color(class_id: int) -> str:
    """A distinct-enough color for a class without one (same id, same color)."""
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    return palette[class_id % len(palette)]


def class_colors(scheme: Sequence[ClassInfo]) -> bytes:
    """A 256-entry RGB palette of the scheme's colors (others black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for c in scheme:
        lut[c.id] = c.rgb
    return lut.tobytes()
