"""Tests of :mod:`geoseg.io`."""
