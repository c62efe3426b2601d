"""STAC in and out: predict the items of a catalog, write the results as a catalog.

Items come from a local STAC Catalog, Collection or ItemCollection (pystac).
For each item the bundle's bands are found by asset key (``asset=``) or by the
``eo:bands`` common names of its assets: one multi-band asset, or one
single-band asset per band (Sentinel-2/Landsat style). Either way geoseg writes a
small VRT named after the item that stacks exactly the bundle's bands in the
bundle's order; GDAL reads the assets through it (``/vsicurl/`` for http(s)
hrefs, ``/vsis3/`` for ``s3://``), so workers read remote data directly.

The results go to ``<out>/stac/catalog.json``: one item per input item (same id,
geometry, datetime), with the class COG (and the ``classification`` extension's
class list), confidence, polygons and run record as assets.

Catalogs often come from elsewhere, and item ids become file names (the VRT,
the outputs, the results item), so ids must be safe file names
(:func:`geoseg.safepath.safe_name`) and differ even ignoring case, and every
file written is checked to stay inside the output folder. Child links are
followed once each: a catalog whose links loop is refused, not walked forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoseg.errors import InputError, MissingDependencyError
from geoseg.models.bundle import ModelBundle, load_bundle
from geoseg.pipeline.folders import INPUTS as INPUTS  # the folder of VRTs geoseg writes
from geoseg.safepath import inside, safe_name

CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


def _pystac() -> Any:
    try:
        import pystac
    except ImportError as err:
        raise MissingDependencyError("STAC needs pystac: pip install 'geoseg[stac]'") from err
    return pystac


def gdal_href(href: str) -> str:
    """A STAC href as a path GDAL opens (``/vsicurl/``, ``/vsis3/`` for remote ones)."""
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return "/vsis3/" + href[len("s3://") :]
    if href.startswith("gs://"):
        return "/vsigs/" + href[len("gs://") :]
    return href


@dataclass(frozen=True)
class BandSource:
    """Where one model band comes from: an asset path and its 1-based band."""

    path: str
    band: int


def read_items(source: str | os.PathLike[str]) -> list[Any]:
    """Items of a local STAC Catalog, Collection or ItemCollection, in stable order.

    Raises
    ------
    InputError
        Not a STAC document, no items, child links that loop, an item id that is
        not a safe file name, or two ids that differ only in case.
    """
    pystac = _pystac()
    path = os.fspath(source)
    if not os.path.exists(path):
        raise InputError(f"STAC file {path} does not exist")
    try:
        obj = pystac.read_file(path)
    except Exception as err:  # pystac raises several types for bad documents
        try:
            obj = pystac.ItemCollection.from_file(path)
        except Exception:
            raise InputError(
                f"{path} is not a STAC catalog, collection or item collection: {err}"
            ) from err
    if isinstance(obj, pystac.Item):
        items = [obj]
    elif isinstance(obj, pystac.ItemCollection):
        items = list(obj)
    else:
        items = _catalog_items(obj, path)
    for item in items:
        item.make_asset_hrefs_absolute()
    if not items:
        raise InputError(f"{path} holds no STAC items")
    check_item_ids(items, path)
    return sorted(items, key=lambda it: it.id)


def _catalog_items(root: Any, path: str) -> list[Any]:
    """Items of a catalog and its children, each child catalog read once."""
    items: list[Any] = []
    seen = {_normalized(root.get_self_href() or path)}
    todo = [root]
    try:
        while todo:
            cat = todo.pop()
            items.extend(cat.get_items())
            for link in cat.get_child_links():
                href = _normalized(link.get_absolute_href() or "")
                if href in seen:
                    raise InputError(
                        f"{path}: the child link to {href!r} reaches a catalog already read "
                        "(a loop, or one catalog linked twice); fix the catalog's links"
                    )
                seen.add(href)
                todo.append(link.resolve_stac_object(root=cat.get_root()).target)
    except InputError:
        raise
    except Exception as err:  # pystac raises several types for missing or bad children
        raise InputError(f"{path}: cannot read a linked STAC object ({err}); fix the link") from err
    return items


def _normalized(href: str) -> str:
    return href if "://" in href else os.path.normpath(os.path.abspath(href))


def check_item_ids(items: list[Any], source: str) -> None:
    """Each item id is a safe file name and no two are equal ignoring case.

    Item ids name the files of each item (``_inputs/<id>.vrt``, ``<id>_classes.tif``,
    ``stac/<id>/<id>.json``); two ids that differ only in case would share them on
    macOS and Windows.
    """
    seen: dict[str, str] = {}
    for item in items:
        name = safe_name(item.id, f"{source}: STAC item id")
        key = name.casefold()
        if key in seen:
            raise InputError(
                f"{source}: STAC items {seen[key]!r} and {name!r} would write the same files; "
                "item ids must differ (ignoring case)"
            )
        seen[key] = name


def input_vrt(out: str | os.PathLike[str], item: Any) -> Path:
    """Where the VRT of ``item`` goes: ``<out>/_inputs/<id>.vrt``, checked to stay in ``out``."""
    path = Path(out) / INPUTS / f"{safe_name(item.id, 'STAC item id')}.vrt"
    inside(out, path)
    return path


def _eo_bands(asset: Any) -> list[dict[str, Any]]:
    bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    return [b for b in bands if isinstance(b, dict)]


def band_sources(item: Any, bands: tuple[str, ...], *, asset: str | None) -> list[BandSource]:
    """Find each of the bundle's ``bands`` in the item's assets.

    Raises
    ------
    InputError
        The asset key is missing, or some bands have no asset with that
        ``eo:bands`` common name (or name).
    """
    if asset is not None:
        if asset not in item.assets:
            raise InputError(
                f"item {item.id} has no asset {asset!r}; it has "
                + ", ".join(repr(k) for k in sorted(item.assets))
            )
        a = item.assets[asset]
        names = [(b.get("common_name") or b.get("name") or "").lower() for b in _eo_bands(a)]
        href = gdal_href(a.get_absolute_href() or a.href)
        if names and all(b.lower() in names for b in bands):
            return [BandSource(href, names.index(b.lower()) + 1) for b in bands]
        return [BandSource(href, i + 1) for i in range(len(bands))]
    wanted = {_role(b) for b in bands}
    found: dict[str, BandSource] = {}
    for key, a in item.assets.items():
        for i, b in enumerate(_eo_bands(a)):
            for name in (
                b.get("common_name"),
                b.get("name"),
                key if len(_eo_bands(a)) == 1 else None,
            ):
                role = _role(name) if name else None
                if role and role in wanted and role not in found:
                    found[role] = BandSource(gdal_href(a.get_absolute_href() or a.href), i + 1)
    missing = [b for b in bands if _role(b) not in found]
    if missing:
        raise InputError(
            f"item {item.id}: no asset with eo:bands common name {', '.join(missing)}; "
            "pass --asset KEY for a multi-band asset"
        )
    return [found[_role(b)] for b in bands]


def _role(name: str) -> str:
    """A band name as geoseg's common name (STAC's ``swir16`` is ``swir1``), else lower-cased."""
    from geoseg.sensors.presets import canonical_band

    return canonical_band(name) or name.lower()


def write_vrt(path: Path, sources: list[BandSource], names: tuple[str, ...]) -> Path:
    """A VRT stacking ``sources`` as bands named ``names``, on the finest band's grid.

    Assets at 20 m beside 10 m ones are resampled as they are read
    (:func:`geoseg.io.bandstack.stack_vrt`), not refused.
    """
    from geoseg.io.bandstack import BandFile, stack_vrt

    files = [BandFile(s.path, name, band=s.band) for s, name in zip(sources, names, strict=True)]
    return stack_vrt(path, files)


VECTOR_MEDIA = {
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".fgb": "application/vnd.flatgeobuf",
    ".parquet": "application/vnd.apache.parquet",
    ".qml": "text/xml",
}
"""Media types of the vector outputs (and their QGIS style) by file suffix."""


def predict_stac(
    source: str | os.PathLike[str],
    bundle: ModelBundle | str,
    out_dir: str | os.PathLike[str],
    *,
    asset: str | None = None,
    **options: Any,
) -> list[Any]:
    """Predict every item of a STAC catalog and write ``<out_dir>/stac/catalog.json``.

    ``options`` are those of :func:`geoseg.predict` (``client=`` included).
    Returns the per-item results; raises :class:`~geoseg.pipeline.batch.BatchError` after
    the whole run if some items failed (the catalog then lists the others).
    """
    from geoseg.errors import BatchError
    from geoseg.pipeline.predict import predict

    bundle = bundle if isinstance(bundle, ModelBundle) else load_bundle(bundle)
    out = Path(out_dir)
    items = read_items(source)
    paths = [input_vrt(out, it) for it in items]  # every path checked before any is written
    vrts = [
        write_vrt(path, band_sources(it, bundle.bands, asset=asset), bundle.bands)
        for path, it in zip(paths, items, strict=True)
    ]
    try:
        # always a resumable batch (manifest), however many items the catalog has
        results = predict([str(v) for v in vrts], bundle, out, manifest=True, **options)
        failure = None
    except BatchError as err:
        results, failure = err.results, err
    write_catalog(out, items, results, bundle)
    if failure is not None:
        raise failure
    return results


def write_catalog(out: Path, items: list[Any], results: list[Any], bundle: ModelBundle) -> Path:
    """A self-contained STAC catalog of the results (failed items left out)."""
    pystac = _pystac()
    catalog = pystac.Catalog(
        id="geoseg-results", description=f"geoseg predictions with bundle {bundle.name}"
    )
    classes = [
        {
            "value": c.id,
            "name": c.name.replace(" ", "_"),
            "description": c.name,
            "color_hint": c.color.lstrip("#").upper(),
        }
        for c in bundle.classes
    ]
    media = {
        "classes": pystac.MediaType.COG,
        "confidence": pystac.MediaType.COG,
        "run": pystac.MediaType.JSON,
    }
    for item, res in zip(items, results, strict=True):
        if res.state == "failed":
            continue
        new = pystac.Item(
            id=item.id,
            geometry=item.geometry,
            bbox=item.bbox,
            datetime=item.datetime,
            properties=dict(item.properties),
        )
        new.stac_extensions.append(CLASSIFICATION)
        for key, path in res.outputs.items():
            extra = {"classification:classes": classes} if key == "classes" else {}
            new.add_asset(
                key,
                pystac.Asset(
                    href=os.path.abspath(path),
                    media_type=media.get(key) or VECTOR_MEDIA.get(Path(path).suffix.lower()),
                    roles=["data"] if key != "run" else ["metadata"],
                    extra_fields=extra,
                ),
            )
        src = item.get_self_href()
        if src:
            new.add_link(pystac.Link("derived_from", src, media_type=pystac.MediaType.JSON))
        catalog.add_item(new)
    catalog.normalize_hrefs(str(out / "stac"))
    for href in [catalog.get_self_href(), *(it.get_self_href() for it in catalog.get_items())]:
        inside(out, href)  # against out itself: a stac/ that links elsewhere is refused too
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, dest_href=str(out / "stac"))
    return out / "stac" / "catalog.json"
