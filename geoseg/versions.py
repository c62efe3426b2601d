"""Versions of geoseg and the libraries behind a result, for run records and bundles.

One function for every record: :func:`versions` reads a package's version from an
already imported module or from its installed metadata, never by importing it
(importing torch costs seconds on a Dask client that only merges results).

>>> sorted(versions(("geoseg", "python")))
['geoseg', 'python']
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable

__version__ = "0.1.0"
"""geoseg's version (``geoseg.__version__`` re-exports it)."""

#: what a prediction's run record names
PREDICT = ("geoseg", "python", "numpy", "torch", "rasterio", "gdal")
#: what a workflow's run record names
WORKFLOW = ("geoseg", "python", "platform", "numpy", "rasterio", "gdal", "torch")
#: the libraries that determine a trained bundle's weights
TRAIN = ("torch", "segmentation_models_pytorch", "numpy", "python")


def package_version(name: str) -> str:
    """``name``'s version, or ``"not installed"``, without importing it."""
    from importlib import metadata

    module = sys.modules.get(name)
    if module is not None and hasattr(module, "__version__"):
        return str(module.__version__)
    try:
        return metadata.version(name.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(names: Iterable[str] = PREDICT) -> dict[str, str]:
    """``{name: version}`` for each of ``names``, in that order.

    Besides package names: ``geoseg``, ``python``, ``platform`` (the OS) and ``gdal``
    (the GDAL that rasterio was built with).
    """
    out: dict[str, str] = {}
    for name in names:
        if name == "geoseg":
            out[name] = __version__
        elif name == "python":
            out[name] = platform.python_version()
        elif name == "platform":
            out[name] = platform.platform()
        elif name == "gdal":
            import rasterio

            out[name] = rasterio.__gdal_version__
        else:
            out[name] = package_version(name)
    return out
