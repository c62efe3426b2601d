"""Tests of :mod:`geoseg.models`."""
