"""geoseg: large rasters in, seamless georeferenced class maps and polygons out.

The public API::

    import geoseg
    bundle = geoseg.load_bundle("landcover-nlcd8")
    results = geoseg.predict("scene.tif", bundle, "results/")
    geoseg.vectorize("results/scene_classes.tif", "scene.gpkg")
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

from geoseg.bundle import ModelBundle, load_bundle, shipped_bundles  # noqa: E402
from geoseg.chips import BlockPlan, ChipGrid  # noqa: E402
from geoseg.errors import (  # noqa: E402
    BundleError,
    ChipGridError,
    GeosegError,
    InputError,
    OutputError,
    RasterReadError,
    SceneError,
)
from geoseg.predict import PredictResult, predict  # noqa: E402
from geoseg.scene import Scene, open_scene  # noqa: E402
from geoseg.stac import predict_stac  # noqa: E402
from geoseg.vectorize import VectorizeResult, vectorize  # noqa: E402
from geoseg.xarray_predict import predict_xarray  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
