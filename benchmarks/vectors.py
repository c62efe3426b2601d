"""Vector benchmark: geoseg vectorize vs GDAL's polygonize + ogr2ogr, side by side in one run.

Usage::

    python benchmarks/vectors.py               # 8192² class raster, one round
    python benchmarks/vectors.py --repeat 3    # three interleaved rounds, medians
    python benchmarks/vectors.py --size 2048   # quick
    PYTHONPATH=$PWD python benchmarks/vectors.py --repeat 3 --json benchmarks/vectors-x.json
                                               # this checkout's geoseg (a worktree), own file

Each geoseg case records the geoseg package it imported (``geoseg_from``) and
the record the commit of the checkout, so a run says what it measured.

One seeded uint8 class raster with land-cover-like structure (smoothed noise at
five scales from 2 to 512 pixels, cut into 8 classes at quantiles: patches from
a few pixels to thousands across, ragged edges, no salt-and-pepper; 10 m pixels
in UTM 12N), then each case in its own
process, one after the other:

- ``gdal-gpkg``: ``gdal_polygonize.py`` (Debian ``gdal-bin``) to GeoPackage.
- ``gdal-geojson``: the same, then ``ogr2ogr -lco RFC7946=YES`` to GeoJSON in
  EPSG:4326 (GDAL's path to an RFC 7946 file from a raster).
- ``geoseg-gpkg`` / ``geoseg-geojson``: :func:`geoseg.vectorize` to the same
  formats (default block 1024, 4-connectivity like GDAL's default); it also joins the
  blocks, computes ``area_m2`` and ``perimeter_m`` and writes valid, oriented
  polygons.

Time is wall-clock seconds of the case's process. Peak memory is the process's
``VmHWM`` from ``/proc/self/status`` read at its end (geoseg), or, for the GDAL
tools, ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the wrapper that ran them,
which is the largest ``VmHWM`` among the tools. With ``--repeat N`` the four
cases run in turn N times (round 1: all four, round 2: all four in reverse
order, ...), so a change in the machine's load hits both sides alike; the tables use each case's
median. The 1-minute load average is recorded before and after every case (the
development machine is shared). Results go to stdout and
``benchmarks/vectors.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "vectors"
CASES = ("gdal-gpkg", "gdal-geojson", "geoseg-gpkg", "geoseg-geojson")


def class_raster(path: Path, size: int, seed: int = 0) -> None:
    """Seeded land-cover-like class raster: multi-scale smoothed noise cut into 8 classes."""
    import rasterio
    from rasterio.transform import Affine
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = np.zeros((size, size), dtype=np.float32)
    # scales in pixels, fixed whatever the size (a larger raster is more of the same
    # landscape); coarse ones drawn small and upsampled, since a sigma of hundreds of
    # pixels at full size would take minutes
    for scale, weight in ((512, 1.0), (128, 0.7), (32, 0.5), (8, 0.4), (2, 0.2)):
        n = max(4, size // scale)
        noise = ndimage.gaussian_filter(rng.standard_normal((n + 2, n + 2)), 1.0)
        up = ndimage.zoom(noise.astype(np.float32), size / n, order=1)[:size, :size]
        field += weight * up / up.std()
    step = max(1, size // 1024)
    edges = np.quantile(field[::step, ::step], np.linspace(0, 1, 9)[1:-1])
    classes = np.digitize(field, edges).astype(np.uint8)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "nodata": 255,
        "crs": "EPSG:32612",
        "transform": Affine(10.0, 0.0, 300_000.0, 0.0, -10.0, 4_200_000.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "DEFLATE",
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(classes, 1)


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_case(case: str, raster: Path, out_dir: Path) -> dict[str, Any]:
    """Run one case in this process; return its figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.glob(f"{case}.*"):
        p.unlink()
    start = time.perf_counter()
    steps: dict[str, float] = {}
    checkout = None
    if case.startswith("gdal"):
        gpkg = out_dir / f"{case}.gpkg"
        t = time.perf_counter()
        subprocess.run(
            [
                "gdal_polygonize.py",
                "-q",
                "-f",
                "GPKG",
                str(raster),
                str(gpkg),
                "classes",
                "class_id",
            ],
            check=True,
        )
        steps["gdal_polygonize"] = time.perf_counter() - t
        out = gpkg
        if case == "gdal-geojson":
            out = out_dir / f"{case}.geojson"
            t = time.perf_counter()
            subprocess.run(
                ["ogr2ogr", "-f", "GeoJSON", "-lco", "RFC7946=YES", str(out), str(gpkg)],
                check=True,
            )
            steps["ogr2ogr"] = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    else:
        import geoseg
        from geoseg.vector import vectorize

        out = out_dir / f"{case}.{case.split('-')[1]}"
        vectorize(raster, out, overwrite=True)
        peak = peak_rss_mb()
        checkout = str(Path(geoseg.__file__).parent)  # which geoseg ran (PYTHONPATH)
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "steps_s": steps,
        "output": str(out),
        "output_mb": out.stat().st_size / 1e6,
        "geoseg_from": checkout,
    }


def features(path: str) -> int:
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A case's figures: median seconds and peak over its rounds, and every round."""
    return {
        **runs[0],
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "runs": [
            {k: r[k] for k in ("round", "seconds", "peak_rss_mb", "steps_s", "load_1min")}
            for r in runs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="raster side in pixels")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--raster", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=HERE / "vectors.json")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians)")
    args = parser.parse_args()
    if args.case:  # child: one case, figures as JSON on the last line of stdout
        print(json.dumps(run_case(args.case, args.raster, WORK / "out")))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    raster = WORK / f"classes_{args.size}.tif"
    if not raster.exists():
        t = time.perf_counter()
        class_raster(raster, args.size)
        print(f"built {raster.name} in {time.perf_counter() - t:.1f} s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for round_ in range(1, args.repeat + 1):
        for case in CASES if round_ % 2 else CASES[::-1]:  # even rounds in reverse order
            load_before = os.getloadavg()[0]
            proc = subprocess.run(
                [sys.executable, __file__, "--case", case, "--raster", str(raster)],
                check=True,
                capture_output=True,
                text=True,
            )
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["features"] = features(res["output"])
            res["round"] = round_
            res["load_1min"] = [load_before, os.getloadavg()[0]]
            runs[case].append(res)
            print(
                f"round {round_} {case:15s} {res['seconds']:8.1f} s  "
                f"{res['peak_rss_mb']:8.0f} MB  {res['features']:9d} features  "
                f"{res['output_mb']:8.1f} MB file  "
                f"load {load_before:.1f}->{res['load_1min'][1]:.1f}",
                flush=True,
            )
    results = {case: _median_run(r) for case, r in runs.items()}
    ratios = {
        fmt: {
            "time_gdal_over_geoseg": results[f"gdal-{fmt}"]["seconds"]
            / results[f"geoseg-{fmt}"]["seconds"],
            "memory_gdal_over_geoseg": results[f"gdal-{fmt}"]["peak_rss_mb"]
            / results[f"geoseg-{fmt}"]["peak_rss_mb"],
        }
        for fmt in ("gpkg", "geojson")
    }
    for fmt, r in ratios.items():
        print(
            f"{fmt}: GDAL / geoseg time {r['time_gdal_over_geoseg']:.2f}x, "
            f"peak memory {r['memory_gdal_over_geoseg']:.2f}x"
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit or None,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "gdal_tools": subprocess.run(
                ["ogr2ogr", "--version"], capture_output=True, text=True, check=True
            ).stdout.strip(),
        },
        "raster": {"path": str(raster.relative_to(HERE.parent)), "size": args.size},
        "repeat": args.repeat,
        "cases": results,  # per case: median seconds and peak, every round under "runs"
        "ratios": ratios,
    }
    args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
