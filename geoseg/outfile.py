"""One output file the user named with ``-o``: checked before any work, its folder made.

``geoseg bundle create``, ``bundle export-onnx`` and ``quicklook`` write one file
each. Before they spend time on a model or a figure, :func:`check_output_file`
refuses to replace an existing file unasked, and says in one line when the folder
cannot be written; :func:`make_parent` creates a missing folder just before the
write, so a refused command leaves no empty folder behind.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> check_output_file(f"{d}/new/model.bundle", overwrite=False).name
'model.bundle'
"""

from __future__ import annotations

import os
from pathlib import Path

from geoseg.errors import OutputError


def check_output_file(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    inputs: tuple[str | os.PathLike[str] | None, ...] = (),
) -> Path:
    """``path`` as a :class:`~pathlib.Path`, after checking it can be written.

    Raises
    ------
    OutputError
        ``path`` is a folder, one of ``inputs`` (never replaced, even with
        ``overwrite``), exists and ``overwrite`` is false, lies under a file,
        or its nearest existing folder is not writable.
    """
    p = Path(path)
    for given in inputs:
        if given is not None and p.exists() and Path(given).exists() and p.samefile(given):
            raise OutputError(f"{p} is an input of this command; choose another -o")
    if p.is_dir():
        raise OutputError(f"{p} is a folder; -o takes a file name, e.g. {p / 'output'}{p.suffix}")
    if p.exists() and not overwrite:
        raise OutputError(f"{p} exists; pass --overwrite to replace it")
    existing = p.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"cannot create folder {p.parent}: {existing} is a file; choose another -o"
        )
    # access(2) reports a read-only file system even to root, and permissions to others
    effective = os.access in os.supports_effective_ids
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=effective):
        raise OutputError(
            f"folder {existing} is not writable; choose another -o or fix its permissions"
        )
    return p


def make_parent(path: Path) -> None:
    """Create the folder of ``path`` if it is missing.

    Raises
    ------
    OutputError
        The folder cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create folder {path.parent} ({err.strerror or err}); choose another -o"
        ) from err
