"""Write the shipped spectral-index bundles into ``geoseg/bundles/`` (reproducible).

Run from the repository root::

    python scripts/make_index_bundles.py            # writes the bundles
    python scripts/make_index_bundles.py --check    # fails if a shipped file differs

Index bundles hold no weights, only metadata, so the same geoseg version always
writes the same bytes; ``--check`` guards against an edited card or threshold
that was not re-shipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from geoseg.models.bundle import load_bundle
from geoseg.models.indices import make_index_bundle
from geoseg.schemes import load_scheme

OUT = Path(__file__).resolve().parent.parent / "geoseg" / "bundles"

COMMON = """\
Training-free baseline: no weights, no training data. Scores are a steep
logistic of the index around the threshold, so --confidence and overlap
blending work; the class map is positive exactly where index > threshold.
Inputs: raw DN or reflectance WITHOUT an additive offset (an index is a ratio;
a per-band scale cancels, an offset does not). For Landsat Collection-2 L2 or
Sentinel-2 L2A with processing baseline >= 04.00, create a copy with the
product's scale/offset in its normalization. Select the bands with --bands
when the scene does not name them (e.g. Landsat-8 B3,B5 -> --bands 2,4 on a
B2-B5 stack). Evaluate with `geoseg eval`; see docs/models/water-baseline.md.
"""

OTSU = """\
Otsu: the threshold is measured ONCE PER SCENE from an integer histogram of
the index over all valid pixels (2000 bins on [-1, 1], read strip by strip),
before any chip is inferred, so the map does not depend on chip or block size
and is the same on the local and the Dask engine; the run record
(<stem>_run.json, bundle.index.threshold) holds the value. Known weakness:
Otsu assumes two modes; on a scene with little or no water it splits the land
distribution instead and marks much land as water. Use the fixed-threshold
bundle where water is rare.
"""

SPECS: list[dict[str, Any]] = [
    {
        "name": "ndwi",
        "index": "ndwi",
        "threshold": 0.0,
        "scheme": "water",
        "description": "Open water where NDWI = (green - nir) / (green + nir) > 0 (McFeeters 1996)",
        "card": (
            "Threshold 0 is McFeeters' original rule; turbid or shallow water can fall\nbelow it.\n"
        ),
    },
    {
        "name": "ndwi-otsu",
        "index": "ndwi",
        "threshold": "otsu",
        "scheme": "water",
        "description": "Open water where NDWI > its Otsu threshold over the scene",
        "card": OTSU,
    },
    {
        "name": "mndwi",
        "index": "mndwi",
        "threshold": 0.0,
        "scheme": "water",
        "description": "Open water where MNDWI = (green - swir1) / (green + swir1) > 0 (Xu 2006)",
        "card": "MNDWI separates water from built-up surfaces better than NDWI; needs SWIR1.\n",
    },
    {
        "name": "mndwi-otsu",
        "index": "mndwi",
        "threshold": "otsu",
        "scheme": "water",
        "description": "Open water where MNDWI > its Otsu threshold over the scene",
        "card": OTSU,
    },
    {
        "name": "ndvi",
        "index": "ndvi",
        "threshold": 0.3,
        "scheme": "forest",
        "description": "Forest where NDVI = (nir - red) / (nir + red) > 0.3",
        "card": (
            "0.3 is a conventional 'dense vegetation' cut, kept although it is not the best\n"
            "value on the one forest truth here: against NLCD forest on the Zion Landsat-8\n"
            "L1 scene it gives forest IoU 0.32, where 0.2 would give 0.57 (measured with\n"
            "data/zion/forest_mask.tif). The right value depends on the product:\n"
            "top-of-atmosphere DN (Landsat L1) depresses NDVI, and\n"
            "open woodland, crops and lawns are all green: NDVI is a vegetation index, so\n"
            "expect crops and grass as false 'forest' and sparse woodland as misses.\n"
        ),
    },
]


def build_all() -> dict[str, Any]:
    """Every shipped index bundle, by file name."""
    out = {}
    for spec in SPECS:
        bundle = make_index_bundle(
            spec["name"],
            index=spec["index"],
            threshold=spec["threshold"],
            classes=load_scheme(spec["scheme"]),
            description=spec["description"],
            card=spec["card"] + "\n" + COMMON,
        )
        out[f"{spec['name']}.bundle"] = bundle
    return out


def main() -> int:
    """Write (or check) the bundles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files")
    args = parser.parse_args()
    bad = 0
    for fname, bundle in build_all().items():
        path = OUT / fname
        if args.check:
            same = path.exists() and load_bundle(path).sha256 == bundle.sha256
            print(f"{'ok  ' if same else 'DIFF'} {path}")
            bad += not same
        else:
            bundle.save(path)
            print(f"wrote {path} (sha256 {bundle.sha256[:12]})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
