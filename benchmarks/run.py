"""geoseg benchmarks: ratios measured side by side in one run, each case in its own process.

Usage::

    python benchmarks/run.py                      # defaults below (about 8 minutes on 2 cores)
    python benchmarks/run.py --cheap-size 4096 --real-size 2048 --memory-sizes 2048,8192  # quick

Sections (same chips everywhere: chip 512, overlap 64, one synthetic 4-band uint8
scene with patchy structure, 512-px DEFLATE tiles):

1. Real model (smp Unet/ResNet-18, 5 classes, random weights): ``geoseg predict``
   end to end vs a one-process model-only loop (default torch threads, batch 4)
   on the same chips. Target: ratio <= 0.70.
2. Cheap model (1x1 convolution, the situation on a fast GPU): ``geoseg predict``
   vs the naive loop (whole raster in RAM, argmax, paste) and vs the read+write
   floor. Target: naive / geoseg >= 5.
3. Peak RSS of ``geoseg predict`` (cheap model) at two scene sizes 16x apart in
   area. Target: within 20 %.
4. Dask: a LocalCluster of 1 vs 2 single-threaded worker processes (real model),
   the Dask overhead against the in-process engine, and peak RSS of the client
   and of the workers at the two memory sizes. Target: >= 1.8x, within 20 %.

5. GPU busy fraction (where CUDA exists).
6. CPU backends (``--sections ort``): the torch model-only loop vs ``geoseg predict``
   on torch, on ONNX Runtime and at its default, then the shipped bundles on real
   scenes of data/ on both backends with the class rasters' pixel agreement
   (``--ort-shipped-only``: just those). Target: default <= 0.5 x model-only.

Results go to stdout and ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def make_scene(size: int) -> Path:
    """A seeded 4-band uint8 scene with structure at several scales, written in strips."""
    import rasterio
    from affine import Affine

    path = WORK / f"synthetic_{size}.tif"
    if path.exists():
        return path
    rng = np.random.default_rng(size)
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 4,
        "width": size,
        "height": size,
        "crs": "EPSG:32612",
        "transform": Affine(10, 0, 300000, 0, -10, 4_200_000),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "photometric": "MINISBLACK",
    }
    coarse = rng.random((4, size // 128 + 1, size // 128 + 1))
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        for r in range(0, size, 512):
            big = np.kron(coarse[:, r // 128 : r // 128 + 4], np.ones((1, 128, 128)))[:, :, :size]
            mid = np.kron(rng.random((4, 512 // 16, size // 16)), np.ones((1, 16, 16)))
            fine = rng.random((4, 512, size))
            strip = (0.55 * big + 0.3 * mid + 0.15 * fine) * 250
            ds.write(strip.astype("uint8"), window=((r, r + 512), (0, size)))
    os.replace(tmp, path)
    return path


def make_bundles() -> dict[str, str]:
    import torch

    import geoseg

    classes = [
        {"id": i, "name": f"class{i}", "color": f"#{40 * i:02x}{200 - 30 * i:02x}80"}
        for i in range(1, 6)
    ]
    norm = {"type": "fixed", "mean": [125.0] * 4, "std": [60.0] * 4}
    out = {}
    for name, arch, enc in [("real", "Unet", "resnet18"), ("cheap", "Pointwise", None)]:
        path = WORK / f"{name}.bundle"
        if not path.exists():
            torch.manual_seed(0)
            geoseg.ModelBundle.create(
                name=f"bench-{name}",
                architecture=arch,
                encoder=enc,
                bands=["b1", "b2", "b3", "b4"],
                classes=classes,
                normalization=norm,
                chip=512,
                overlap=64,
            ).save(path)
        out[name] = str(path)
    return out


def case(name: str, **kwargs: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "cases.py"), name, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    shown = {k: v for k, v in kwargs.items() if k not in ("scene", "bundle_path", "out")}
    if result.get("skipped"):
        return result
    print(
        f"  {name:<11} {json.dumps(shown)}"
        f"  {result['seconds']:8.2f} s  {result['peak_rss_mb']:7.0f} MB",
        flush=True,
    )
    return result


def rounds(cases: dict[str, tuple[str, dict[str, Any]]], repeat: int) -> dict[str, Any]:
    """Run the cases interleaved ``repeat`` times; keep each one's median-time run.

    Interleaving spreads slow spells of a shared machine over every case alike.
    """
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    for _ in range(repeat):
        for key, (name, kwargs) in cases.items():
            runs[key].append(case(name, **kwargs))
    out = {}
    for key, got in runs.items():
        ordered = sorted(got, key=lambda r: r["seconds"])
        median = dict(ordered[len(ordered) // 2])
        median["all_seconds"] = [round(r["seconds"], 2) for r in got]
        median["peak_rss_mb"] = max(r["peak_rss_mb"] for r in got)
        out[key] = median
    return out


def machine() -> dict[str, Any]:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def section_real(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    scene = str(make_scene(args.real_size))
    print(f"\n1. real model (Unet/ResNet-18), {args.real_size}^2, {args.repeat} interleaved rounds")
    real = bundles["real"]
    got = rounds(
        {
            "model_only": (
                "model_only",
                {"scene": scene, "bundle_path": real, "batch": 4, "threads": None},
            ),
            "geoseg": (
                "geoseg",
                {"scene": scene, "bundle_path": real, "out": out, "vector": False},
            ),
        },
        args.repeat,
    )
    ratio = got["geoseg"]["seconds"] / got["model_only"]["seconds"]
    return {"size": args.real_size, **got, "ratio_geoseg_over_model_only": ratio}


def section_cheap(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    scene = str(make_scene(args.cheap_size))
    print(f"\n2. cheap model (1x1 conv), {args.cheap_size}^2, {args.repeat} interleaved rounds")
    cheap = bundles["cheap"]
    got = rounds(
        {
            "io_floor": ("io_floor", {"scene": scene, "out": str(WORK / "floor.tif")}),
            "naive": (
                "naive",
                {"scene": scene, "bundle_path": cheap, "out": str(WORK / "naive.tif"), "batch": 4},
            ),
            "geoseg": (
                "geoseg",
                {"scene": scene, "bundle_path": cheap, "out": out, "vector": False},
            ),
            "model_only": (
                "model_only",
                {"scene": scene, "bundle_path": cheap, "batch": 4, "threads": None},
            ),
        },
        args.repeat,
    )
    return {
        "size": args.cheap_size,
        **got,
        "speedup_vs_naive": got["naive"]["seconds"] / got["geoseg"]["seconds"],
        "geoseg_over_io_floor": got["geoseg"]["seconds"] / got["io_floor"]["seconds"],
    }


def section_memory(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    print(f"\n3. peak memory, cheap model, {' vs '.join(f'{s}^2' for s in sizes)}")
    result: dict[str, Any] = {"sizes": sizes}
    for label, opts in (("default options", {}), ("block 2048 both", {"block": 2048})):
        print(f"  ({label})")
        mem = [
            case(
                "geoseg",
                scene=str(make_scene(s)),
                bundle_path=bundles["cheap"],
                out=out,
                vector=False,
                **opts,
            )
            for s in sizes
        ]
        result[label] = {"runs": mem, "rss_ratio": mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"]}
    return result


def section_dask(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    """Scaling of 1 vs 2 single-threaded Dask workers, and memory of client and workers."""
    scene = str(make_scene(args.dask_size))
    print(f"\n4. Dask LocalCluster, real model, {args.dask_size}^2, {args.repeat} rounds")
    real = bundles["real"]
    got = rounds(
        {
            "local": ("geoseg", {"scene": scene, "bundle_path": real, "out": out, "vector": False}),
            "dask_1": (
                "dask",
                {"scene": scene, "bundle_path": real, "out": out, "vector": False, "workers": 1},
            ),
            "dask_2": (
                "dask",
                {"scene": scene, "bundle_path": real, "out": out, "vector": False, "workers": 2},
            ),
        },
        args.repeat,
    )
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    print(f"  memory, cheap model, {' vs '.join(f'{s}^2' for s in sizes)}")
    mem = [
        case(
            "dask",
            scene=str(make_scene(s)),
            bundle_path=bundles["cheap"],
            out=out,
            vector=False,
            workers=2,
        )
        for s in sizes
    ]
    per_round = [
        round(a / b, 3)
        for a, b in zip(got["dask_1"]["all_seconds"], got["dask_2"]["all_seconds"], strict=True)
    ]
    chip_s = {k: round(got[k]["model_seconds"] / got[k]["chips"], 3) for k in ("dask_1", "dask_2")}
    print(f"  2 workers vs 1, per round: {per_round}; forward pass per chip: {chip_s}")
    return {
        "size": args.dask_size,
        **got,
        "speedup_2_over_1": got["dask_1"]["seconds"] / got["dask_2"]["seconds"],
        "speedup_per_round": per_round,
        "forward_seconds_per_chip": chip_s,
        "overhead_dask2_over_local": got["dask_2"]["seconds"] / got["local"]["seconds"],
        "memory": {
            "sizes": sizes,
            "runs": mem,
            "client_rss_ratio": mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"],
            "worker_rss_ratio": max(mem[-1]["worker_peak_rss_mb"])
            / max(mem[0]["worker_peak_rss_mb"]),
        },
    }


def section_gpu(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    """GPU busy fraction of geoseg.pipeline.predict (fp32 and fp16, batch 8), where CUDA exists."""
    scene = str(make_scene(args.real_size))
    print(f"\n5. GPU, real model, {args.real_size}^2")
    got = {}
    for precision in ("fp32", "fp16"):
        r = case(
            "gpu",
            scene=scene,
            bundle_path=bundles["real"],
            out=out,
            vector=False,
            batch_size=8,
            precision=precision,
        )
        if r.get("skipped"):
            print(f"  not measured: {r['skipped']}")
            return {"skipped": r["skipped"]}
        got[precision] = r
    return got


SHIPPED_CASES = (
    ("landcover-nlcd8", "data/zion/landsat8_2015-08-18_b2345.tif", {}),
    ("water", "data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [1, 2, 3, 4]}),
    ("forest", "data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [2, 3, 4]}),
    (
        "water-swir",
        "data/water/olinda_landsat7_etm_6band.tif",
        {"bands": [1, 2, 3, 4, 5, 6], "allow_domain_shift": True},
    ),
)
"""Shipped bundles on real scenes of data/ (the bands each bundle takes)."""


def agreement(a: str, b: str) -> dict[str, Any]:
    """Pixel agreement of two class rasters (share of equal pixels) and whether they are equal."""
    import rasterio

    with rasterio.open(a) as da, rasterio.open(b) as db:
        x, y = da.read(1), db.read(1)
    return {"agreement": float((x == y).mean()), "identical": bool((x == y).all())}


def section_ort(args: Any, bundles: dict[str, str], out: str) -> dict[str, Any]:
    """Torch model-only loop vs geoseg on torch vs geoseg on ONNX Runtime (issue 19)."""
    os.environ.setdefault("GEOSEG_CACHE_DIR", str(WORK / "cache"))  # exports cached once
    if args.ort_shipped_only:
        return {"shipped": section_ort_shipped(args, out)}
    scene = str(make_scene(args.real_size))
    print(f"\n6. backends, real model, {args.real_size}^2, {args.repeat} interleaved rounds")
    real = bundles["real"]
    geo = {"scene": scene, "bundle_path": real, "vector": False}
    got = rounds(
        {
            "model_only": (
                "model_only",
                {"scene": scene, "bundle_path": real, "batch": 4, "threads": None},
            ),
            "geoseg_torch": ("geoseg", {**geo, "out": f"{out}/torch", "backend": "torch"}),
            "geoseg_ort": ("geoseg", {**geo, "out": f"{out}/ort", "backend": "onnxruntime"}),
            "geoseg_auto": ("geoseg", {**geo, "out": f"{out}/auto"}),
        },
        args.repeat,
    )
    base = got["model_only"]["seconds"]
    result: dict[str, Any] = {
        "size": args.real_size,
        **got,
        "ratios_over_model_only": {
            k: round(got[k]["seconds"] / base, 3)
            for k in ("geoseg_torch", "geoseg_ort", "geoseg_auto")
        },
        "ort_agreement_vs_torch": agreement(
            got["geoseg_torch"]["classes"], got["geoseg_ort"]["classes"]
        ),
        "shipped": {},
    }
    (WORK / "ort-partial.json").write_text(json.dumps(result, indent=2))  # survives a later error
    result["shipped"] = section_ort_shipped(args, out)
    return result


def section_ort_shipped(args: Any, out: str) -> dict[str, Any]:
    """Shipped bundles on real scenes: geoseg on torch vs on ONNX Runtime, pixel agreement."""
    shipped: dict[str, Any] = {}
    for name, path, opts in SHIPPED_CASES:
        print(f"  shipped bundle {name} on {Path(path).name}")
        runs = rounds(
            {
                be: (
                    "geoseg",
                    {
                        "scene": str(HERE.parent / path),
                        "bundle_path": name,
                        "out": f"{out}/{name}-{be}",
                        "vector": False,
                        "backend": be,
                        **opts,
                    },
                )
                for be in ("torch", "onnxruntime")
            },
            args.repeat,
        )
        shipped[name] = {
            **runs,
            "ort_over_torch": round(runs["onnxruntime"]["seconds"] / runs["torch"]["seconds"], 3),
            **agreement(runs["torch"]["classes"], runs["onnxruntime"]["classes"]),
        }
    return shipped


def summary(results: dict[str, Any]) -> None:
    print("\nsummary")
    if "real" in results:
        r = results["real"]
        print(
            f"  real model: geoseg end-to-end / model-only = "
            f"{r['ratio_geoseg_over_model_only']:.2f}  (target <= 0.70)"
        )
    if "cheap" in results:
        c = results["cheap"]
        print(
            f"  cheap model: naive / geoseg = {c['speedup_vs_naive']:.2f}x  (target >= 5);"
            f" geoseg / IO floor = {c['geoseg_over_io_floor']:.1f}x"
        )
    if "memory" in results:
        m = results["memory"]
        a, b = m["sizes"][0], m["sizes"][-1]
        for label in ("default options", "block 2048 both"):
            runs = m[label]["runs"]
            print(
                f"  peak RSS {b}^2 / {a}^2, {label}: {m[label]['rss_ratio']:.2f}"
                f" ({runs[0]['peak_rss_mb']:.0f} / {runs[-1]['peak_rss_mb']:.0f} MB;"
                " target <= 1.20)"
            )
        if "cheap" in results:
            print(
                f"  cheap model-only loop peak RSS: "
                f"{results['cheap']['model_only']['peak_rss_mb']:.0f} MB"
            )
    if "gpu" in results:
        g = results["gpu"]
        if "skipped" in g:
            print(f"  gpu: not measured ({g['skipped']})")
        else:
            for p, r in g.items():
                print(
                    f"  gpu {p}: {r['seconds']:.2f} s, GPU busy {r['gpu_busy_pct_mean']}% "
                    f"on average ({r['gpu']})"
                )
    if "ort" in results:
        o = results["ort"]
        if "ratios_over_model_only" in o:
            print(f"  backends / model-only loop: {o['ratios_over_model_only']} (target <= 0.5)")
            print(f"  ORT vs torch class raster: {o['ort_agreement_vs_torch']}")
        for name, r in o["shipped"].items():
            print(
                f"  {name}: ORT / torch = {r['ort_over_torch']:.2f}, agreement "
                f"{r['agreement']:.6f}{' (identical)' if r['identical'] else ''}"
            )
    if "dask" in results:
        d = results["dask"]
        m = d["memory"]
        print(
            f"  dask: 2 workers vs 1 = {d['speedup_2_over_1']:.2f}x (target >= 1.8);"
            f" dask(2) / in-process = {d['overhead_dask2_over_local']:.2f}"
        )
        print(
            f"  dask memory {m['sizes'][-1]}^2 / {m['sizes'][0]}^2: client "
            f"{m['client_rss_ratio']:.2f}, workers {m['worker_rss_ratio']:.2f} (target <= 1.20)"
        )


SECTIONS = {
    "real": section_real,
    "cheap": section_cheap,
    "memory": section_memory,
    "dask": section_dask,
    "gpu": section_gpu,
    "ort": section_ort,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--real-size", type=int, default=4096)
    ap.add_argument("--cheap-size", type=int, default=8192)
    ap.add_argument("--dask-size", type=int, default=4096)
    ap.add_argument("--memory-sizes", default="4096,16384")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    ap.add_argument(
        "--ort-shipped-only", action="store_true", help="section ort: only the shipped bundles"
    )
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians reported")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    bundles = make_bundles()
    out = str(WORK / "out")
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    print(json.dumps(results["machine"]))
    for name in args.sections.split(","):
        results[name] = SECTIONS[name](args, bundles, out)
    summary(results)
    tail = "-shipped" if args.ort_shipped_only else ""
    target = HERE / (
        "results.json"
        if args.sections == ",".join(SECTIONS)
        else f"results-{args.sections.replace(',', '-')}{tail}.json"
    )
    target.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
