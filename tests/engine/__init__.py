"""Tests of :mod:`geoseg.engine`."""
