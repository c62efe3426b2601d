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
from geoseg.io.bandstack import vrt_sources as vrt_sources  # moved to io in 0.2


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
