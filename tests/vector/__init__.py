"""Tests of :mod:`geoseg.vector`."""
