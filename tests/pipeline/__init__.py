"""Tests of :mod:`geoseg.pipeline`."""
