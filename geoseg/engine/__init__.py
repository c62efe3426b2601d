"""Engines that run block tasks: threads of this process, or the workers of a Dask cluster.

:mod:`~geoseg.engine.base` says what an engine is (the :class:`~geoseg.engine.base.Engine`
protocol), :mod:`~geoseg.engine.task` is the block task every engine runs,
:mod:`~geoseg.engine.local` and :mod:`~geoseg.engine.dask` run it, and
:mod:`~geoseg.engine.resources` sizes it against the memory there is, and
:mod:`~geoseg.engine.xarray` spells the same work as a lazy xarray/dask graph.
"""
