"""Engines that run block tasks: in-process threads (and, later, Dask)."""
