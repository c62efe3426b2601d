"""Exports of torch bundles to ONNX (``--backend auto`` on CPU) go to a temporary cache."""

from __future__ import annotations

import os
import tempfile

# set at import, before any Dask worker is started, so workers inherit it too
os.environ.setdefault("GEOSEG_CACHE_DIR", tempfile.mkdtemp(prefix="geoseg-test-cache-"))
