"""Re-export of :mod:`geoseg.vector`, where the vectorizer lives."""

from __future__ import annotations

from geoseg.vector import DRIVERS, VectorizeResult, vectorize

__all__ = ["DRIVERS", "VectorizeResult", "vectorize"]
