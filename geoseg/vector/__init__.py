"""Polygonize a class raster block by block, joined across block edges.

A class raster can be far larger than memory, so it is read in blocks of
``block × block`` pixels, row-major. Inside a block, connected pixels of one
class get one label (:func:`scipy.ndimage.label`) and the label image becomes
polygons in *global pixel coordinates* (:mod:`~geoseg.vector.trace`, array
operations giving exactly GDAL's polygons; GDAL's polygonizer itself for
8-connectivity): every vertex is an integer, so joining two
pieces that meet at a block edge is an exact union, never a float snap. A piece
that touches the edge of a block not yet read waits in a union-find; the facing
pixel lines of neighbouring blocks say which pieces belong together (same class
on both sides, diagonals too with 8-connectivity). A joined polygon is released
as soon as every block it touches has been read, so memory holds one block and
the pieces pending along one row of block edges, whatever the raster size. The
result has the same polygons as a whole-raster polygonization.

Why the details are as they are:

- With 8-connectivity GDAL returns rings that touch themselves at a corner,
  which GEOS and QGIS call invalid; we label 8-connected regions but polygonize
  them 4-connected and gather the parts into one valid MultiPolygon per region.
- Areas of a geographic raster are integrated over the ellipsoid (pyproj's
  ``Geod`` ellipsoid of the CRS) along the pixel edges, which are meridians and
  parallels; a geodesic polygon area would bow every long east-west edge.
- Coverage-safe simplification runs on each batch of polygons released
  together (one block row) with the batch's outline held fixed, so edges shared
  inside a batch are simplified once for both sides and edges shared with other
  batches are kept exactly: no gaps, no overlaps.

- Pieces of one 4-connected region are joined by cancelling the pixel edges
  they share on block edges and relinking what is left of their rings
  (:mod:`~geoseg.vector.join`, array operations, ~3x faster than GEOS); with
  8-connectivity, or when that cannot tell, with a coverage union (not an
  overlay union: they tile the region, and a vertex at every pixel corner of
  their block-edge segments makes both sides of each seam match exactly).
- GeoJSON is printed from coordinate arrays (:mod:`~geoseg.vector.geojson`),
  reprojected in bulk, a slice of points at a time.
- ``min_area`` is a sieve in the raster domain (:mod:`~geoseg.vector.sieve`):
  small regions merge into the neighbouring class with the longest shared
  boundary, in rounds, each round exact block by block thanks to a halo.
- ``smooth`` cuts pixel corners on edges shared inside a batch, with nodes and
  the batch outline fixed, so the coverage stays valid.

The package is split by concern: :mod:`~geoseg.vector.grid` (the raster and the
options), :mod:`~geoseg.vector.sieve` (``min_area``),
:mod:`~geoseg.vector.polygonize` (labels and pieces per block, the stitcher that
joins them), :mod:`~geoseg.vector.trace` (a block's label image to rings),
:mod:`~geoseg.vector.join` (a region's pieces by edge cancelling),
:mod:`~geoseg.vector.geometry` (smoothing, simplification, areas, perimeters),
:mod:`~geoseg.vector.writers` (the formats), :mod:`~geoseg.vector.geojson`
(GeoJSON text from coordinate arrays) and
:mod:`~geoseg.vector.core` (:func:`vectorize`, which runs them in a stream).
"""

from __future__ import annotations

from geoseg.vector.core import VectorizeResult, vectorize
from geoseg.vector.grid import DRIVERS

__all__ = ["DRIVERS", "VectorizeResult", "vectorize"]
