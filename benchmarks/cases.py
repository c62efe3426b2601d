"""One benchmark case per process, so each peak RSS is its own.

Run by ``benchmarks/run.py``; prints one JSON line: ``{"case", "seconds", "peak_rss_mb", ...}``.
``seconds`` is the work time (after imports and model construction), measured
the same way for every case.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CHIP, OVERLAP = 512, 64


def peak_rss_mb() -> float:
    from geoseg.pipeline.record import peak_rss_mb as vmhwm  # VmHWM: not inherited across exec

    return vmhwm()


def chip_origins(n: int) -> list[int]:
    from geoseg.grid.chips import chip_starts

    return list(chip_starts(n, CHIP, CHIP - OVERLAP))


def model_only(scene: str, bundle_path: str, batch: int, threads: int | None) -> dict[str, Any]:
    """Forward passes only, on the scene's own chips (read and normalized beforehand per batch)."""
    import rasterio
    import torch

    import geoseg

    if threads:
        torch.set_num_threads(threads)
    bundle = geoseg.load_bundle(bundle_path)
    model = bundle.build_model()
    spec = bundle.meta["normalization"]
    mean = np.array(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.array(spec["std"], dtype=np.float32)[:, None, None]
    forward = 0.0
    # a small GDAL cache: this case measures the model's own footprint, not GDAL's
    with rasterio.Env(GDAL_CACHEMAX=32 * 2**20), rasterio.open(scene) as ds, torch.inference_mode():
        origins = [(r, c) for r in chip_origins(ds.height) for c in chip_origins(ds.width)]
        for k in range(0, len(origins), batch):
            chips = [
                ds.read(window=((r, r + CHIP), (c, c + CHIP))) for r, c in origins[k : k + batch]
            ]
            x = torch.from_numpy((np.stack(chips).astype(np.float32) - mean) / std)
            t = time.perf_counter()
            torch.softmax(model(x), dim=1)
            forward += time.perf_counter() - t
    return {"seconds": forward, "chips": len(origins), "torch_threads": torch.get_num_threads()}


def run_geoseg(scene: str, bundle_path: str, out: str, **options: Any) -> dict[str, Any]:
    import geoseg
    from geoseg.engine.local import LocalEngine

    bundle = geoseg.load_bundle(bundle_path)
    # build the model outside the timed part, as model_only does (ORT: its cached export);
    # resolving the device imports torch, which a run does on every backend: not timed either
    engine = LocalEngine(options.get("threads"), backend=options.get("backend", "auto"))
    engine.prepare(bundle, engine.resolve_device("cpu"), options.get("precision", "fp32"))
    t = time.perf_counter()
    [res] = geoseg.predict(scene, bundle, out, overwrite=True, device="cpu", **options)
    seconds = time.perf_counter() - t
    rec = res.record
    return {
        "seconds": seconds,
        "chips": rec["chips_inferred"],
        "timings": rec["timings_s"],
        "block_seconds": rec["block_seconds"],
        "execution": rec.get("execution"),
        "classes": res.outputs["classes"],
    }


def naive(scene: str, bundle_path: str, out: str, batch: int) -> dict[str, Any]:
    """The loop people write first: whole raster in RAM, paste argmax chip centres, write."""
    import rasterio
    import torch

    import geoseg

    bundle = geoseg.load_bundle(bundle_path)
    model = bundle.build_model()
    spec = bundle.meta["normalization"]
    mean = np.array(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.array(spec["std"], dtype=np.float32)[:, None, None]
    t = time.perf_counter()
    with rasterio.open(scene) as ds:
        image = ds.read()
        profile = ds.profile
    rows, cols = image.shape[1:]
    result = np.zeros((rows, cols), dtype=np.uint8)
    origins = [(r, c) for r in chip_origins(rows) for c in chip_origins(cols)]
    h = OVERLAP // 2
    with torch.inference_mode():
        for k in range(0, len(origins), batch):
            group = origins[k : k + batch]
            x = np.stack([image[:, r : r + CHIP, c : c + CHIP] for r, c in group]).astype(
                np.float32
            )
            pred = torch.argmax(model(torch.from_numpy((x - mean) / std)), dim=1).numpy()
            for (r, c), p in zip(group, pred, strict=True):
                r0, c0 = (0 if r == 0 else h), (0 if c == 0 else h)
                result[r + r0 : r + CHIP, c + c0 : c + CHIP] = p[r0:, c0:]
    profile.update(
        count=1, dtype="uint8", nodata=None, compress="deflate", photometric="MINISBLACK"
    )
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(result, 1)
    return {"seconds": time.perf_counter() - t, "chips": len(origins)}


def io_floor(scene: str, out: str) -> dict[str, Any]:
    """Read every chip of the grid and write an empty uint8 raster of the scene's size."""
    import rasterio

    t = time.perf_counter()
    with rasterio.open(scene) as ds:
        profile = ds.profile
        n = 0
        for r in chip_origins(ds.height):
            for c in chip_origins(ds.width):
                ds.read(window=((r, r + CHIP), (c, c + CHIP)))
                n += 1
    profile.update(count=1, dtype="uint8", compress="deflate", photometric="MINISBLACK")
    empty = np.zeros((512, profile["width"]), dtype=np.uint8)
    with rasterio.open(out, "w", **profile) as dst:
        for r in range(0, profile["height"], 512):
            h = min(512, profile["height"] - r)
            dst.write(empty[:h], 1, window=((r, r + h), (0, profile["width"])))
    return {"seconds": time.perf_counter() - t, "chips": n}


def run_dask(
    scene: str, bundle_path: str, out: str, workers: int, **options: Any
) -> dict[str, Any]:
    """geoseg.predict on the LocalCluster ``--workers N`` starts (single-threaded workers)."""
    import geoseg
    from geoseg.engine.backend import warm
    from geoseg.engine.dask import local_cluster
    from geoseg.pipeline.record import peak_rss_mb as vmhwm

    with local_cluster(workers) as client:
        # models built before the clock starts, as elsewhere, on the backend the run uses
        client.run(warm, bundle_path, options.get("backend", "auto"))
        bundle = geoseg.load_bundle(bundle_path)
        t = time.perf_counter()
        [res] = geoseg.predict(
            scene, bundle, out, overwrite=True, device="cpu", client=client, **options
        )
        seconds = time.perf_counter() - t
        workers_rss = sorted(client.run(vmhwm).values())
    return {
        "seconds": seconds,
        "chips": res.record["chips_inferred"],
        "workers": workers,
        "worker_peak_rss_mb": [round(v, 1) for v in workers_rss],
        # forward-pass seconds summed over workers, and who ran how many chips: tells a
        # slower core (both workers busy) from time lost between the forward passes
        "model_seconds": res.record["block_seconds"]["model"],
        "chips_by_worker": res.record.get("chips_by_worker"),
    }


def _gpu_sampler(stop: Any, samples: list[float], index: int = 0) -> None:
    """Poll the GPU's utilization (percent busy over the last sample period) at ~10 Hz."""
    import subprocess

    query = [
        "nvidia-smi",
        f"--id={index}",
        "--query-gpu=utilization.gpu",
        "--format=csv,noheader,nounits",
    ]
    while not stop.is_set():
        try:
            out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
            samples.append(float(out.strip().splitlines()[0]))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return
        stop.wait(0.1)


def run_gpu(scene: str, bundle_path: str, out: str, **options: Any) -> dict[str, Any]:
    """geoseg.predict on CUDA while nvidia-smi is sampled: how busy the GPU is kept."""
    import threading

    import torch

    if not torch.cuda.is_available():
        return {"seconds": None, "skipped": "no CUDA GPU on this machine"}
    import geoseg
    from geoseg.models.predictor import warm

    warm(bundle_path, "cuda", options.get("precision", "fp32"))
    bundle = geoseg.load_bundle(bundle_path)
    stop, samples = threading.Event(), []  # type: ignore[var-annotated]
    sampler = threading.Thread(target=_gpu_sampler, args=(stop, samples), daemon=True)
    sampler.start()
    t = time.perf_counter()
    [res] = geoseg.predict(scene, bundle, out, overwrite=True, device="cuda", **options)
    seconds = time.perf_counter() - t
    stop.set()
    sampler.join()
    return {
        "seconds": seconds,
        "chips": res.record["chips_inferred"],
        "gpu": torch.cuda.get_device_name(0),
        "gpu_busy_pct_mean": float(np.mean(samples)) if samples else None,
        "gpu_samples": len(samples),
        "block_seconds": res.record["block_seconds"],
    }


CASES = {
    "model_only": model_only,
    "geoseg": run_geoseg,
    "naive": naive,
    "io_floor": io_floor,
    "dask": run_dask,
    "gpu": run_gpu,
}


def main() -> None:
    case, kwargs = sys.argv[1], json.loads(sys.argv[2])
    result = CASES[case](**kwargs)
    result.update(case=case, peak_rss_mb=round(peak_rss_mb(), 1))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
