"""Tests of :mod:`geoseg.change`."""
