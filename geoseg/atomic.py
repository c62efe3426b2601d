"""Atomic outputs: write under a temporary name, rename when complete.

An interrupted run can leave only files whose names contain ``.geoseg-tmp``;
it never leaves a file with a final name that looks finished but is not.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".geoseg-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_name(path: Path) -> Path:
    """A unique temporary sibling of ``path`` that keeps its suffix."""
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    return path.with_name(f".{path.stem}{TMP_MARK}{token}{path.suffix}")


def remove_quietly(path: str | os.PathLike[str]) -> None:
    """Delete a file and the sidecars GDAL/SQLite may have made beside it."""
    for p in (str(path), f"{path}.aux.xml", f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.remove(p)


def clean_stale(path: Path) -> None:
    """Remove temporaries an earlier, interrupted run left for ``path``."""
    pattern = str(path.with_name(f".{glob.escape(path.stem)}{TMP_MARK}*{path.suffix}"))
    for p in glob.glob(pattern):
        remove_quietly(p)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, else delete it."""
    tmp = temp_name(path)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # some writers create 0600 temporaries
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write a UTF-8 text file (table, record, style) under a temporary name, then rename.

    Raises
    ------
    OutputError
        ``path`` exists and ``overwrite`` is false, or the file cannot be written.
    """
    from geoseg.errors import OutputError

    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputError(f"{p} exists; pass --overwrite to replace it")
    try:
        with atomic_path(p) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {p}: {err.strerror or err}") from err
    return p
