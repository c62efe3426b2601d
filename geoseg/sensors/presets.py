"""Sensor presets: which band is which, and how raw values become reflectance.

A model trained on one sensor's numbers gives garbage on another's unless the
inputs are put on one footing first: band *roles* (blue, green, red, nir, …; not
"band 3") and *units* (reflectance in [0, 1], not 8-bit, 12-bit or 16-bit
digital numbers). A :class:`SensorPreset` holds both for one product:

- ``bands``: the product's band ids (``B02``, ``SR_B4``) → common names;
- ``scale`` and ``offset``: ``reflectance = dn * scale + offset`` as the
  product's documentation publishes it (Landsat Collection 2 Level-2:
  ``2.75e-05`` and ``-0.2``; Sentinel-2 from processing baseline 04.00 on:
  ``(dn - 1000) / 10000``, the ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET``);
- ``quantity``: surface reflectance (``sr``), top-of-atmosphere reflectance
  (``toa``) or, for 8-bit aerial photos that carry no calibration,
  ``scaled`` (``dn / 255``: a stand-in, not a physical reflectance).

Common names follow STAC's ``eo`` extension, with the names geoseg bundles use:
``swir16``/``swir22`` are accepted for ``swir1``/``swir2``, ``nir08`` (Landsat
OLI band 5, Sentinel-2 band 8A) stands in for ``nir`` when a scene has no
broad NIR band.

Length: about a third of this module's ~465 lines is the table of presets
(:func:`_presets`), data rather than code; it stays beside the few functions that
read it, so a preset and the rules that interpret it are read together.

>>> get_preset("landsat8-c2l2").role("SR_B5")
'nir'
>>> canonical_band("swir16"), canonical_band("Red"), canonical_band("B4")
('swir1', 'red', None)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from geoseg.errors import InputError

Quantity = Literal["sr", "toa", "scaled"]

COMMON_NAMES = (
    "coastal",
    "blue",
    "green",
    "yellow",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "nir09",
    "cirrus",
    "swir1",
    "swir2",
    "pan",
    "lwir",
)
"""Band roles geoseg knows (the STAC ``eo`` common names, ``swir1``/``swir2`` for SWIR)."""

_ALIASES = {
    "swir16": "swir1",
    "swir22": "swir2",
    "lwir11": "lwir",
    "lwir12": "lwir",
    "thermal": "lwir",
    "tir": "lwir",
    "near-infrared": "nir",
    "nearinfrared": "nir",
    "near infrared": "nir",
    "aerosol": "coastal",
    "coastal_aerosol": "coastal",
    "coastal aerosol": "coastal",
    "panchromatic": "pan",
    "rededge": "rededge1",
    "swir": "swir1",
    "swir_1": "swir1",
    "swir_2": "swir2",
    "water_vapour": "nir09",
    "watervapour": "nir09",
}
"""Other spellings of common names: STAC's, GDAL color interpretations, product docs."""


def canonical_band(name: str | None) -> str | None:
    """The common name a band name stands for, or ``None`` if it is not one.

    Sensor-specific ids (``B4``, ``SR_B5``) are not common names: their role
    depends on the sensor (see :meth:`SensorPreset.role`).

    >>> [canonical_band(n) for n in ("NIR", "swir22", "Coastal", "lwir11", "B02", None)]
    ['nir', 'swir2', 'coastal', 'lwir', None, None]
    """
    if not name:
        return None
    text = name.strip().lower()
    if text in COMMON_NAMES:
        return text
    return _ALIASES.get(text)


@dataclass(frozen=True)
class SensorPreset:
    """One product's band roles and the conversion of its values to reflectance."""

    name: str
    title: str
    bands: Mapping[str, str]  # product band id -> common name
    scale: float
    offset: float
    quantity: Quantity
    resolution_m: tuple[float, float]  # finest, coarsest band
    dtype: str  # the data type the product ships in
    valid_range: tuple[float, float]  # raw values that are data (the rest: fill, saturation)
    aliases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = field(default=(), repr=False)  # file-name regexes

    def role(self, band: str | None) -> str | None:
        """The common name of a band id, file name or name in this product.

        >>> s2 = get_preset("sentinel2-l2a")
        >>> [s2.role(b) for b in ("B04", "B8A", "T32TQM_20230612T101559_B11_20m.jp2", "red", "x")]
        ['red', 'nir08', 'swir1', 'red', None]
        """
        common = canonical_band(band)
        if common is not None or not band:
            return common
        number = _band_number(band)
        if number is None:
            return None
        return next((c for pid, c in self.bands.items() if _band_number(pid) == number), None)

    def to_reflectance(self, dn: float, *, offset: float | None = None) -> float:
        """One raw value as reflectance (``offset`` overrides the preset's, e.g. from metadata).

        >>> round(get_preset("sentinel2-l2a").to_reflectance(2000), 4)
        0.1
        >>> round(get_preset("landsat8-c2l2").to_reflectance(10000), 4)
        0.075
        """
        return dn * self.scale + (self.offset if offset is None else offset)

    def describe(self) -> dict[str, object]:
        """JSON-ready summary, as the run record holds it."""
        return {
            "sensor": self.name,
            "quantity": self.quantity,
            "scale": self.scale,
            "offset": self.offset,
            "bands": dict(self.bands),
        }


def _band_number(text: str) -> str | None:
    """The band number in an id or file name: ``B04``, ``SR_B4``, ``…_B8A_20m.jp2``, ``4``.

    >>> [_band_number(t) for t in ("B04", "SR_B4", "LC08_L2SP_038034_02_T1_SR_B5.TIF", "8A")]
    ['4', '4', '5', '8A']
    """
    t = re.sub(r"\.(TIF|TIFF|JP2)$", "", text.strip().upper())
    m = re.fullmatch(r"(?:BAND\s*)?0*(\d{1,2}A?)", t)
    if m:
        return m.group(1)
    hits = re.findall(r"(?:^|_)(?:SR_|ST_)?B0*(\d{1,2}A?)(?=_|$)", t)
    return str(hits[-1]) if hits else None


_S2 = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B10": "cirrus",
    "B11": "swir1",
    "B12": "swir2",
}
_TM = {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir", "B5": "swir1", "B7": "swir2"}
_ETM = {**_TM, "B8": "pan"}
_OLI = {
    "B1": "coastal",
    "B2": "blue",
    "B3": "green",
    "B4": "red",
    "B5": "nir",
    "B6": "swir1",
    "B7": "swir2",
    "B8": "pan",
    "B9": "cirrus",
}
_C2L2 = {"scale": 2.75e-05, "offset": -0.2, "quantity": "sr", "valid_range": (7273.0, 43636.0)}
_C2L1 = {"scale": 2.0e-05, "offset": -0.1, "quantity": "toa", "valid_range": (1.0, 65535.0)}


def _presets() -> dict[str, SensorPreset]:
    s2 = {"bands": _S2, "scale": 1e-4, "resolution_m": (10.0, 60.0), "dtype": "uint16"}
    landsat = {"resolution_m": (30.0, 30.0), "dtype": "uint16"}
    items = [
        SensorPreset(
            "sentinel2-l2a",
            "Sentinel-2 MSI Level-2A surface reflectance (baseline 04.00+: offset -1000)",
            offset=-0.1,
            quantity="sr",
            valid_range=(1.0, 65535.0),
            aliases=("s2-l2a", "sentinel-2-l2a"),
            patterns=(
                r"S2[ABC]_MSIL2A_",
                r"_L2A_",
                r"^T\d{2}[A-Z]{3}_\d{8}T\d{6}_(B\d\d|B8A|SCL)_[126]0m\.(jp2|tif)$",
            ),
            **s2,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "sentinel2-l1c",
            "Sentinel-2 MSI Level-1C top-of-atmosphere reflectance (baseline 04.00+: -1000)",
            offset=-0.1,
            quantity="toa",
            valid_range=(1.0, 65535.0),
            aliases=("s2-l1c", "sentinel-2-l1c"),
            patterns=(
                r"S2[ABC]_MSIL1C_",
                r"_L1C_",
                r"^T\d{2}[A-Z]{3}_\d{8}T\d{6}_(B\d\d|B8A)\.(jp2|tif)$",
            ),
            **s2,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat5-c2l2",
            "Landsat 4/5 TM Collection 2 Level-2 surface reflectance",
            bands=_TM,
            aliases=("landsat4-c2l2", "landsat-tm-c2l2"),
            patterns=(r"^LT0[45]_L2S[PR]_",),
            **_C2L2,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat5-c2l1",
            "Landsat 4/5 TM Collection 2 Level-1 top-of-atmosphere reflectance",
            bands=_TM,
            aliases=("landsat4-c2l1", "landsat-tm-c2l1"),
            patterns=(r"^LT0[45]_L1(TP|GS|GT)_",),
            **_C2L1,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat7-c2l2",
            "Landsat 7 ETM+ Collection 2 Level-2 surface reflectance",
            bands=_ETM,
            aliases=("landsat-etm-c2l2",),
            patterns=(r"^LE07_L2S[PR]_",),
            **_C2L2,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat7-c2l1",
            "Landsat 7 ETM+ Collection 2 Level-1 top-of-atmosphere reflectance",
            bands=_ETM,
            aliases=("landsat-etm-c2l1",),
            patterns=(r"^LE07_L1(TP|GS|GT)_",),
            **_C2L1,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat8-c2l2",
            "Landsat 8/9 OLI Collection 2 Level-2 surface reflectance",
            bands=_OLI,
            aliases=("landsat9-c2l2", "landsat-oli-c2l2"),
            patterns=(r"^L[CO]0[89]_L2S[PR]_",),
            **_C2L2,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat8-c2l1",
            "Landsat 8/9 OLI Collection 2 Level-1 top-of-atmosphere reflectance",
            bands=_OLI,
            aliases=("landsat9-c2l1", "landsat-oli-c2l1"),
            patterns=(r"^L[CO]0[89]_L1(TP|GS|GT)_",),
            **_C2L1,  # type: ignore[arg-type]
            **landsat,  # type: ignore[arg-type]
        ),
        SensorPreset(
            "landsat-c1-sr",
            "Landsat 4/5 TM or 7 ETM+ Collection 1 / pre-collection ESPA surface reflectance "
            "(int16 x 10000, fill -9999)",
            bands=_TM,
            scale=1e-4,
            offset=0.0,
            quantity="sr",
            resolution_m=(30.0, 30.0),
            dtype="int16",
            valid_range=(-2000.0, 16000.0),
            aliases=("landsat-espa-sr", "landsat5-c1sr", "landsat7-c1sr"),
            patterns=(r"^L[TE][457]\d{13}[A-Z]{3}\d{2}",),  # LE70350322012177EDC00
        ),
        SensorPreset(
            "aerial-rgbn-8bit",
            "NAIP or any 8-bit R,G,B,NIR aerial photo (values / 255; not calibrated)",
            bands={"1": "red", "2": "green", "3": "blue", "4": "nir"},
            scale=1 / 255,
            offset=0.0,
            quantity="scaled",
            resolution_m=(0.1, 5.0),
            dtype="uint8",
            valid_range=(0.0, 255.0),
            aliases=("naip",),
            patterns=(r"^m_\d{7}_[a-z]{2}_\d{2}_",),
        ),
        SensorPreset(
            "planetscope-4band",
            "PlanetScope 4-band surface reflectance (B, G, R, NIR; x 10000)",
            bands={"1": "blue", "2": "green", "3": "red", "4": "nir"},
            scale=1e-4,
            offset=0.0,
            quantity="sr",
            resolution_m=(3.0, 3.0),
            dtype="uint16",
            valid_range=(1.0, 65535.0),
            aliases=("planetscope", "ps4"),
            patterns=(r"_3B_AnalyticMS_SR(_clip)?\.tif$",),
        ),
        SensorPreset(
            "planetscope-8band",
            "PlanetScope SuperDove 8-band surface reflectance (x 10000)",
            bands={
                "1": "coastal",
                "2": "blue",
                "3": "green",  # green I
                "4": "green",
                "5": "yellow",
                "6": "red",
                "7": "rededge1",
                "8": "nir",
            },
            scale=1e-4,
            offset=0.0,
            quantity="sr",
            resolution_m=(3.0, 3.0),
            dtype="uint16",
            valid_range=(1.0, 65535.0),
            aliases=("ps8", "superdove"),
            patterns=(r"_3B_AnalyticMS_SR_8b(_clip)?\.tif$",),
        ),
    ]
    return {p.name: p for p in items}


PRESETS = _presets()
"""Every preset by name; :func:`get_preset` also takes the aliases."""


def get_preset(name: str) -> SensorPreset:
    """The preset called ``name`` (or one of its aliases), else a one-line error listing all.

    >>> get_preset("NAIP").name
    'aerial-rgbn-8bit'
    """
    key = name.strip().lower()
    for preset in PRESETS.values():
        if key == preset.name or key in preset.aliases:
            return preset
    raise InputError(
        f"unknown sensor {name!r}; known: {', '.join(PRESETS)} "
        "(geoseg sensors lists them with their bands)"
    )


def detect_preset(file_name: str, tags: Mapping[str, str] | None = None) -> SensorPreset | None:
    """The preset a product's file name (or its GDAL metadata) names, if any.

    >>> detect_preset("LC08_L2SP_038034_20150818_20200908_02_T1_SR_B4.TIF").name
    'landsat8-c2l2'
    >>> detect_preset("S2B_MSIL1C_20230612T101559_N0509_R065_T32TQM.SAFE").name
    'sentinel2-l1c'
    >>> detect_preset("scene.tif") is None
    True
    """
    base = re.split(r"[\\/]", file_name.rstrip("/\\"))[-1]
    tags = tags or {}
    if tags.get("GEOSEG_SENSOR") in PRESETS:  # a stack geoseg wrote (geoseg.io.bandstack)
        return PRESETS[str(tags["GEOSEG_SENSOR"])]
    level = str(tags.get("PROCESSING_LEVEL", tags.get("PRODUCT_TYPE", ""))).upper()
    if str(tags.get("SPACECRAFT_NAME", "")).upper().startswith("SENTINEL-2") and level:
        return PRESETS["sentinel2-l2a" if "2A" in level else "sentinel2-l1c"]
    for preset in PRESETS.values():
        if any(re.search(p, base) for p in preset.patterns):
            return preset
    return None


def preset_offset(preset: SensorPreset, tags: Mapping[str, str]) -> float:
    """The additive offset (as reflectance) of a product: its metadata's, else the preset's.

    Only Sentinel-2 states it per product (:func:`sentinel2_offset`); every other preset
    has one offset.
    """
    if not preset.name.startswith("sentinel2"):
        return preset.offset
    found = sentinel2_offset(tags, preset.quantity)
    return preset.offset if found is None else found


def sentinel2_offset(tags: Mapping[str, str], quantity: Quantity) -> float | None:
    """The additive offset (as reflectance) a Sentinel-2 product's metadata states, if any.

    Products from processing baseline 04.00 (January 2022) on shift digital numbers by
    ``BOA_ADD_OFFSET`` (L2A) or ``RADIO_ADD_OFFSET`` (L1C), usually -1000; older ones by
    nothing. ``None`` when the metadata says neither (the preset's default then applies).

    >>> sentinel2_offset({"PROCESSING_BASELINE": "03.01"}, "sr")
    0.0
    >>> sentinel2_offset({"BOA_ADD_OFFSET_B2": "-1000", "PROCESSING_BASELINE": "05.09"}, "sr")
    -0.1

    A stack geoseg wrote without the product's metadata states the offset it assumed
    (``GEOSEG_S2_OFFSET``, as reflectance; see :mod:`geoseg.pipeline.folders`).
    """
    if "GEOSEG_S2_OFFSET" in tags:
        return float(tags["GEOSEG_S2_OFFSET"])
    key = "BOA_ADD_OFFSET" if quantity == "sr" else "RADIO_ADD_OFFSET"
    values = [float(v) for k, v in tags.items() if k.upper().startswith(key)]
    if values:
        return values[0] * 1e-4
    baseline = tags.get("PROCESSING_BASELINE")
    if baseline and re.fullmatch(r"\d{2}\.\d{2}", baseline.strip()):
        return -0.1 if float(baseline) >= 4.0 else 0.0
    return None


_COLOR_ROLES = {"red": "red", "green": "green", "blue": "blue"}


def file_band_roles(
    descriptions: Sequence[str | None],
    colorinterp: Sequence[str],
    *,
    preset: SensorPreset | None = None,
) -> list[str | None]:
    """Each band's role from what the file says: descriptions first, then color interpretation.

    ``colorinterp`` holds GDAL's names (``red``, ``green``, ``gray``, ``undefined``,
    and from GDAL 3.10 on ``nir``, ``swir`` …). Sensor ids in descriptions (``B04``,
    ``SR_B4``) need ``preset``; common names and aliases do not.

    >>> file_band_roles([None] * 4, ["red", "green", "blue", "undefined"])
    ['red', 'green', 'blue', None]
    >>> file_band_roles(["B02", "B03", "B04", "B08"], ["gray"] + ["undefined"] * 3,
    ...                 preset=get_preset("sentinel2-l2a"))
    ['blue', 'green', 'red', 'nir']
    """
    roles: list[str | None] = []
    for desc, ci in zip(descriptions, colorinterp, strict=True):
        role = preset.role(desc) if preset is not None else canonical_band(desc)
        if role is None:
            role = _COLOR_ROLES.get(ci.lower()) or canonical_band(ci)
        roles.append(role)
    return roles


def match_roles(want: Sequence[str], roles: Sequence[str | None]) -> list[int] | None:
    """1-based band indexes holding each wanted role, or ``None`` if one is missing.

    ``nir`` falls back to ``nir08`` when the file has no broad NIR band, as with
    Landsat OLI in STAC (its band 5 is ``nir08``).

    >>> match_roles(["blue", "green", "red", "nir"], ["red", "green", "blue", "nir"])
    [3, 2, 1, 4]
    >>> match_roles(["nir", "swir1"], ["nir08", "swir16"])
    [1, 2]
    >>> match_roles(["nir"], ["red"]) is None
    True
    """
    wanted = [canonical_band(w) or w.lower() for w in want]
    have = [canonical_band(r) if r else None for r in roles]
    out = []
    for w in wanted:
        options = [w] + (["nir08"] if w == "nir" else [])
        idx = next((i for o in options for i, h in enumerate(have) if h == o), None)
        if idx is None:
            return None
        out.append(idx + 1)
    return out
