"""Where a bundle argument points: a bundle shipped with geoseg, or a file.

``water`` names the shipped bundle even when the working folder holds a file of
that name (``./water`` is the file): a run's model never depends on where it was
started from by accident.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

from geoseg.errors import BundleError
from geoseg.models.schema import BUNDLE_SUFFIX

# the logger of geoseg.models.bundle, where this lived: log lines and filters keep their name
log = logging.getLogger("geoseg.models.bundle")


def shipped_bundles() -> dict[str, Path]:
    """Bundles shipped inside the package, by name."""
    root = resources.files("geoseg") / "bundles"
    return {
        Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(BUNDLE_SUFFIX)
    }


def _looks_like_path(text: str) -> bool:
    seps = {os.sep, os.altsep or os.sep, "/"}
    return any(sep in text for sep in seps) or text.lower().endswith((BUNDLE_SUFFIX, ".onnx"))


def resolve_bundle_path(path_or_name: str | os.PathLike[str]) -> Path:
    """The file a bundle argument means: a shipped name wins unless it looks like a path.

    A plain word (``water``) is the shipped bundle of that name, even when the
    working folder happens to hold a file or folder called ``water``; write
    ``./water`` for that one. Anything with a path separator or a ``.bundle``
    suffix is a path.

    Raises
    ------
    BundleError
        No such file and no shipped bundle of that name, or the path is a folder
        or an ONNX model.
    """
    text = os.fspath(path_or_name)
    shipped = shipped_bundles()
    if not isinstance(path_or_name, Path) and not _looks_like_path(text) and text in shipped:
        if Path(text).exists():
            log.warning(
                "'%s' is the shipped bundle of that name; write ./%s for the %s in this folder",
                text,
                text,
                "folder" if Path(text).is_dir() else "file",
            )
        return shipped[text]
    path = Path(text)
    if path.is_dir():
        raise BundleError(f"{text} is a folder, not a bundle file; pass the .bundle file")
    if path.suffix.lower() == ".onnx" and path.exists():
        raise BundleError(
            f"{text} is an ONNX model, not a bundle; wrap it first: "
            f"geoseg bundle create --onnx {text} --metadata meta.yaml -o model.bundle"
        )
    if not path.exists():
        raise BundleError(
            f"no bundle file '{text}' and no shipped bundle of that name; shipped: "
            f"{', '.join(sorted(shipped)) or 'none'}"
        )
    return path
