"""Moved to :mod:`geoseg.engine.resources` in 0.2; this old path goes in 0.3."""

from geoseg._moved import alias

alias(__name__, "geoseg.engine.resources")
