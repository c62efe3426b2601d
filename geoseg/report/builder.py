"""The :class:`Report` builder: sections in, one self-contained HTML file out."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioError

from geoseg.atomic import atomic_path
from geoseg.errors import InputError, OutputError, RasterReadError
from geoseg.report import _html
from geoseg.report.images import (
    MAX_WIDTH,
    Image,
    band_roles,
    choose_bands,
    class_image,
    composite,
    load_image,
)
from geoseg.report.mapdata import MAX_FEATURES, MAX_VERTICES, MapData, build_map_data
from geoseg.report.records import read_record, record_facts
from geoseg.report.tables import table_parts as table_parts
from geoseg.schemes import ClassInfo

ImageSource = str | os.PathLike[str] | bytes


@dataclass(frozen=True, slots=True)
class _Section:
    anchor: str
    title: str
    body: str


class Report:
    """A report page built section by section, written as one offline HTML file.

    Images become data URIs and Leaflet (vendored, BSD-2-Clause) is inlined, so
    the file asks for nothing over the network and opens from a mail
    attachment or a USB stick.

    Parameters
    ----------
    title
        Page title (the header and the browser tab).
    subtitle
        One line under the title (scene, model, date …).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> r = Report("Zion land cover", subtitle="Landsat-8, 2015-08-18")
    >>> r.add_table("Areas", ["class_name", "pixels"], [("water", 1334), ("forest", 20931)])
    >>> out = r.write(pathlib.Path(tempfile.mkdtemp()) / "report.html")
    >>> text = out.read_text()
    >>> '<td class="num" data-value="20931">20,931</td>' in text, "https://" in text
    (True, False)
    """

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        if not title or not isinstance(title, str):
            raise InputError("a report needs a non-empty title")
        self.title = title
        self.subtitle = subtitle
        self.created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        self._sections: list[_Section] = []
        self._maps = 0

    @property
    def sections(self) -> tuple[str, ...]:
        """Titles of the sections added so far, in order."""
        return tuple(s.title for s in self._sections)

    def _add(self, title: str, body: str) -> None:
        self._sections.append(_Section(f"s{len(self._sections) + 1}", title, body))

    def add_text(self, title: str, paragraphs: str | Sequence[str]) -> None:
        """A section of plain text paragraphs (escaped, not HTML)."""
        items = [paragraphs] if isinstance(paragraphs, str) else list(paragraphs)
        self._add(title, "".join(f"<p>{_html.esc(p)}</p>" for p in items))

    def add_images(
        self,
        title: str,
        images: Sequence[tuple[str, ImageSource | Image]],
        *,
        note: str | None = None,
    ) -> None:
        """Images side by side, each with a caption.

        Parameters
        ----------
        images
            ``(caption, image)`` pairs; an image is a PNG/JPEG/GIF/WebP path or its bytes.
        note
            A line under the images.
        """
        figs = []
        for caption, src in images:
            img = src if isinstance(src, Image) else load_image(src)
            figs.append(_figure(caption, img))
        self._add(title, f'<div class="figures">{"".join(figs)}</div>' + _note(note))

    def add_quicklooks(
        self,
        *,
        scene: str | os.PathLike[str] | None = None,
        classes: str | os.PathLike[str] | None = None,
        scheme: Sequence[ClassInfo] | None = None,
        band_names: Sequence[str | None] | None = None,
        title: str = "Quicklooks",
        max_width: int = MAX_WIDTH,
    ) -> None:
        """The scene in true and false color and the class raster with its legend.

        Parameters
        ----------
        scene
            The input raster. True color is red/green/blue and false color
            nir/red/green, found by ``band_names`` (one per band of the file,
            ``None`` where unknown), else the file's band descriptions or color
            interpretation, else bands 3, 2, 1 and 4, 3, 2 (said in a note).
            Stretched between the 2nd and 98th percentile of each band.
        classes
            A class (or change) raster.
        scheme
            Class names and colors, when ``classes`` does not carry them in its
            ``GEOSEG_CLASSES`` tag (geoseg's outputs do).
        max_width
            Widest image, in pixels.
        """
        if scene is None and classes is None:
            raise InputError("add_quicklooks needs a scene, a class raster or both")
        figs: list[str] = []
        notes: list[str] = []
        if scene is not None:
            figs += self._scene_figures(scene, band_names, max_width, notes)
        if classes is not None:
            figs.append(_class_figure(classes, scheme, max_width))
        body = f'<div class="figures">{"".join(figs)}</div>'
        self._add(title, body + "".join(_note(n) for n in notes))

    def _scene_figures(
        self,
        scene: str | os.PathLike[str],
        band_names: Sequence[str | None] | None,
        max_width: int,
        notes: list[str],
    ) -> list[str]:
        try:
            with rasterio.open(scene) as ds:
                count, desc, ci = ds.count, list(ds.descriptions), list(ds.colorinterp)
        except RasterioError as err:
            raise RasterReadError(f"cannot read scene {scene}: {err}; check the path") from err
        if band_names is not None:
            desc = [n or d for n, d in zip(band_names, desc, strict=False)] + desc[
                len(band_names) :
            ]
        true, false = choose_bands(count, band_roles(count, desc, ci))
        name = Path(scene).name
        figs = [
            _figure(
                f"{name}: true color (bands {_bands(true.bands)})",
                composite(scene, true.bands, max_width=max_width),
            )
        ]
        notes += [f"True color: {true.note}." for _ in (1,) if true.note]
        if false is not None:
            img = composite(scene, false.bands, max_width=max_width)
            figs.append(
                _figure(f"{name}: false color, nir/red/green (bands {_bands(false.bands)})", img)
            )
            notes += [f"False color: {false.note}." for _ in (1,) if false.note]
        else:
            notes.append("No false color: the scene has no near-infrared band that can be found.")
        return figs

    def add_table(
        self,
        title: str,
        columns: Sequence[str] | Any,
        rows: Sequence[Sequence[Any]] | None = None,
        *,
        note: str | None = None,
        scheme: Sequence[ClassInfo] | None = None,
    ) -> None:
        """A table: numbers right-aligned with thousands separators.

        Parameters
        ----------
        columns
            Column names, or a whole table: a :class:`geoseg.analysis.stats.AreaTable`,
            anything with ``to_rows()`` (rows as mappings or sequences, column
            names from its ``columns`` or the first mapping's keys), a pandas
            DataFrame, or a sequence of mappings.
        rows
            Rows (sequences in column order) when ``columns`` are names.
        note
            A line under the table (an ``AreaTable``'s own note by default).
        scheme
            Colors drawn as swatches beside class names.
        """
        cols, body, default_note = table_parts(columns, rows)
        colors = {c.name: c.color for c in scheme or ()}
        html = _html.table_html(cols, body, colors=colors)
        self._add(title, html + _note(note if note is not None else default_note))

    def add_record(self, title: str, record: Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Key facts of a run record (inputs, bundle, timings, chips) and the whole record.

        ``record`` is a mapping or the path of a ``*_run.json``; the full JSON is
        in a collapsed block under the facts.
        """
        if not isinstance(record, Mapping):
            record = read_record(record)
        pretty = json.dumps(record, indent=2, ensure_ascii=False, default=str)
        body = _html.facts_html(record_facts(record))
        body += (
            "<details><summary>Full record (JSON)</summary>"
            f"<pre>{_html.esc(pretty)}</pre></details>"
        )
        self._add(title, body)

    def add_map(
        self,
        title: str,
        vectors: str | os.PathLike[str],
        *,
        scheme: Sequence[ClassInfo] | None = None,
        classes: str | os.PathLike[str] | None = None,
        layer: str | None = None,
        overlay: bool = True,
        max_features: int = MAX_FEATURES,
        simplify_m: float | None = None,
        max_vertices: int = MAX_VERTICES,
        fill_opacity: float | None = None,
    ) -> MapData:
        """An interactive map of polygons (no basemap: works offline) with a legend.

        Parameters
        ----------
        vectors
            Polygons with ``class_id`` (and ``class_name``, ``area_m2``), as
            ``geoseg vectorize`` writes; any CRS (shown in EPSG:4326 on Web Mercator).
        scheme
            Class names and colors [from ``classes``, else from the file].
        classes
            The class raster: its footprint is outlined and, with ``overlay``,
            it is drawn under the polygons.
        max_features, simplify_m, max_vertices
            Display limits (see :func:`geoseg.report.mapdata.build_map_data`);
            the map's note says when they applied.
        fill_opacity
            Polygon fill opacity [0.55 over the overlay's own colors, else 0.8].

        Returns
        -------
        MapData
            What was drawn (feature count, legend, notes).
        """
        data = build_map_data(
            vectors, layer=layer, scheme=scheme, classes_raster=classes, overlay=overlay,
            max_features=max_features, simplify_m=simplify_m, max_vertices=max_vertices,
        )  # fmt: skip
        if fill_opacity is None:
            fill_opacity = 0.55 if data.overlay else 0.8
        if not 0 <= fill_opacity <= 1:
            raise InputError(f"fill_opacity must be in 0..1, got {fill_opacity}")
        self._maps += 1
        self._add(title, _map_body(f"map{self._maps}", data, fill_opacity, vectors))
        return data

    def to_html(self) -> str:
        """The whole page."""
        js, css = _html.leaflet_assets()
        from geoseg.versions import __version__

        nav = "".join(f'<a href="#{s.anchor}">{_html.esc(s.title)}</a>' for s in self._sections)
        sections = "".join(
            f'<section id="{s.anchor}"><h2>{_html.esc(s.title)}</h2>{s.body}</section>'
            for s in self._sections
        )
        sub = f'<p class="sub">{_html.esc(self.subtitle)}</p>' if self.subtitle else ""
        maps = f"<script>{js}</script><script>{_html.MAP_SCRIPT}</script>" if self._maps else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="geoseg {__version__}">'
            f"<title>{_html.esc(self.title)}</title>"
            f"<style>{css if self._maps else ''}{_html.CSS}</style></head><body>"
            f"<header><h1>{_html.esc(self.title)}</h1>{sub}"
            f'<div class="meta">Created {_html.esc(self.created)} · geoseg {__version__}</div>'
            f"</header><nav>{nav}</nav><main>{sections}</main>"
            "<footer>Written by geoseg. Self-contained: opens offline. Map drawn with Leaflet "
            "1.9.4 (BSD-2-Clause), without a basemap.</footer>"
            f"{maps}</body></html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (``.html``) atomically; returns the path."""
        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"a report must be an .html file, got {target}")
        text = self.to_html()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as err:
            raise OutputError(
                f"cannot write report {target} ({err.strerror or err}); choose another path"
            ) from err
        return target


def _bands(bands: tuple[int, ...]) -> str:
    return ", ".join(str(b) for b in bands)


def _note(text: str | None) -> str:
    return f'<p class="note">{_html.esc(text)}</p>' if text else ""


def _figure(caption: str, img: Image, *, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<figure{klass}><img src="{img.data_uri()}" alt="{_html.esc(caption)}" '
        f'width="{img.width}" height="{img.height}">'
        f"<figcaption>{_html.esc(caption)}</figcaption></figure>"
    )


def _class_figure(
    classes: str | os.PathLike[str], scheme: Sequence[ClassInfo] | None, max_width: int
) -> str:
    img, shown = class_image(classes, scheme, max_width=max_width)
    legend = _html.legend_html([(c, f"({c.id})") for c in shown])
    fig = _figure(f"{Path(classes).name}: classes", img, cls="classes")
    return fig.replace("</figure>", legend + "</figure>")


def _map_body(mid: str, data: MapData, fill_opacity: float, vectors: Any) -> str:
    spec: dict[str, Any] = {
        "bounds": data.bounds,
        "colors": {str(e.cls.id): e.cls.color for e in data.legend},
        "fill_opacity": fill_opacity,
        "footprint": data.footprint,
        "features": data.features,
    }
    toggles = f'<label><input type="checkbox" id="{mid}-polygons" checked> polygons</label>'
    if data.overlay is not None:
        spec["overlay"] = {
            "url": data.overlay.image.data_uri(),
            "bounds": data.overlay.bounds,
            "opacity": 1.0,
        }
        toggles += f'<label><input type="checkbox" id="{mid}-overlay" checked> class raster</label>'
    legend = _html.legend_html(
        [(e.cls, f"{e.features:,} polygons, {e.area_m2 / 1e4:,.1f} ha") for e in data.legend]
    )
    notes = [
        f"{data.features:,} polygons from {Path(vectors).name}, drawn in EPSG:4326 on Web "
        "Mercator without a basemap (offline); click a polygon for its class and area. "
        "The dashed line is the class raster's footprint."
        if data.footprint
        else "",
        *data.notes,
    ]
    return (
        f'<div class="map" id="{mid}" data-map="1" data-features="{data.features}"></div>'
        f'<div class="toggles">Show: {toggles}</div>{legend}'
        + "".join(_note(n) for n in notes)
        + _json_script(f"{mid}-spec", spec)
        + _json_script(f"{mid}-data", data.geojson)
    )


def _json_script(element_id: str, value: Any) -> str:
    text = _html.script_json(value)
    return f'<script type="application/json" id="{element_id}">{text}</script>'
