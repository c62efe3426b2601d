"""Rasters in and out: scenes, normalization, masks, band stacks, class-raster writers.

``scene`` opens and reads a scene block by block (nodata and masks applied),
``normalize`` turns raw values into a model's input, ``masks`` reads QA and cloud
masks, ``bandstack`` stacks separate band files into one VRT, ``writer`` streams
class and confidence rasters into a COG, ``styles`` writes QGIS styles and color
tables.
"""
