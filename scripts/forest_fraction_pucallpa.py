"""Sanity check of the forest bundle on the Pucallpa time series: forest fraction per year.

The Pucallpa composites (data/pucallpa, MIT, opengeos/data) are uint8 Landsat
SWIR1, NIR, red, green; the forest bundle takes green, red, NIR, so bands 4, 3, 2.
Deforestation around Pucallpa is well documented, so the fraction should fall
from 1985 to 2020; this script only reports what the model says.

    python scripts/forest_fraction_pucallpa.py [--model forest] [--out results/pucallpa-forest]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rasterio

from geoseg.pipeline.predict import predict

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="forest")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "pucallpa-forest")
    args = p.parse_args()
    for year in (1985, 2000, 2020):
        scene = ROOT / "data" / "pucallpa" / f"{year}.tif"
        [res] = predict(
            str(scene), args.model, args.out, bands=(4, 3, 2), vector=False, overwrite=True
        )
        with rasterio.open(res.outputs["classes"]) as ds:
            cls = ds.read(1)
        valid = cls != 255
        forest = float((cls[valid] == 1).mean()) if valid.any() else float("nan")
        print(f"{year}: forest {forest:.1%} of {int(valid.sum())} valid pixels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
