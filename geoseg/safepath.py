"""Names that come from data, and output paths that must stay in their folder.

STAC item ids, asset keys, workflow and zone names are written by whoever made the
catalog or the YAML. Before such a name becomes part of a file name it goes through
:func:`safe_name`; before geoseg writes a file it can check that the file stays inside
the output folder with :func:`inside`.

>>> safe_name("LC08_L2SP_038034_20150818", "STAC item id")
'LC08_L2SP_038034_20150818'
>>> safe_name("../../etc/evil", "STAC item id")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
geoseg.errors.InputError: STAC item id '../../etc/evil' cannot be used in a file name: ...
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from geoseg.errors import InputError, OutputError

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,199}")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10))} | {
    f"LPT{i}" for i in range(10)
}


def safe_name(name: object, what: str) -> str:
    """Return ``name`` if it is safe as one file-name component, else raise :class:`InputError`.

    Safe means: a non-empty string of at most 200 letters, digits, ``.``, ``_``, ``-`` and
    spaces that does not start with ``.`` or a space, does not end with a space or ``.``,
    and is not a Windows device name. Nothing is rewritten silently: two different ids must
    never end up in the same file.
    """
    text = name if isinstance(name, str) else ""
    ok = (
        bool(_SAFE.fullmatch(text))
        and not text.endswith((" ", "."))
        and text.split(".")[0].upper() not in _WINDOWS_RESERVED
    )
    if not ok:
        raise InputError(
            f"{what} {name!r} cannot be used in a file name: use letters, digits, '.', '_', "
            "'-' and ' ' only (no '/', no leading '.')"
        )
    return text


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Return ``path`` resolved, after checking it lies inside the folder ``root``.

    Symbolic links are resolved on both sides, so a link inside ``root`` that points
    elsewhere does not pass.

    >>> str(inside("/tmp/out", "/tmp/out/a/b.tif"))
    '/tmp/out/a/b.tif'
    >>> inside("/tmp/out", "/tmp/out/../b.tif")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geoseg.errors.OutputError: refusing to write /tmp/b.tif: it is outside the output folder ...
    """
    base = Path(root).resolve()
    target = Path(path).resolve()
    if target != base and base not in target.parents:
        raise OutputError(f"refusing to write {target}: it is outside the output folder {base}")
    return target
