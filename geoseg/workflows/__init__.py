"""Declarative workflows: ``geoseg run workflows/<name>.yaml``.

A workflow file names a ``kind`` (``landcover``, ``flood``, ``deforestation``,
``batch``), its inputs, the model, predict options, the engine,
post-processing and the output folder; :func:`load_workflow` validates it (with
the line of every mistake) and :func:`run_workflow` runs it, composing
:func:`geoseg.predict`, :func:`geoseg.vectorize`, :mod:`geoseg.analysis.stats`,
:mod:`geoseg.change` and :mod:`geoseg.report`. See ``workflows/README.md``.

::

    from geoseg.workflows import run_workflow
    res = run_workflow("workflows/flood.yaml", out="results/flood")
    print(res.outputs["flood_polygons"], res.report)
"""

from __future__ import annotations

from geoseg.workflows.context import StepRecord
from geoseg.workflows.runner import WorkflowResult, run_workflow
from geoseg.workflows.sections import EngineSpec
from geoseg.workflows.spec import (
    KINDS,
    BatchSpec,
    DeforestationSpec,
    FloodSpec,
    LandcoverSpec,
    Workflow,
    WorkflowSpec,
    load_workflow,
)

__all__ = [
    "KINDS",
    "BatchSpec",
    "DeforestationSpec",
    "EngineSpec",
    "FloodSpec",
    "LandcoverSpec",
    "StepRecord",
    "Workflow",
    "WorkflowResult",
    "WorkflowSpec",
    "load_workflow",
    "run_workflow",
]
