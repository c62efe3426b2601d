"""Tests of :mod:`geoseg.workflows`."""
