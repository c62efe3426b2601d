"""What ``geoseg predict`` does, in order: check the input, plan, run an engine, merge, publish.

``predict`` is the entry point (one or many scenes). ``options`` holds what was
asked (:class:`~geoseg.pipeline.options.PredictOptions`), ``scenes`` which files,
``check`` decides band roles, units and the input-domain verdict before any work,
``plan`` is the pre-flight and each scene's block and batch size and memory check,
``run`` takes one scene through the engine, ``merge`` (finished cells to the
writers, shared cells summed until complete), the writers and ``record`` (the run
record) to its published outputs; ``outputs`` names and guards what is written,
``batch`` resumes archives through a manifest, ``stac`` turns STAC items into scenes.
"""
