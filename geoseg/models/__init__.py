"""Bundles and the models inside them: file format, kinds, predictors, indices, ONNX.

The modules, bottom up (each imports only those before it)::

    schema       BundleMeta (the metadata keys), the checks every kind shares, the hash
    device       the Predictor protocol; device, precision, batch streaming
    arch         the torch architectures (smp and two native nets)
    torch_model  kind ``torch``: arch_params check, weights, TorchPredictor
    onnx_model   kind ``onnx``: input/output conventions, OnnxPredictor
    spectral     kind ``index``: NDWI/MNDWI/NDVI, Otsu, IndexPredictor
    kinds        the registry of kinds: check metadata, make a predictor
    card         ``geoseg bundle info`` text
    shipped      shipped bundle names and bundle paths
    bundle       ModelBundle: create, check, save, load (``.bundle`` files)
    predictor    get_predictor: one predictor per bundle and process
    indices      making index bundles, Otsu resolved once per scene
    meta         the metadata file of ``geoseg bundle create``
    onnx_export  torch bundle to ONNX

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
