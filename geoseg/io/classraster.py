"""Class rasters: open one, and read the classes it holds, with one policy for every command.

A class raster is a single-band integer raster of class ids (``*_classes.tif``
from ``geoseg predict``, a label raster, NLCD, ESA WorldCover). Its classes come
from, in order:

1. an explicit class scheme (``--scheme``: a catalog name or a YAML path, see
   :func:`geoseg.schemes.load_scheme`, or the :class:`~geoseg.schemes.ClassInfo`
   list itself);
2. the ``GEOSEG_CLASSES`` tag geoseg writes (ids, names and colors);
3. for names only, ``CLASS_<id>`` band or dataset tags, else a ``classes`` tag
   holding a JSON ``{"id": "name"}`` object (as the bundled NLCD labels have);
4. nothing: callers name the ids they find ``class_<id>``.

:func:`read_scheme` answers 1–2 (a scheme has colors: styles and legends need
them); :func:`class_names` answers 1–3 (tables only need names).

One policy on an unreadable ``GEOSEG_CLASSES`` tag, everywhere: a one-line
:class:`~geoseg.errors.InputError` naming the file and saying what to do (pass
``--scheme``, or fix or remove the tag). The tag is geoseg's own, so a bad one
is damage, not a foreign convention; guessing past it would silently mislabel
classes. A ``classes`` tag that is not a JSON ``{"id": "name"}`` object is
ignored instead: the name is generic, and other software uses it for other
things.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from geoseg.errors import InputError, RasterReadError
from geoseg.schemes import ClassInfo, load_scheme, parse_classes

SCHEME_TAG = "GEOSEG_CLASSES"
"""Dataset tag holding a class raster's scheme as JSON (written by :mod:`geoseg.io.writer`)."""

SchemeSource = str | os.PathLike[str] | Sequence[ClassInfo]
"""An explicit class scheme: catalog name, YAML path, or the classes themselves."""


def open_class_raster(
    path: str | os.PathLike[str],
    *,
    command: str = "geoseg",
    crs_reason: str | None = None,
    uint8: bool = False,
    hint: str = "",
    error: type[InputError] = InputError,
) -> Any:
    """Open a single-band integer raster of class ids, refusing anything else with one line.

    Parameters
    ----------
    path
        The raster.
    command
        The command that needs it, for the message (``stats``, ``change`` …).
    crs_reason
        When set, a raster without a CRS is refused too, with this reason
        (``"so areas are unknown"``).
    uint8
        Accept only ``uint8`` (commands that index 256-entry tables by class id).
    hint
        Appended to the message for a raster that is not a class raster
        (``"; pass the scene with --scene"``).
    error
        The error class raised for a raster that is not usable (a command's own
        subclass of :class:`~geoseg.errors.InputError`).

    Returns
    -------
    rasterio.io.DatasetReader
        Open; the caller closes it (``with open_class_raster(p) as ds:``).

    Raises
    ------
    RasterReadError
        The file is missing or not a raster.
    InputError
        (``error``) More than one band, not integers (up to 32 bits; only ``uint8``
        with ``uint8``), or no CRS with ``crs_reason``.

    Examples
    --------
    >>> with open_class_raster("data/water/olinda_water_mndwi_otsu.tif") as ds:
    ...     ds.count, ds.dtypes[0]
    (1, 'uint8')
    >>> open_class_raster("data/zion/landsat8_2015-08-18_b2345.tif", command="stats")
    Traceback (most recent call last):
    ...
    geoseg.errors.InputError: data/zion/landsat8_2015-08-18_b2345.tif is not a class raster \
(4 band(s) of uint16); stats needs a single-band integer class raster such as the \
*_classes.tif that predict writes
    """
    ds = _open(path)
    dtype = np.dtype(ds.dtypes[0])
    fits = dtype == np.uint8 if uint8 else dtype.kind in "iu" and dtype.itemsize <= 4
    if ds.count != 1 or not fits:
        ds.close()
        raise error(
            f"{os.fspath(path)} is not a class raster ({ds.count} band(s) of {dtype}); "
            f"{command} needs a single-band {'uint8' if uint8 else 'integer'} class raster "
            f"such as the *_classes.tif that predict writes{hint}"
        )
    if crs_reason is not None and ds.crs is None:
        ds.close()
        raise error(
            f"{os.fspath(path)} has no CRS, {crs_reason}; assign one (gdal_edit.py -a_srs EPSG:…)"
        )
    return ds


def _open(path: str | os.PathLike[str]) -> Any:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        return rasterio.open(path)
    except RasterioError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RasterReadError(
            f"cannot open class raster {os.fspath(path)}: {first}; check the path"
        ) from err


def load_class_scheme(scheme: SchemeSource) -> tuple[ClassInfo, ...]:
    """An explicit class scheme as classes: a catalog name or YAML path is loaded.

    >>> [c.name for c in load_class_scheme("water")]
    ['land', 'water']
    """
    if isinstance(scheme, str | os.PathLike):
        return load_scheme(scheme)
    return tuple(scheme)


def read_scheme(source: Any, scheme: SchemeSource | None = None) -> tuple[ClassInfo, ...]:
    """The class scheme of a class raster: ``scheme`` if given, else its ``GEOSEG_CLASSES`` tag.

    Parameters
    ----------
    source
        An open dataset, or a path (opened and closed here).
    scheme
        An explicit scheme; it wins and the raster is not read.

    Returns
    -------
    tuple of ClassInfo
        Empty when the raster has no scheme (no colors are known).

    Raises
    ------
    InputError
        The ``GEOSEG_CLASSES`` tag is unreadable (see the module notes), or
        ``scheme`` names no known scheme.
    RasterReadError
        ``source`` is a path that cannot be opened.

    Examples
    --------
    >>> [c.name for c in read_scheme("data/zion/nlcd2011_8class.tif", "nlcd8")][:2]
    ['water', 'developed']
    >>> read_scheme("data/zion/nlcd2011_8class.tif")  # names in a 'classes' tag, no colors
    ()
    """
    if scheme is not None:
        return load_class_scheme(scheme)
    if not hasattr(source, "tags"):
        with _open(source) as ds:
            return read_scheme(ds)
    tag = source.tags().get(SCHEME_TAG)
    if not tag:
        return ()
    try:
        return parse_classes(json.loads(tag))
    except (ValueError, TypeError) as err:  # InputError is a ValueError
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise InputError(
            f"{source.name} has an unreadable {SCHEME_TAG} tag ({reason}); pass --scheme "
            "NAME|PATH to name its classes, or fix or remove the tag"
        ) from err


def class_names(source: Any, scheme: SchemeSource | None = None) -> dict[int, str]:
    """Class names of a class raster, by id (see the module notes for the sources).

    Ids without a name are left out: callers show them as ``class_<id>``.

    Examples
    --------
    >>> class_names("data/zion/nlcd2011_8class.tif")[2]
    'Developed'
    >>> class_names("data/zion/nlcd2011_8class.tif", "water")
    {0: 'land', 1: 'water'}
    """
    if not hasattr(source, "tags") and scheme is None:
        with _open(source) as ds:
            return class_names(ds)
    known = read_scheme(source, scheme)
    if known:
        return {c.id: c.name for c in known}
    tags = source.tags()
    names = {
        int(key[6:]): value
        for key, value in (*tags.items(), *source.tags(1).items())  # band tags win
        if key.startswith("CLASS_") and key[6:].isdigit()
    }
    if names or "classes" not in tags:
        return names
    try:
        mapping = json.loads(tags["classes"])
        return {int(k): str(v) for k, v in mapping.items()}
    except (ValueError, TypeError, AttributeError):
        return {}  # a 'classes' tag of some other meaning


def class_ids(
    source: Any, items: Sequence[int | str], scheme: SchemeSource | None = None
) -> list[int]:
    """Class ids from ids or names (``--classes 1,water``): names by :func:`class_names`.

    Ids are taken as given (a raster may hold ids its scheme does not name).

    Raises
    ------
    InputError
        A name the raster (or ``scheme``) does not have; the message lists the known names.

    Examples
    --------
    >>> class_ids("data/zion/nlcd2011_8class.tif", ["Water", "4"])
    [1, 4]
    """
    ids: list[int] = []
    names: dict[str, int] | None = None
    for item in items:
        text = str(item).strip()
        if text.isdigit():
            ids.append(int(text))
            continue
        if names is None:
            names = {n.lower(): i for i, n in class_names(source, scheme).items()}
        if text.lower() not in names:
            name = getattr(source, "name", os.fspath(source))
            known = ", ".join(sorted(class_names(source, scheme).values())) or "none"
            raise InputError(
                f"--classes: {name} has no class named {text!r}; known names: {known} "
                "(or pass class ids, or --scheme to name its ids)"
            )
        ids.append(names[text.lower()])
    return ids


def select_classes(
    scheme: Sequence[ClassInfo], items: Sequence[int | str], *, option: str = "--classes"
) -> tuple[ClassInfo, ...]:
    """The classes of ``scheme`` named in ``items``, by id or (case-insensitive) name.

    Raises
    ------
    InputError
        An item is not in the scheme; the message lists the known classes.

    Examples
    --------
    >>> water = load_scheme("water")
    >>> [c.id for c in select_classes(water, ["Water", 0])]
    [1, 0]
    >>> select_classes(water, ["lava"])
    Traceback (most recent call last):
    ...
    geoseg.errors.InputError: class 'lava' is not in the scheme (0=land, 1=water); fix classes=...
    """
    by_name = {c.name.lower(): c for c in scheme}
    by_id = {c.id: c for c in scheme}
    picked = []
    for item in items:
        text = str(item).strip()
        c = by_id.get(int(text)) if text.isdigit() else by_name.get(text.lower())
        if c is None:
            raise InputError(
                f"class {text!r} is not in the scheme "
                f"({', '.join(f'{c.id}={c.name}' for c in scheme)}); fix {option}"
            )
        picked.append(c)
    return tuple(picked)
