"""What ``geoseg predict`` does, in order: check the input, plan, run an engine, publish.

``check`` decides band roles, units and the input-domain verdict before any work,
``predict`` runs one or many scenes (options, pre-flight, the merge of block results,
the run record), ``outputs`` names and guards what is written, ``batch`` resumes
archives through a manifest, ``stac`` turns STAC items into scenes.
"""
