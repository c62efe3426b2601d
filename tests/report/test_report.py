"""geoseg.report: a report of a real predict run, read as HTML and opened in real Chromium.

The run is ``landcover-nlcd8`` on a 384 × 384 crop of the Zion Landsat-8
scene. Chromium (Debian's ``chromium``, installed by ``make test``) loads the
report headless: the DOM after Leaflet ran must hold one SVG path per
inlined polygon, the screenshot must show the scheme's colors where the map
is, and the network log must show no request made by the page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from PIL import Image
from rasterio.windows import Window

import geoseg
from geoseg.analysis.stats import class_areas
from geoseg.errors import InputError
from geoseg.io.styles import data_layer
from geoseg.report import Report, build_map_data, report_for_predict
from geoseg.report._html import format_number
from tests.common import ZION, crop_raster

CROP = Window(col_off=384, row_off=1024, width=384, height=384)  # river, town, fields, forest
WINDOW = (1280, 2400)
LEAFLET = Path(geoseg.__file__).parent / "report" / "static" / "leaflet"
NODATA_GRAY = (235, 235, 235)


# ---------------------------------------------------------------- helpers


@dataclass
class Tag:
    name: str
    attrs: dict[str, str]


class _Collect(HTMLParser):
    """Every start tag with its attributes, and the text of <style>/<script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[Tag] = []
        self.text: dict[str, list[str]] = {"style": [], "script": []}
        self.scripts: dict[str, str] = {}
        self._in: Tag | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        t = Tag(tag, {k: v or "" for k, v in attrs})
        self.tags.append(t)
        if tag in self.text:
            self._in = t

    def handle_endtag(self, tag: str) -> None:
        if tag in self.text:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.text[self._in.name].append(data)
            if "id" in self._in.attrs:
                self.scripts[self._in.attrs["id"]] = (
                    self.scripts.get(self._in.attrs["id"], "") + data
                )


def parse(text: str) -> _Collect:
    p = _Collect()
    p.feed(text)
    return p


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "Chromium is not installed, so the report cannot be checked in a real browser; "
            "install Debian's chromium: make test does (scripts/install-system-deps.sh)"
        )
    return exe


@dataclass
class BrowserView:
    dom: str
    screenshot: Image.Image
    page_requests: list[str]  # URLs the page itself asked the network stack for


def open_in_chromium(page: Path, out: Path, window: tuple[int, int] = WINDOW) -> BrowserView:
    """Load ``page`` headless: DOM after scripts ran, a screenshot, the page's network requests."""
    out.mkdir(parents=True, exist_ok=True)
    shot, netlog = out / "shot.png", out / "net.json"
    cmd = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        f"--window-size={window[0]},{window[1]}",
        "--virtual-time-budget=5000",
        f"--log-net-log={netlog}",
        f"--screenshot={shot}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.exists(), f"chromium wrote no screenshot: {run.stderr[-2000:]}"
    events = json.loads(netlog.read_text())["events"]
    # Requests the page made carry its file:// isolation key; Chromium's own background
    # traffic (update checks, clock sync) carries 'null null' and is not the page's doing.
    page_requests = sorted(
        {
            e["params"]["url"]
            for e in events
            if "url" in e.get("params", {})
            and "file://" in str(e["params"].get("network_isolation_key", ""))
        }
    )
    with Image.open(shot) as img:
        screenshot = img.convert("RGB")
    return BrowserView(run.stdout, screenshot, page_requests)


def map_element(dom: str) -> dict[str, str]:
    [el] = [t.attrs for t in parse(dom).tags if t.attrs.get("data-map") == "1"]
    return el


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def color_counts(img: np.ndarray, colors: dict[str, str], tol: int = 2) -> dict[str, int]:
    return {
        name: int((np.abs(img.astype(int) - rgb(c)).max(axis=-1) <= tol).sum())
        for name, c in colors.items()
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real predict run on the crop, its report, and Chromium's view of both reports."""
    root = tmp_path_factory.mktemp("report")
    scene = crop_raster(ZION, root / "zion.tif", CROP)
    bundle = geoseg.load_bundle("landcover-nlcd8")
    [res] = geoseg.predict(scene, bundle, root / "out", vector=True)
    html_path = report_for_predict(res, root / "out" / "report.html")
    # polygons alone (no raster under them, opaque fill): the colors must come from the SVG
    only = Report("polygons only")
    only.add_map("Map", res.outputs["vector"], scheme=bundle.classes, overlay=False, fill_opacity=1)
    only_path = only.write(root / "only" / "report.html")
    # open the popup of the largest polygon, as a click would
    with only_path.open("a", encoding="utf-8") as f:
        f.write(
            "<script>var g = window.geosegMaps[0], big = null;"
            "g.polygons.eachLayer(function (l) { if (!big || l.feature.properties.area_m2 >"
            " big.feature.properties.area_m2) big = l; });"
            "big.getPopup().options.autoPan = false; big.openPopup();</script>"
        )
    control = root / "control" / "page.html"
    control.parent.mkdir()
    control.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    with ThreadPoolExecutor(3) as pool:
        views = list(
            pool.map(
                lambda a: open_in_chromium(*a),
                [
                    (html_path, root / "browser"),
                    (only_path, root / "browser_only", (1280, 800)),
                    (control, root / "browser_control", (400, 300)),
                ],
            )
        )
    return {
        "res": res,
        "bundle": bundle,
        "html": html_path,
        "text": html_path.read_text(encoding="utf-8"),
        "view": views[0],
        "only": views[1],
        "control": views[2],
    }


# ---------------------------------------------------------------- the page as HTML


def test_vendored_leaflet_matches_its_recorded_provenance() -> None:
    readme = (LEAFLET / "README.md").read_text()
    for name in ("leaflet.js", "leaflet.css", "LICENSE"):
        digest = hashlib.sha256((LEAFLET / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}` \| [^|]+ \| `{digest}`", readme), name
    assert "BSD 2-Clause" in (LEAFLET / "LICENSE").read_text()
    assert "1.9.4" in (LEAFLET / "leaflet.js").read_text()[:200]


def test_report_references_no_external_resource(run: dict[str, Any]) -> None:
    doc = parse(run["text"])
    for t in doc.tags:
        for attr in ("src", "srcset", "poster", "data", "background"):
            if attr in t.attrs:
                assert t.attrs[attr].startswith("data:"), (t.name, attr, t.attrs[attr][:80])
        if t.name == "link":
            pytest.fail(f"the report links a resource: {t.attrs}")
        if t.name == "a":  # links a reader clicks: in-page anchors here
            assert t.attrs.get("href", "").startswith("#"), t.attrs
    style = "".join(doc.text["style"])
    assert "@import" not in style
    assert all(u.startswith("data:") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", style))
    # the only URLs in the file: Leaflet's SVG namespace name (never fetched) and its
    # attribution link (clicked by a reader)
    urls = set(re.findall(r"https?://[^\s\"'<>)\\]+", run["text"]))
    assert urls <= {"http://www.w3.org/2000/svg", "https://leafletjs.com"}, urls
    assert "<script src" not in run["text"]


def test_the_browser_made_no_network_request(run: dict[str, Any]) -> None:
    assert run["view"].page_requests == []
    assert run["only"].page_requests == []
    # the check itself works: a page with one remote image is caught
    assert run["control"].page_requests == ["http://127.0.0.1:9/x.png"]


def test_images_are_data_uris_of_the_scene_and_the_classes(run: dict[str, Any]) -> None:
    imgs = [t.attrs for t in parse(run["text"]).tags if t.name == "img"]
    assert len(imgs) == 3  # true color, false color, classes
    decoded = []
    for a in imgs:
        head, payload = a["src"].split(",", 1)
        assert head in ("data:image/png;base64", "data:image/jpeg;base64")
        with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
            decoded.append(img.convert("RGB"))
            assert (img.width, img.height) == (int(a["width"]), int(a["height"]))
    # band names come from the bundle the run used (blue, green, red, nir): no fallback note
    assert "true color (bands 3, 2, 1)" in imgs[0]["alt"]
    assert "false color, nir/red/green (bands 4, 3, 2)" in imgs[1]["alt"]
    assert "band names do not say" not in run["text"]
    # the class image is the class raster, pixel for pixel, in the scheme's colors
    classes = np.asarray(decoded[2])
    with rasterio.open(run["res"].outputs["classes"]) as ds:
        ids = ds.read(1)
    lut = {c.id: c.rgb for c in run["bundle"].classes}
    expected = np.array([[lut.get(int(v), NODATA_GRAY) for v in row] for row in ids])
    assert classes.shape == expected.shape
    assert (classes == expected).all()
    # true color is a real stretch of the scene, not a flat image
    true = np.asarray(decoded[0]).astype(float)
    assert true.std() > 20 and 40 < true.mean() < 215


def test_area_table_matches_geoseg_stats(run: dict[str, Any]) -> None:
    table = class_areas(run["res"].outputs["classes"])
    text = run["text"]
    start = text.index(">Area per class</h2>")
    section = text[start : text.index("</table>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1])
    assert len(rows) == len(table.rows) == 7  # no herbaceous in this crop
    for html_row, row in zip(rows, table.rows, strict=True):
        cells = re.findall(r"<td[^>]*>(?:<span[^>]*></span>)?([^<]*)</td>", html_row)
        values = re.findall(r'data-value="([^"]*)"', html_row)
        expect = row.values()
        assert cells[1] == row.class_name
        numeric = [v for v in expect if not isinstance(v, str)]
        assert [float(v) for v in values] == [float(v) for v in numeric]
        assert [c for c in cells if c != row.class_name] == [format_number(v) for v in numeric]
    [shrub] = [r for r in table.rows if r.class_name == "shrubland"]
    assert shrub.pixels >= 1000  # shrubland pixels, printed with separators
    assert re.search(rf'data-value="{shrub.pixels}">{shrub.pixels:,}<', section)


def test_run_record_facts_and_full_json(run: dict[str, Any]) -> None:
    text = run["text"]
    record = run["res"].record
    assert "<dt>bundle</dt><dd>landcover-nlcd8 (Unet / resnet18), sha256 " in text
    assert f"{record['chips_inferred']:,} inferred of {record['chips_total']:,}" in text
    pre = re.search(r"<summary>Full record \(JSON\)</summary><pre>(.*?)</pre>", text, re.S)
    assert pre is not None
    import html as html_mod

    assert json.loads(html_mod.unescape(pre.group(1))) == json.loads(
        Path(run["res"].outputs["run"]).read_text()
    )


# ---------------------------------------------------------------- the page in Chromium


def test_chromium_draws_one_path_per_inlined_polygon(run: dict[str, Any]) -> None:
    doc = parse(run["text"])
    inlined = json.loads(doc.scripts["map1-data"])
    on_disk = pyogrio.read_info(
        run["res"].outputs["vector"], layer=data_layer(run["res"].outputs["vector"])
    )["features"]
    assert len(inlined["features"]) == on_disk == 504  # small run: nothing capped
    el = map_element(run["view"].dom)
    assert "leaflet-container" in el["class"]
    assert int(el["data-features-drawn"]) == len(inlined["features"])
    assert run["view"].dom.count('class="geoseg-feature leaflet-interactive"') == on_disk
    assert len(re.findall(r'<path class="geoseg-footprint', run["view"].dom)) == 1
    assert "leaflet-control-scale-line" in run["view"].dom
    assert (
        len(re.findall(r'<img class="leaflet-image-layer[^"]* geoseg-overlay"', run["view"].dom))
        == 1
    )
    assert "geoseg-overlay" not in run["only"].dom.split("<script")[0]


def test_clicking_a_polygon_shows_its_class_and_area(run: dict[str, Any]) -> None:
    gdf = pyogrio.read_dataframe(
        run["res"].outputs["vector"], layer=data_layer(run["res"].outputs["vector"])
    )
    big = gdf.loc[gdf["area_m2"].idxmax()]
    popup = re.search(r'<div class="leaflet-popup-content"[^>]*>(.*?)</div></div>', run["only"].dom)
    assert popup is not None
    text = re.sub(r"<[^>]+>", "", popup.group(1))
    area = f"{big['area_m2'] / 1e6:,.3f}".rstrip("0").rstrip(".")  # the largest is km²-sized
    assert text == f"class: {big['class_name']} ({big['class_id']})area: {area} km²"


def _map_pixels(view: BrowserView) -> np.ndarray:
    left, top, width, height = (int(v) for v in map_element(view.dom)["data-rect"].split(","))
    assert width > 300 and height > 300
    return np.asarray(view.screenshot)[top : top + height, left : left + width]


@pytest.mark.parametrize("which", ["view", "only"])
def test_screenshot_shows_the_class_colors_where_the_map_is(
    run: dict[str, Any], which: str
) -> None:
    pixels = _map_pixels(run[which])
    assert pixels.std() > 20  # not blank
    table = class_areas(run["res"].outputs["classes"])
    colors = {c.name: c.color for c in run["bundle"].classes}
    counts = color_counts(pixels, colors)
    painted = sum(counts.values())
    # the map's own background (no basemap) is #eef1f3; everything else is drawn
    drawn = int((np.abs(pixels.astype(int) - rgb("#eef1f3")).max(axis=-1) > 3).sum())
    assert drawn > 0.2 * pixels.shape[0] * pixels.shape[1]
    assert painted > 0.6 * drawn  # mostly class fill (the rest: outlines, controls, popup)
    for row in table.rows:
        if row.share >= 0.01:  # every class with 1 % of the area is on screen
            assert counts[row.class_name] > 50, (row.class_name, counts)
    shrub = counts["shrubland"] / painted  # the largest class, 58 % of the raster
    assert abs(shrub - [r.share for r in table.rows if r.class_name == "shrubland"][0]) < 0.1


# ---------------------------------------------------------------- builder pieces, no browser


def test_map_caps_and_simplifies_for_display_keeping_a_coverage(run: dict[str, Any]) -> None:
    gpkg = run["res"].outputs["vector"]
    capped = build_map_data(gpkg, max_features=50, simplify_m=0)
    assert capped.features == 50 and capped.source_features == 504
    assert "Showing the 50 largest of 504 polygons" in capped.notes[0]
    kept = sorted(f["properties"]["area_m2"] for f in json.loads(capped.geojson)["features"])
    all_areas = sorted(pyogrio.read_dataframe(gpkg, layer=data_layer(gpkg))["area_m2"])
    assert kept == pytest.approx(all_areas[-50:])
    simple = build_map_data(gpkg, simplify_m=90)
    assert simple.features == 504 and "90 m tolerance" in simple.notes[0]
    before, after = (
        int(v.replace(",", "")) for v in re.findall(r"([\d,]+) → ([\d,]+)", simple.notes[0])[0]
    )
    assert after < 0.7 * before
    geoms = shapely.from_geojson(
        [json.dumps(f["geometry"]) for f in json.loads(simple.geojson)["features"]]
    )
    assert shapely.is_valid(geoms).all()
    assert bool(shapely.coverage_is_valid(geoms))  # neighbours still share their edges
    exact = build_map_data(gpkg)  # few vertices: nothing simplified
    assert exact.notes == () and exact.footprint is None


def test_quicklooks_fall_back_to_band_order_and_say_so(tmp_path: Path) -> None:
    scene = tmp_path / "nameless.tif"
    with rasterio.open(ZION) as src:
        profile = {**src.profile, "width": 64, "height": 48}
        profile["transform"] = src.window_transform(Window(400, 1100, 64, 48))
        with rasterio.open(scene, "w", **profile) as dst:
            dst.write(src.read(window=Window(400, 1100, 64, 48)))
    r = Report("fallback")
    r.add_quicklooks(scene=scene)
    text = r.to_html()
    assert "True color: bands 3, 2, 1 as red, green, blue: the band names do not say" in text
    assert "False color: bands 4, 3, 2 as nir, red, green" in text
    r2 = Report("named")
    r2.add_quicklooks(scene=scene, band_names=["blue", "green", "red", "nir"])
    assert "band names do not say" not in r2.to_html()


def test_tables_from_names_and_rows_mappings_dataframes_and_to_rows() -> None:
    import pandas as pd

    class Transitions:
        columns = ("from", "to", "area_ha")

        def to_rows(self) -> list[dict[str, Any]]:
            return [{"from": "forest", "to": "bare", "area_ha": 1234.5}]

    r = Report("tables")
    r.add_table("a", ["class", "pixels"], [("water", 1234567)], note="n <b>")
    r.add_table("b", [{"class": "forest", "share": 0.25}])
    r.add_table("c", pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}))
    r.add_table("d", Transitions())
    text = r.to_html()
    assert '<td class="num" data-value="1234567">1,234,567</td>' in text
    assert '<td class="num" data-value="0.25">0.25</td>' in text
    assert "<th>x</th><th>y</th>" in text and '<td class="num" data-value="2">2</td>' in text
    assert '<td>forest</td><td>bare</td><td class="num" data-value="1234.5">1,234.50</td>' in text
    assert "n &lt;b&gt;" in text  # notes are text, not HTML
    assert r.sections == ("a", "b", "c", "d")
    assert "<script" not in text  # no map: no script at all


def test_bad_input_gets_a_clear_error(run: dict[str, Any], tmp_path: Path) -> None:
    r = Report("errors")
    with pytest.raises(InputError, match="a row has 1 cells but there are 2 columns"):
        r.add_table("t", ["a", "b"], [(1,)])
    with pytest.raises(InputError, match="cannot read a int"):
        r.add_table("t", 5)
    with pytest.raises(InputError, match="must be an .html file"):
        r.write(tmp_path / "report.txt")
    nocls = tmp_path / "plain.geojson"
    nocls.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1},'
        '"geometry":{"type":"Point","coordinates":[0,0]}}]}'
    )
    with pytest.raises(InputError, match="no 'class_id' column"):
        r.add_map("m", nocls)
    with pytest.raises(InputError, match="cannot read polygons"):
        r.add_map("m", tmp_path / "missing.gpkg")
    with pytest.raises(InputError, match="holds 0 run records"):
        report_for_predict(tmp_path, tmp_path / "r.html")
    with pytest.raises(InputError, match="19 bytes: not a PNG, JPEG, GIF or WebP image"):
        r.add_images("i", [("x", b"not an image at all")])


def test_write_is_atomic_and_replaces(run: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    out = report_for_predict(Path(run["res"].outputs["run"]).parent, target, title="again")
    assert out == target and "<title>again</title>" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporaries left


@pytest.mark.parametrize("fmt", ["geojson", "fgb", "parquet"])
def test_map_reads_every_vector_format_like_the_gpkg(
    run: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    res = run["res"]
    other = geoseg.vectorize(res.outputs["classes"], tmp_path / f"zion.{fmt}").path
    utm = build_map_data(res.outputs["vector"], classes_raster=res.outputs["classes"])
    again = build_map_data(other, classes_raster=res.outputs["classes"], overlay=False)
    assert utm.features == again.features == 504
    assert again.bounds == pytest.approx(utm.bounds, abs=1e-6)
    assert [(e.cls, e.features) for e in again.legend] == [(e.cls, e.features) for e in utm.legend]
    assert utm.overlay is not None and again.overlay is None
    # the overlay sits inside the footprint's bounds, which hold every polygon
    west, south, east, north = utm.overlay.bounds
    assert utm.bounds[0] <= west < east <= utm.bounds[2]
    assert utm.bounds[1] <= south < north <= utm.bounds[3]


def test_warnings_of_the_run_come_before_the_findings(tmp_path: Path) -> None:
    """landcover-nlcd8 forced onto the 8-bit NAIP photo: the report says the map is degenerate
    (one class over every pixel)."""
    scene = Path(__file__).resolve().parents[2] / "data" / "water" / "naip_lakes_2020-08-31.tif"
    [res] = geoseg.predict(
        scene,
        "landcover-nlcd8",
        tmp_path,
        vector=False,
        sensor="naip",
        allow_domain_shift=True,
    )
    assert any("results look degenerate" in w for w in res.record["warnings"])
    html = report_for_predict(res, tmp_path / "report.html").read_text(encoding="utf-8")
    warned = html.index("Warnings: read these before the numbers")
    assert re.search(r"results look degenerate: [a-z]+ covers 100\.0%", html)
    assert "(the scene looks like 8-bit data)" in html
    assert warned < html.index("Area per class")
