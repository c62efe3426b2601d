"""Tests of :mod:`geoseg.analysis`."""
