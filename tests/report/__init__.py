"""Tests of :mod:`geoseg.report`."""
