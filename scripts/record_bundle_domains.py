"""Record the input domain in shipped bundles that were trained before bundles carried one.

    python scripts/record_bundle_domains.py water forest

For each named bundle: load the training config its provenance names
(workflows/train-<name>.yaml), measure the domain of its training zones exactly
as ``geoseg train`` now does (geoseg.train.domain.training_domain), measure the
bundle's own mean confidence on the config's validation pixels with its shipped
weights (geoseg.train.loop.validation_confidence, as training does after its last
epoch), and rewrite the bundle with that domain added. Weights, config and
provenance are untouched (the test in tests/train/test_train_domain.py checks each
shipped domain against its config). Bundles retrained since then record it
themselves.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from geoseg.models.bundle import load_bundle
from geoseg.models.shipped import shipped_bundles
from geoseg.models.torch_model import build_torch_model
from geoseg.train.config import load_config
from geoseg.train.domain import training_domain
from geoseg.train.loop import prepare_data, validation_confidence

REPO = Path(__file__).resolve().parent.parent


def main(names: list[str]) -> None:
    for name in names:
        path = shipped_bundles()[name]
        config = "landcover" if name == "landcover-nlcd8" else name
        cfg = load_config(REPO / "workflows" / f"train-{config}.yaml")
        prep = prepare_data(cfg)
        domain = training_domain(prep.images, prep.counts, cfg)
        bundle = load_bundle(path)
        conf = validation_confidence(build_torch_model(bundle), prep, "cpu", False)
        if conf:
            domain = dataclasses.replace(domain, val_mean_confidence=round(conf, 4))
        bundle.with_meta(domain=domain.to_dict()).save(path)
        print(f"{name}: {domain.to_dict()}")


if __name__ == "__main__":
    main(sys.argv[1:])
