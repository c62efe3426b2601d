"""HTML pieces of a report: page frame, style, tables, records, maps' script.

Every resource is inline (CSS, scripts, images as data URIs), so a report
opens offline and can be mailed as one file. Links a reader clicks (Leaflet's
attribution) are the only URLs in it.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from geoseg.schemes import ClassInfo


def esc(value: Any) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` in it)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JavaScript and CSS, as vendored in ``geoseg/report/static/leaflet``.

    The CSS's ``url(images/…)`` (layer-switcher and marker icons, unused here) are
    dropped so the page asks for no file at all, and so are its comments.
    """
    root = resources.files("geoseg.report") / "static" / "leaflet"
    js = (root / "leaflet.js").read_text(encoding="utf-8")
    css = (root / "leaflet.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"url\((?!data:)[^)]*\)", "none", css)
    return js.replace("</script", "<\\/script"), css


def format_number(value: Any) -> str:
    """Numbers for reading: thousands separators, 2 decimals (4 significant below 1).

    Examples
    --------
    >>> format_number(1234567), format_number(1234.5678), format_number(0.012345)
    ('1,234,567', '1,234.57', '0.01235')
    >>> format_number(float("nan")), format_number(True), format_number(0.0)
    ('–', 'True', '0')
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        if hasattr(value, "item"):  # numpy scalars
            return format_number(value.item())
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) < 1:
        return f"{value:.4g}"
    return f"{value:,.2f}"


def is_number(value: Any) -> bool:
    """Whether a cell is numeric (right-aligned)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return isinstance(value, int | float) and not isinstance(value, bool)


def table_html(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    colors: Mapping[str, str] | None = None,
) -> str:
    """A ``<table>``: numbers right-aligned and formatted, the raw value in ``data-value``.

    ``colors`` maps a class name (or id, as text) to a color drawn as a swatch
    in the ``class_name`` / ``class_id`` cells.
    """
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    swatch_cols = {i for i, c in enumerate(columns) if c in ("class_name", "class", "name")}
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            if is_number(v):
                raw = v.item() if hasattr(v, "item") else v
                cells.append(f'<td class="num" data-value="{esc(raw)}">{format_number(raw)}</td>')
                continue
            sw = ""
            if colors and i in swatch_cols and str(v) in colors:
                sw = f'<span class="sw" style="background:{esc(colors[str(v)])}"></span>'
            cells.append(f"<td>{sw}{esc('' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def facts_html(facts: Sequence[tuple[str, str]]) -> str:
    """A definition list of short facts."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def legend_html(entries: Sequence[tuple[ClassInfo, str]]) -> str:
    """Swatches with class names and a short text each."""
    items = "".join(
        f'<li><span class="sw" style="background:{esc(c.color)}"></span>'
        f"{esc(c.name)} <small>{esc(text)}</small></li>"
        for c, text in entries
    )
    return f'<ul class="legend">{items}</ul>'


CSS = """
:root { --fg:#1d2327; --muted:#5f6b73; --line:#d9dee2; --bg:#ffffff; --soft:#f4f6f8;
  --accent:#1f5f8b; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:var(--bg); line-height:1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header { padding: 20px 32px 14px; border-bottom: 1px solid var(--line); background:var(--soft); }
header h1 { margin:0 0 4px; font-size: 24px; }
header .sub { color:var(--muted); margin:0; }
header .meta { color:var(--muted); font-size: 13px; margin-top: 6px; }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { color:var(--accent); margin-right: 16px; text-decoration:none; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section { margin-top: 26px; }
section > h2 { font-size: 19px; margin: 0 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
.note { color:var(--muted); font-size: 13px; margin: 6px 0; }
.figures { display:flex; flex-wrap:wrap; gap: 14px; align-items:flex-start; }
figure { margin:0; flex: 1 1 360px; max-width: 100%; }
figure img { max-width:100%; height:auto; display:block; border:1px solid var(--line);
  image-rendering: auto; }
figure.classes img { image-rendering: pixelated; }
figcaption { font-size: 13px; color:var(--muted); margin-top: 4px; }
table.data { border-collapse: collapse; font-size: 14px; margin: 4px 0; }
table.data th, table.data td { padding: 4px 10px; border-bottom: 1px solid var(--line);
  text-align:left; white-space: nowrap; }
table.data th { background: var(--soft); font-weight: 600; }
table.data td.num { text-align:right; font-variant-numeric: tabular-nums; }
table.data tbody tr:hover { background: #f9fbfc; }
.sw { display:inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,.35); }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap: 3px 16px;
  margin: 4px 0 10px; font-size: 14px; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; overflow-wrap:anywhere; }
details { margin-top: 6px; }
details summary { cursor:pointer; color:var(--accent); }
pre { background: var(--soft); padding: 10px 12px; overflow:auto; font-size: 12px;
  max-height: 480px; border: 1px solid var(--line); }
.map { height: 520px; border: 1px solid var(--line); background: #eef1f3; }
ul.legend { list-style:none; padding:0; margin: 8px 0; display:flex; flex-wrap:wrap;
  gap: 4px 18px; font-size: 14px; }
ul.legend small { color: var(--muted); }
.toggles { font-size: 14px; margin: 6px 0; }
.toggles label { margin-right: 16px; }
.leaflet-popup-content { font: 13px/1.4 system-ui, sans-serif; }
footer { padding: 16px 32px; color:var(--muted); font-size: 12px;
  border-top: 1px solid var(--line); }
"""


MAP_SCRIPT = """
(function () {
  "use strict";
  function fmtArea(m2) {
    if (m2 >= 1e6) return (m2 / 1e6).toLocaleString("en-US", {maximumFractionDigits: 3}) + " km²";
    return (m2 / 1e4).toLocaleString("en-US", {maximumFractionDigits: 3}) + " ha";
  }
  function popup(feature) {
    var p = feature.properties, box = document.createElement("div");
    var rows = [["class", p.class_name + " (" + p.class_id + ")"], ["area", fmtArea(p.area_m2)]];
    rows.forEach(function (r) {
      var line = document.createElement("div"), b = document.createElement("b");
      b.textContent = r[0] + ": ";
      line.appendChild(b);
      line.appendChild(document.createTextNode(r[1]));
      box.appendChild(line);
    });
    return box;
  }
  document.querySelectorAll("div.map[data-map]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.id + "-spec").textContent);
    var data = JSON.parse(document.getElementById(el.id + "-data").textContent);
    var map = L.map(el, {zoomSnap: 0.25, preferCanvas: false});
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" title="Leaflet, BSD-2-Clause">Leaflet</a>');
    L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
    var b = spec.bounds;  // west, south, east, north
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [12, 12]});
    var overlay = null;
    if (spec.overlay) {
      var o = spec.overlay.bounds;
      overlay = L.imageOverlay(spec.overlay.url, [[o[1], o[0]], [o[3], o[2]]],
        {opacity: spec.overlay.opacity, interactive: false, className: "geoseg-overlay"});
      overlay.addTo(map);
    }
    if (spec.footprint) {
      L.geoJSON(spec.footprint, {interactive: false, style: {color: "#222", weight: 1.5,
        dashArray: "5 4", fill: false, className: "geoseg-footprint"}}).addTo(map);
    }
    var colors = spec.colors;
    var layer = L.geoJSON(data, {
      style: function (f) {
        var c = colors[String(f.properties.class_id)] || "#888888";
        return {color: "#333333", weight: 0.5, opacity: 0.6, fillColor: c,
          fillOpacity: spec.fill_opacity, className: "geoseg-feature"};
      },
      onEachFeature: function (f, lyr) { lyr.bindPopup(function () { return popup(f); }); }
    }).addTo(map);
    var toggle = function (name, lyr) {
      var box = document.getElementById(el.id + "-" + name);
      if (box && lyr) box.addEventListener("change", function () {
        if (box.checked) { lyr.addTo(map); } else { map.removeLayer(lyr); }
      });
    };
    toggle("polygons", layer);
    toggle("overlay", overlay);
    // for scripting and tests: window.geosegMaps[i] = {map, polygons, overlay}
    window.geosegMaps = window.geosegMaps || [];
    window.geosegMaps.push({map: map, polygons: layer, overlay: overlay});
    var rect = el.getBoundingClientRect();
    el.setAttribute("data-rect", [Math.round(rect.left + window.scrollX),
      Math.round(rect.top + window.scrollY), Math.round(rect.width),
      Math.round(rect.height)].join(","));
    el.setAttribute("data-features-drawn",
      String(el.querySelectorAll("path.geoseg-feature").length));
  });
})();
"""
