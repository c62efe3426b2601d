"""geoseg: large rasters in, seamless georeferenced class maps and polygons out.

The public API::

    import geoseg
    bundle = geoseg.load_bundle("landcover-nlcd8")
    results = geoseg.predict("scene.tif", bundle, "results/")
    geoseg.vectorize("results/scene_classes.tif", "scene.gpkg")

The names below are imported on first use (PEP 562), so ``import geoseg`` and
``geoseg --help`` do not pay for rasterio, torch, shapely or pyarrow. The packages
follow the data: ``io`` (scenes in, rasters out) → ``grid`` (chips, blocks, blending)
→ ``models`` (bundles, predictors) → ``engine`` (local, Dask) → ``pipeline``
(``predict``, batch, STAC) → ``vector`` → ``change``, ``train``, ``report`` →
``workflows`` → ``cli``; ``DESIGN.md`` has the map and the arrows allowed.
"""

from __future__ import annotations

import importlib
import logging
import types
from typing import TYPE_CHECKING, Any

from geoseg.versions import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BlockPlan": "geoseg.grid.chips",
    "ChipGrid": "geoseg.grid.chips",
    "BundleError": "geoseg.errors",
    "ChipGridError": "geoseg.errors",
    "GeosegError": "geoseg.errors",
    "InputError": "geoseg.errors",
    "OutputError": "geoseg.errors",
    "RasterReadError": "geoseg.errors",
    "SceneError": "geoseg.errors",
    "ModelBundle": "geoseg.models.bundle",
    "load_bundle": "geoseg.models.bundle",
    "shipped_bundles": "geoseg.models.shipped",
    "PredictResult": "geoseg.pipeline.run",
    "predict": "geoseg.pipeline.predict",
    "Scene": "geoseg.io.scene",
    "open_scene": "geoseg.io.scene",
    "predict_stac": "geoseg.pipeline.stac",
    "VectorizeResult": "geoseg.vector",
    "vectorize": "geoseg.vector",
    "predict_xarray": "geoseg.engine.xarray",
}

__all__ = [
    "BlockPlan",
    "BundleError",
    "ChipGrid",
    "ChipGridError",
    "GeosegError",
    "InputError",
    "ModelBundle",
    "OutputError",
    "PredictResult",
    "RasterReadError",
    "Scene",
    "SceneError",
    "VectorizeResult",
    "__version__",
    "load_bundle",
    "open_scene",
    "predict",
    "predict_stac",
    "predict_xarray",
    "shipped_bundles",
    "vectorize",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from geoseg.engine.xarray import predict_xarray
    from geoseg.errors import (
        BundleError,
        ChipGridError,
        GeosegError,
        InputError,
        OutputError,
        RasterReadError,
        SceneError,
    )
    from geoseg.grid.chips import BlockPlan, ChipGrid
    from geoseg.io.scene import Scene, open_scene
    from geoseg.models.bundle import ModelBundle, load_bundle
    from geoseg.models.shipped import shipped_bundles
    from geoseg.pipeline.predict import predict
    from geoseg.pipeline.run import PredictResult
    from geoseg.pipeline.stac import predict_stac
    from geoseg.vector import VectorizeResult, vectorize


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'geoseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """``geoseg.predict``/``geoseg.vectorize`` stay the functions.

    Importing the deprecated module paths ``geoseg.predict`` or ``geoseg.vectorize``
    would otherwise bind the module over the function of the same name.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            return
        super().__setattr__(name, value)


import sys  # noqa: E402

sys.modules[__name__].__class__ = _Package

logging.getLogger(__name__).addHandler(logging.NullHandler())
