"""The files a predict call reads: scene paths and globs, their stems, a VRT's sources.

Every module of the pipeline that needs to know what a call's inputs are (the
pre-flight, the output guard, the batch manifest) asks here, so a scene's
output stem and the files behind a VRT are decided in one place.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from geoseg.errors import InputError


def expand_scenes(scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Paths and globs to a sorted list of scene paths (errors if one matches nothing).

    Raises
    ------
    InputError
        A glob matches nothing, or no scene is given at all.

    Examples
    --------
    >>> expand_scenes(["b.tif", "a.tif"])  # plain paths keep their order
    ['b.tif', 'a.tif']
    >>> expand_scenes("data/zion/*2015*.tif")
    ['data/zion/landsat8_2015-08-18_b2345.tif']
    """
    items = [scenes] if isinstance(scenes, str | os.PathLike) else list(scenes)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text) and "://" not in text:
            hits = sorted(glob.glob(text, recursive=True))
            if not hits:
                raise InputError(f"no scene matches '{text}'; check the pattern")
            out += hits
        else:
            out.append(text)
    if not out:
        raise InputError("no scene given; pass one or more raster paths or a glob")
    return out


def scene_stem(path: str) -> str:
    """A scene's output stem: its file name without folder and extension.

    Examples
    --------
    >>> scene_stem("archive/2020/s2_tile.tif")
    's2_tile'
    """
    return os.path.splitext(os.path.basename(path))[0]


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
