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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--real-size", type=int, default=4096)
    ap.add_argument("--cheap-size", type=int, default=8192)
    ap.add_argument("--memory-sizes", default="4096,16384")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians reported")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    bundles = make_bundles()
    out = str(WORK / "out")
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    print(json.dumps(results["machine"]))

    rep = args.repeat
    if not args.skip_real:
        scene = str(make_scene(args.real_size))
        print(f"\n1. real model (Unet/ResNet-18), {args.real_size}^2, {rep} interleaved rounds")
        got = rounds(
            {
                "model_only": (
                    "model_only",
                    {"scene": scene, "bundle_path": bundles["real"], "batch": 4, "threads": None},
                ),
                "geoseg": (
                    "geoseg",
                    {"scene": scene, "bundle_path": bundles["real"], "out": out, "vector": False},
                ),
            },
            rep,
        )
        results["real"] = {
            "size": args.real_size,
            **got,
            "ratio_geoseg_over_model_only": got["geoseg"]["seconds"] / got["model_only"]["seconds"],
        }

    scene = str(make_scene(args.cheap_size))
    print(f"\n2. cheap model (1x1 conv), {args.cheap_size}^2, {rep} interleaved rounds")
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
        rep,
    )
    results["cheap"] = {
        "size": args.cheap_size,
        **got,
        "speedup_vs_naive": got["naive"]["seconds"] / got["geoseg"]["seconds"],
        "geoseg_over_io_floor": got["geoseg"]["seconds"] / got["io_floor"]["seconds"],
    }

    sizes = [int(s) for s in args.memory_sizes.split(",")]
    print(f"\n3. peak memory, cheap model, {' vs '.join(f'{s}^2' for s in sizes)}")
    results["memory"] = {"sizes": sizes}
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
        results["memory"][label] = {
            "runs": mem,
            "rss_ratio": mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"],
        }
    results["memory"]["model_only_rss_mb"] = results["cheap"]["model_only"]["peak_rss_mb"]

    print("\nsummary")
    if "real" in results:
        r = results["real"]
        print(
            "  real model: geoseg end-to-end / model-only = "
            f"{r['ratio_geoseg_over_model_only']:.2f}"
            "  (target <= 0.70)"
        )
    c = results["cheap"]
    print(
        f"  cheap model: naive / geoseg = {c['speedup_vs_naive']:.2f}x  (target >= 5);"
        f" geoseg / IO floor = {c['geoseg_over_io_floor']:.1f}x"
    )
    m = results["memory"]
    for label in ("default options", "block 2048 both"):
        runs = m[label]["runs"]
        print(
            f"  peak RSS {sizes[-1]}^2 / {sizes[0]}^2, {label}: {m[label]['rss_ratio']:.2f}"
            f" ({runs[0]['peak_rss_mb']:.0f} / {runs[-1]['peak_rss_mb']:.0f} MB; target <= 1.20)"
        )
    print(f"  cheap model-only loop peak RSS: {m['model_only_rss_mb']:.0f} MB")
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
