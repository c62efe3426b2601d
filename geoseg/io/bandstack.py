"""Band files of one product stacked into one scene on the finest grid (a small VRT).

Landsat ships one GeoTIFF per band (``…_SR_B4.TIF``), Sentinel-2 one JPEG 2000
per band at 10, 20 or 60 m (``…_B11_20m.jp2`` in ``GRANULE/*/IMG_DATA``), and a
STAC item one asset per band. :func:`find_band_files` picks the files that hold
the bands a bundle needs, by the product's band ids (a
:class:`~geoseg.sensors.presets.SensorPreset`); :func:`stack_vrt` writes a VRT that
stacks them on the grid of the finest band: coarser bands are resampled by GDAL
as they are read (bilinear for reflectance, nearest for categorical layers such
as QA bits or a scene classification), so nothing is refused because 20 m and
10 m bands differ, and no resampled copy is written to disk.

All bands must share the CRS and cover the same area (to within one coarse
pixel): the bands of one product do. Anything else is a one-line error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from geoseg.errors import InputError, RasterReadError
from geoseg.sensors.presets import SensorPreset, detect_preset

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
_RES_HINT = re.compile(r"_(10|20|60)m\b", re.IGNORECASE)


@dataclass(frozen=True)
class BandFile:
    """One band of a product: the file, the band in it (1-based) and its role."""

    path: str
    role: str
    band: int = 1
    categorical: bool = False


def find_band_files(
    folder: str | os.PathLike[str],
    roles: Sequence[str],
    *,
    preset: SensorPreset | None = None,
) -> tuple[SensorPreset, list[BandFile]]:
    """The files of ``folder`` (searched recursively) that hold each of ``roles``.

    The preset is detected from the folder's or the files' names when not given.
    Where a band exists at several resolutions (Sentinel-2 L2A ships B02 at 10,
    20 and 60 m) the finest is taken.

    Raises
    ------
    InputError
        No preset could be detected, or a wanted band has no file; the message lists
        the band files found.
    """
    root = Path(folder)
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
    )
    if preset is None:
        preset = detect_preset(str(root)) or next(
            (found for p in files if (found := detect_preset(p.name))), None
        )
    if preset is None:
        raise InputError(
            f"cannot tell which sensor the band files in {root} come from; pass --sensor "
            "(geoseg sensors lists them)"
        )
    by_role: dict[str, Path] = {}
    for p in files:
        role = preset.role(p.name)
        if role is None:
            continue
        if role not in by_role or _res_hint(p) < _res_hint(by_role[role]):
            by_role[role] = p
    missing = [r for r in roles if r not in by_role]
    if missing:
        raise InputError(
            f"no band file for {', '.join(missing)} in {root} ({preset.name}); found: "
            f"{', '.join(f'{r}={p.name}' for r, p in sorted(by_role.items())) or 'none'}"
        )
    return preset, [BandFile(str(by_role[r]), r) for r in roles]


def _res_hint(path: Path) -> int:
    m = _RES_HINT.search(path.name)
    return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class _Grid:
    crs: object
    left: float
    top: float
    xres: float
    yres: float
    width: int
    height: int


def _grid(path: str) -> _Grid:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            t = ds.transform
            if t.b or t.d:
                raise InputError(f"{path} is rotated; stacking needs north-up band files")
            return _Grid(ds.crs, t.c, t.f, t.a, -t.e, ds.width, ds.height)
    except RasterioIOError as err:
        raise RasterReadError(f"cannot open band file {path} ({err})") from err


def stack_vrt(
    path: str | os.PathLike[str],
    sources: Sequence[BandFile],
    *,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a VRT at ``path`` stacking ``sources`` on the finest source grid.

    Bands are named by their role (the VRT band description), so
    :func:`geoseg.io.scene.open_scene` and the bundle's band names find them.
    ``tags`` become the VRT's dataset metadata (e.g. ``GEOSEG_SENSOR``, which
    :func:`geoseg.sensors.presets.detect_preset` reads).
    """
    import rasterio

    grids = [_grid(s.path) for s in sources]
    ref = min(grids, key=lambda g: g.xres * g.yres)
    for s, g in zip(sources, grids, strict=True):
        if g.crs != ref.crs:
            raise InputError(
                f"band files are in different CRSs ({s.path}: {g.crs}, others: {ref.crs}); "
                "stack bands of one product"
            )
        right, bottom = g.left + g.width * g.xres, g.top - g.height * g.yres
        ref_right, ref_bottom = ref.left + ref.width * ref.xres, ref.top - ref.height * ref.yres
        tol = max(g.xres, g.yres)
        if (
            any(
                abs(a - b) > tol
                for a, b in ((g.left, ref.left), (g.top, ref.top), (right, ref_right))
            )
            or abs(bottom - ref_bottom) > tol
        ):
            raise InputError(
                f"band file {s.path} covers another area than {sources[grids.index(ref)].path}; "
                "stack bands of one product (same tile)"
            )
    bands = []
    for k, (s, g) in enumerate(zip(sources, grids, strict=True), start=1):
        with rasterio.open(s.path) as ds:
            dtype = ds.dtypes[s.band - 1]
            nodata = ds.nodatavals[s.band - 1]
        x_off = (g.left - ref.left) / ref.xres
        y_off = (ref.top - g.top) / ref.yres
        x_size = g.width * g.xres / ref.xres
        y_size = g.height * g.yres / ref.yres
        resampling = "nearest" if s.categorical else "bilinear"
        nd = f"<NoDataValue>{nodata!r}</NoDataValue>" if nodata is not None else ""
        src_nd = f"<NODATA>{nodata!r}</NODATA>" if nodata is not None else ""
        bands.append(
            f'<VRTRasterBand dataType="{_vrt_type(dtype)}" band="{k}">'
            f"<Description>{escape(s.role)}</Description>{nd}"
            f'<ComplexSource resampling="{resampling}">'
            f'<SourceFilename relativeToVRT="0">{escape(_source_name(s.path))}'
            f"</SourceFilename><SourceBand>{s.band}</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{g.width}" ySize="{g.height}"/>'
            f'<DstRect xOff="{x_off!r}" yOff="{y_off!r}" xSize="{x_size!r}" ySize="{y_size!r}"/>'
            f"{src_nd}</ComplexSource></VRTRasterBand>"
        )
    srs = f"<SRS>{escape(ref.crs.to_wkt())}</SRS>" if ref.crs else ""  # type: ignore[attr-defined]
    meta = "".join(
        f'<MDI key="{escape(k)}">{escape(v)}</MDI>' for k, v in sorted((tags or {}).items())
    )
    srs += f"<Metadata>{meta}</Metadata>" if meta else ""
    gt = f"{ref.left!r}, {ref.xres!r}, 0.0, {ref.top!r}, 0.0, {-ref.yres!r}"
    text = (
        f'<VRTDataset rasterXSize="{ref.width}" rasterYSize="{ref.height}">{srs}'
        f"<GeoTransform>{gt}</GeoTransform>{''.join(bands)}</VRTDataset>\n"
    )
    from geoseg.atomic import write_text_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)


def _source_name(path: str) -> str:
    """Local paths absolute (the VRT may live elsewhere); GDAL URLs as they are."""
    return path if path.startswith("/vsi") or "://" in path else os.path.abspath(path)


def _vrt_type(dtype: str) -> str:
    return {
        "uint8": "Byte",
        "int8": "Int8",
        "uint16": "UInt16",
        "int16": "Int16",
        "uint32": "UInt32",
        "int32": "Int32",
        "float32": "Float32",
        "float64": "Float64",
    }[dtype]


def vrt_sources(path: str) -> set[str]:
    """The files a VRT reads (relative names resolved against the VRT's folder)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return set()  # GDAL reports a broken VRT when the scene is opened
    out = set()
    for el in root.iter("SourceFilename"):
        name = (el.text or "").strip()
        if not name:
            continue
        if el.get("relativeToVRT") == "1" and not (name.startswith("/vsi") or "://" in name):
            name = os.path.join(os.path.dirname(os.path.abspath(path)), name)
        out.add(name)
    return out
