"""``vectorize``: class raster in, polygons out."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import shapely

from geoseg.errors import OutputError
from geoseg.io.classraster import SchemeSource, load_class_scheme, read_scheme
from geoseg.io.styles import qml_path, style_vector_output
from geoseg.outfile import check_output_file
from geoseg.schemes import ClassInfo
from geoseg.vector import geometry
from geoseg.vector.geometry import (
    _areas,
    _as_multi,
    _perimeters,
    _simplify,
    _to_map,
    _tolerance_px,
)
from geoseg.vector.grid import (
    Geoms,
    _check_options,
    _driver_for,
    _Grid,
    _grid_for,
    _open_confidence,
    _open_raster,
)
from geoseg.vector.polygonize import _release_blocks, _Released
from geoseg.vector.sieve import sieve_scratch, sieved
from geoseg.vector.staging import clean_orphans, final_name
from geoseg.vector.writers import _Batch, _output_format, _write_atomic

log = logging.getLogger(__name__)

_CHUNK = 16_384  # polygons moved to output coordinates at a time


@dataclass(frozen=True, slots=True)
class VectorizeResult:
    """What :func:`vectorize` wrote: file, layer, feature count, per-class tallies."""

    path: Path
    layer: str
    features: int
    per_class_count: dict[int, int]
    per_class_area_m2: dict[int, float]
    seconds: float


def _style_sidecar(
    out: Path, layer: str, scheme: Sequence[ClassInfo], *, overwrite: bool = False
) -> None:
    """``<stem>.qml`` beside a finished non-GeoPackage output.

    An existing ``.qml`` of that name is the user's (a style made in QGIS, or
    one they keep beside their data) and is replaced only with ``overwrite``;
    a raster's style is never replaced.
    """
    sidecar = qml_path(out)
    if sidecar.exists() and "<rasterrenderer" in sidecar.read_text("utf-8", errors="replace"):
        log.warning(
            "%s not written: it is the style of a raster with the same base name as %s; "
            "name the vector file differently to get a QGIS style for it",
            sidecar,
            out.name,
        )
        return
    if sidecar.exists() and not overwrite:
        log.warning(
            "%s kept: a style of that name exists; pass --overwrite to replace it with "
            "geoseg's class colors",
            sidecar,
        )
        return
    style_vector_output(out, layer, scheme)


def vectorize(
    raster: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    layer: str | None = None,
    classes: SchemeSource | None = None,
    connectivity: int = 4,
    block: int = 1024,
    class_ids: Sequence[int] | None = None,
    min_area: float | None = None,
    simplify: float | None = None,
    smooth: bool = False,
    confidence: str | os.PathLike[str] | None = None,
    source: str | None = None,
    date: str | None = None,
    style: bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> VectorizeResult:
    """Turn a class raster into polygons with their class, area and perimeter.

    The raster is read block by block and pieces are joined across block
    edges, so the output has exactly the polygons of a whole-raster
    polygonization while memory stays bounded by the block size. Nodata pixels
    never become polygons. The file is written under a temporary name and
    renamed when complete.

    Parameters
    ----------
    raster
        Single-band uint8 class raster (nodata 255, or the nodata it declares).
    out
        Output path; the extension picks the format: ``.gpkg`` (with spatial
        index), ``.geojson``/``.json`` (RFC 7946: EPSG:4326, right-hand rule),
        ``.fgb`` (FlatGeobuf) or ``.parquet`` (GeoParquet 1.1, WKB).
    layer
        Layer name; defaults to the raster's file stem.
    classes
        Class scheme for ``class_name`` and the style: the classes, or a catalog
        name or YAML path (``--scheme``); defaults to the raster's scheme
        (:func:`geoseg.io.classraster.class_names`), else names ``class_<id>``.
    connectivity
        4 (edge neighbours) or 8 (corners too; regions touching only at a
        corner become one MultiPolygon, so every geometry stays valid).
    block
        Side of the square blocks read at a time, in pixels. Memory grows with
        it (about 60 B per block pixel) while speed barely changes past ~1000.
    class_ids
        Only polygonize these classes.
    min_area
        Sieve (m²): regions with less area merge into the neighbouring class
        they share the longest boundary with (among regions of at least
        ``min_area``; ties go to the lowest class id), repeated until no small
        region touches a large one; a group of small regions enclosed by
        nodata or the raster edge stays. Runs on the raster before the
        polygons, exactly and in bounded memory, whatever the block size (see
        :mod:`geoseg.vector.sieve`). All classes take part, not only
        ``class_ids``; nodata is never merged into or out of.
    simplify
        Coverage-safe simplification tolerance in metres (turned into degrees
        with 111 320 m per degree for a geographic CRS). Polygons released
        together (one block row, in bands of ≤ 32k polygons) are simplified as
        one coverage whose outline stays fixed, so shared edges never open
        gaps or overlaps; edges between batches keep every pixel step. It is
        applied in pixel space, so with non-square pixels the tolerance is
        measured in the mean pixel size. Costs roughly 100 µs per polygon.
    smooth
        Cut the pixel stairs: every corner of an edge shared by two polygons
        is cut between the midpoints of its pixel edges, so one-pixel steps
        become straight diagonals (see
        :func:`geoseg.vector.geometry.smooth_coverage`). Junctions of three or
        more polygons stay put and both sides of an edge get the same cut, so
        the polygons remain a valid coverage (no gaps, no overlaps) with the
        same union. Runs on the same batches as ``simplify`` (before it), so
        like it, it leaves the pixel steps on edges between batches, nodata
        and the raster border.
    confidence
        A confidence raster on the same grid (the ``*_confidence.tif`` that
        predict writes); adds ``mean_confidence``, the mean of its valid
        pixels under each polygon (before simplification; null if none).
    source
        Scene the class raster came from, written as ``source``; defaults to
        the raster's ``GEOSEG_SOURCE`` tag. Left out when unknown.
    date
        The scene's acquisition date (ISO 8601), written as ``date``;
        defaults to the raster's ``GEOSEG_DATE`` tag. Left out when unknown.
    style
        Give the output its QGIS style (categorized by class with the scheme's
        colors): inside a GeoPackage (``layer_styles``, written before the
        file gets its final name), as a ``<stem>.qml`` sidecar for the other
        formats. Needs a scheme with colors (``classes`` or the raster's
        ``GEOSEG_CLASSES`` tag); without one the output is left unstyled.
    overwrite
        Replace an existing ``out``.
    progress
        ``progress(blocks_done, blocks_total)`` called after each block.

    Returns
    -------
    VectorizeResult
        Output path, layer, feature count, and per-class counts and areas.

    Raises
    ------
    VectorizeError
        Unknown extension, a bad option, or a raster that is not a class raster.
    RasterReadError
        The raster cannot be opened or read.
    OutputError
        ``out`` exists and ``overwrite`` is false, or writing failed.

    Notes
    -----
    ``area_m2`` and ``perimeter_m`` measure the written geometry: planar
    for a projected CRS (pixel-exact when unsimplified), on the CRS's
    ellipsoid along the drawn edges for a geographic one. Geometries are in
    the raster's CRS, except GeoJSON.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from rasterio.transform import Affine
    >>> d = tempfile.mkdtemp()
    >>> with rasterio.open(f"{d}/c.tif", "w", driver="GTiff", width=3, height=2, count=1,
    ...                    dtype="uint8", nodata=255, crs="EPSG:32612",
    ...                    transform=Affine(30, 0, 500000, 0, -30, 4500000)) as ds:
    ...     ds.write(np.array([[0, 1, 255], [0, 1, 1]], dtype="uint8"), 1)
    >>> r = vectorize(f"{d}/c.tif", f"{d}/c.gpkg")
    >>> r.features, r.per_class_count, r.per_class_area_m2
    (2, {0: 1, 1: 1}, {0: 1800.0, 1: 2700.0})
    """
    start = time.perf_counter()
    out = Path(out)
    driver = _driver_for(out)
    _check_options(
        connectivity=connectivity,
        block=block,
        min_area=min_area,
        simplify=simplify,
        class_ids=class_ids,
        layer=layer,
    )
    if out.exists() and not overwrite:
        raise OutputError(f"{out} already exists; pass --overwrite to replace it")
    if classes is not None:  # a catalog name or YAML path is read once, before any work
        classes = load_class_scheme(classes)
    final = final_name(out)  # predict hands over a staged name: write it in place
    if final == out:
        _check_folder(out)
    clean_orphans(final)  # temporaries of an earlier run that was killed
    clean_orphans(sieve_scratch(final))
    with _open_raster(raster) as ds, contextlib.ExitStack() as stack:
        conf = None
        if confidence is not None:
            conf = stack.enter_context(_open_confidence(confidence, ds))
        grid = _grid_for(
            ds,
            classes=classes,
            class_ids=class_ids,
            block=block,
            connectivity=connectivity,
            confidence=conf is not None,
            source=source,
            date=date,
        )
        layer = layer or Path(str(raster)).stem
        fmt = _output_format(driver, grid)
        tally = _Tally()
        src = ds
        if min_area:
            src = stack.enter_context(
                sieved(ds, grid, min_area=min_area, scratch=sieve_scratch(final))
            )
        released = _release_blocks(src, grid, progress, confidence=conf)
        batches = _finish_batches(
            released,
            grid,
            simplify=simplify,
            smooth=smooth,
            tally=tally,
            pixel_space=fmt == "GeoJSON",  # the GeoJSON writer maps its own coordinates
        )
        scheme = read_scheme(ds, classes) if style else ()
        finish = None
        if scheme and driver == "GPKG":
            finish = partial(style_vector_output, layer=layer, classes=scheme)
        _write_atomic(
            batches, out, fmt=fmt, layer=layer, grid=grid, finish=finish, staged=final != out
        )
        if scheme and driver != "GPKG":
            _style_sidecar(out, layer, scheme, overwrite=overwrite)
    seconds = time.perf_counter() - start
    log.info("vectorized %s: %d polygons in %.1f s", raster, tally.features, seconds)
    return VectorizeResult(
        path=out,
        layer=layer,
        features=tally.features,
        per_class_count=tally.counts(),
        per_class_area_m2=tally.areas(),
        seconds=seconds,
    )


def _check_folder(out: Path) -> None:
    """Say before any work that ``out`` cannot be written (no folder, read-only, a folder)."""
    if not out.parent.is_dir():
        raise OutputError(
            f"cannot write {out}: folder {out.parent} does not exist; create it or choose "
            "another output path"
        )
    check_output_file(out, overwrite=True)


class _Tally:
    """Feature count and per-class counts and areas of what was written."""

    def __init__(self) -> None:
        self.features = 0
        self.count = np.zeros(256, dtype=np.int64)
        self.area = np.zeros(256, dtype=np.float64)

    def add(self, batch: _Batch) -> None:
        self.features += len(batch.classes)
        self.count += np.bincount(batch.classes, minlength=256)
        self.area += np.bincount(batch.classes, weights=batch.areas, minlength=256)

    def counts(self) -> dict[int, int]:
        return {int(i): int(self.count[i]) for i in np.flatnonzero(self.count)}

    def areas(self) -> dict[int, float]:
        return {int(i): float(self.area[i]) for i in np.flatnonzero(self.count)}


def _finish_batches(
    released: Iterable[_Released],
    grid: _Grid,
    *,
    simplify: float | None,
    smooth: bool,
    tally: _Tally,
    pixel_space: bool = False,
) -> Iterator[_Batch]:
    """Group released polygons (a block row when smoothing or simplifying), finish in chunks.

    A batch is smoothed and simplified as one coverage with its outline fixed;
    it ends at the end of a block row, or at the end of a block once it holds
    ``_SIMPLIFY_BATCH`` polygons, which bounds memory on very noisy rows.
    ``pixel_space``: leave geometries in pixel space for the writer to map.
    """
    tolerance = _tolerance_px(grid, simplify)
    held: list[_Released] = []
    for part in released:
        held.append(part)
        size = sum(len(h.classes) for h in held)
        if (tolerance or smooth) and not part.row_end and size < geometry._SIMPLIFY_BATCH:
            continue
        geoms = np.concatenate([h.geoms for h in held])
        classes = np.concatenate([h.classes for h in held])
        conf = np.concatenate([h.conf for h in held], axis=1)
        held.clear()
        if (tolerance or smooth) and len(geoms):
            geoms = _simplify(geoms, tolerance, smooth=smooth)
        areas, perimeters = _areas(geoms, grid), _perimeters(geoms, grid)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = conf[0] / conf[1] if grid.confidence else np.zeros(0)
        for i in range(0, len(geoms), _CHUNK):  # bounds the copies made for output
            chunk = slice(i, i + _CHUNK)
            batch = _Batch(
                geoms[chunk] if pixel_space else _output_geoms(geoms[chunk], grid),
                classes[chunk],
                areas[chunk],
                perimeters[chunk],
                mean[chunk],
            )
            tally.add(batch)
            yield batch


def _output_geoms(geoms: Geoms, grid: _Grid) -> Geoms:
    """Pixel space to output coordinates, shells counter-clockwise, one geometry type."""
    mapped = _to_map(geoms, grid.transform)
    # counter-clockwise shells: RFC 7946's right-hand rule and GeoParquet's declared orientation
    mapped = np.asarray(shapely.orient_polygons(mapped), dtype=object)
    return _as_multi(mapped) if grid.connectivity == 8 else mapped
