"""Tests of :mod:`geoseg.train`."""
