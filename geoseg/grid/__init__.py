"""The chip grid: where chips sit on a scene, how blocks own them, how overlaps blend.

``chips`` (:class:`~geoseg.grid.chips.ChipGrid`, blocks and cells) and ``blend``
(fixed-point weights, the per-pixel argmax) are pure arithmetic on arrays and
windows: no file is read and no model is run here.
"""
