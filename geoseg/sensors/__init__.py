"""What a scene is: sensor presets, band roles, and the input domain a bundle knows.

``presets`` maps each sensor's band names to common names and its values to
reflectance, ``bands`` decides which file band feeds which bundle band, and
``domain`` compares a scene with the domain a bundle was trained on. Pure data and
arithmetic: nothing here opens a file.

``geoseg.sensors.X`` for a name of :mod:`geoseg.sensors.presets` still works (this
package was that module before 0.2).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from geoseg.sensors import presets

    try:
        return getattr(presets, name)
    except AttributeError:
        raise AttributeError(f"module 'geoseg.sensors' has no attribute {name!r}") from None
