"""Tests of :mod:`geoseg.grid`."""
