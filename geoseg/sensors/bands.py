"""Which band of a scene feeds which input of a bundle — known, never guessed.

A bundle names its inputs by role (``blue, green, red, nir``). A scene says what
its bands are through, in this order of trust:

1. ``--bands`` (the user's word: indexes or names);
2. a sensor preset — ``--sensor``, or one detected from the product's file name
   or metadata — that turns the file's band ids into roles (``B04`` → red in
   Sentinel-2, ``SR_B4`` → NIR in Landsat 5 but red in Landsat 8), and for
   products whose band order is fixed (NAIP, PlanetScope) the order itself;
3. the file's own names: band descriptions that are common names (``red``,
   ``swir16``) and GDAL color interpretation (Red, Green, Blue …);
4. the single sensor a bundle was trained on, for band ids the file gives
   (``B2``…``B5``) but no preset explains.

When a bundle's inputs are roles and none of these says where each role is, the
scene is refused with the bundle's bands and the file's side by side: a 4-band
file with no names is never silently read as blue, green, red, NIR (an R,G,B,NIR
photo read that way maps garbage). Bundles whose inputs are not roles (``b1`` …)
take bands in file order, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from geoseg.errors import SceneError
from geoseg.sensors.presets import (
    SensorPreset,
    canonical_band,
    detect_preset,
    file_band_roles,
    get_preset,
    match_roles,
)


@dataclass(frozen=True)
class BandChoice:
    """The scene bands (1-based) for a bundle's inputs, and how they were found."""

    bands: tuple[int, ...] | None  # None: in file order, as the bundle takes any bands
    preset: SensorPreset | None
    how: str  # for the run record: "--bands", "sensor preset", "file band names", ...

    def record(self) -> dict[str, object]:
        """JSON-ready, for the run record."""
        return {
            "bands": list(self.bands) if self.bands is not None else None,
            "sensor": self.preset.name if self.preset else None,
            "how": self.how,
        }


@dataclass(frozen=True)
class FileBands:
    """What a raster file says about its bands (read once by the caller)."""

    path: str
    count: int
    dtype: str
    descriptions: tuple[str | None, ...]
    colorinterp: tuple[str, ...]
    tags: Mapping[str, str]

    @classmethod
    def read(cls, path: str) -> FileBands:
        """Read a file's band metadata with rasterio."""
        import rasterio

        with rasterio.open(path) as ds:
            return cls(
                path=path,
                count=ds.count,
                dtype=ds.dtypes[0],
                descriptions=tuple(ds.descriptions),
                colorinterp=tuple(c.name for c in ds.colorinterp),
                tags={**ds.tags(), **ds.tags(ns="IMAGERY")} if ds.count else {},
            )


def is_roles(names: Sequence[str]) -> bool:
    """Whether a bundle's band names are all roles (common names), not plain ids.

    >>> is_roles(["blue", "green", "red", "nir"]), is_roles(["b1", "b2"])
    (True, False)
    """
    return bool(names) and all(canonical_band(n) is not None for n in names)


def choose_bands(
    file: FileBands,
    want: Sequence[str],
    *,
    sensor: str | None = None,
    bundle_sensors: Sequence[str] = (),
    bundle_name: str = "the bundle",
) -> BandChoice:
    """Where each of the bundle's inputs ``want`` is in ``file`` (see the module docstring).

    ``--bands`` is handled by the caller before this; ``sensor`` is ``--sensor``.

    Raises
    ------
    SceneError
        The roles cannot be known, a role is missing, or ``--sensor`` contradicts the file.
    """
    preset = resolve_preset(file, sensor)
    if not is_roles(want):
        return BandChoice(None, preset, "file order (the bundle's inputs are not band roles)")
    roles = file_band_roles(file.descriptions, file.colorinterp, preset=preset)
    how = "sensor preset" if preset else "file band names"
    if preset is not None and not any(roles) and _positional(preset, file.count):
        roles = [preset.bands[str(k)] for k in range(1, file.count + 1)]
        how = "sensor preset band order"
    found = match_roles(want, roles)
    if found is None and preset is None and len(bundle_sensors) == 1:
        assumed = get_preset(bundle_sensors[0])
        ids = file_band_roles(file.descriptions, file.colorinterp, preset=assumed)
        found = match_roles(want, ids)
        if found is not None:
            return BandChoice(tuple(found), None, f"band ids read as {assumed.name} (the bundle's)")
        if any(ids):
            roles, preset = ids, assumed  # say what the ids meant, and as which sensor
    if found is None:
        raise SceneError(_unknown_roles(file, want, roles, preset, bundle_name))
    return BandChoice(tuple(found), preset, how)


def _positional(preset: SensorPreset, count: int) -> bool:
    return set(preset.bands) == {str(k) for k in range(1, count + 1)}


def resolve_preset(file: FileBands, sensor: str | None) -> SensorPreset | None:
    """``--sensor``'s preset checked against the file, else the one the file names, else None."""
    detected = detect_preset(file.path, file.tags)
    if sensor is None:
        return detected
    preset = get_preset(sensor)
    if detected is not None and detected.name != preset.name:
        raise SceneError(
            f"--sensor {preset.name} does not fit {file.path}: its name says it is "
            f"{detected.name} ({detected.title}); drop --sensor or pass the right one"
        )
    if file.dtype != preset.dtype and not file.dtype.startswith("float"):
        raise SceneError(
            f"--sensor {preset.name} ships {preset.dtype} values but {file.path} holds "
            f"{file.dtype}; pass the product as delivered, or another --sensor"
        )
    return preset


def _unknown_roles(
    file: FileBands,
    want: Sequence[str],
    roles: Sequence[str | None],
    preset: SensorPreset | None,
    bundle: str,
) -> str:
    said = [
        f"{k}={r or d or 'unnamed'}"
        for k, (r, d) in enumerate(zip(roles, file.descriptions, strict=True), start=1)
    ]
    missing = [w for w in want if canonical_band(w) not in roles]
    if any(roles):
        what = f"has no {', '.join(missing)} band" + (f" ({preset.name})" if preset else "")
    else:
        what = "does not say which band is which" + (f" ({preset.name})" if preset else "")
    if file.count == 1 < len(want):  # one file per band: they must be stacked first
        return (
            f"{file.path} has 1 band but bundle "
            f"'{bundle}' takes {len(want)} ({', '.join(want)}); stack the band files into "
            f"one scene first, in that order: gdalbuildvrt -separate scene.vrt "
            f"{' '.join(f'{w}.tif' for w in want)} (or geoseg.io.bandstack for a product folder)"
        )
    example = ",".join(str(k) for k in range(1, len(want) + 1))
    return (
        f"{file.path} {what}: bundle '{bundle}' takes {', '.join(want)}, the file has "
        f"{file.count} bands ({', '.join(said)}); pass --bands in the bundle's order "
        f"(e.g. --bands {example}) or --sensor (geoseg sensors lists them)"
    )
