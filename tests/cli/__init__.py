"""Tests of :mod:`geoseg.cli`."""
