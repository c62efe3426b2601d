"""Bundles and the models inside them: metadata, architectures, predictors, indices, ONNX.

``bundle`` reads, checks and writes ``.bundle`` files, ``meta`` validates their
metadata, ``arch`` builds the torch architectures, ``predictor`` runs a bundle's
forward pass on a batch of chips, ``indices`` are the model-free index bundles
(NDWI, MNDWI, NDVI and their Otsu variants), ``onnx_export`` writes ONNX bundles.

``geoseg.models.X`` for a name of :mod:`geoseg.models.arch` still works (this package
was that module before 0.2); it is looked up lazily, so importing a bundle does not
import torch.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from geoseg.models import arch

    try:
        return getattr(arch, name)
    except AttributeError:
        raise AttributeError(f"module 'geoseg.models' has no attribute {name!r}") from None
