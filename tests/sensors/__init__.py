"""Tests of :mod:`geoseg.sensors`."""
