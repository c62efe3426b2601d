"""Atomic outputs: write under a temporary name, rename when complete.

An interrupted run can leave only files whose names contain ``.geoseg-tmp``;
it never leaves a file with a final name that looks finished but is not.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator, Sequence
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


def temp_owner(path: str | os.PathLike[str]) -> int | None:
    """The process id a :func:`temp_name` carries (``None`` if the name has none)."""
    name = os.path.basename(os.fspath(path))
    _, sep, rest = name.partition(TMP_MARK)
    pid = rest.split("-", 1)[0]
    return int(pid) if sep and pid.isdigit() else None


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: Path) -> None:
    """Remove temporaries an earlier, interrupted run left for ``path``.

    Only temporaries whose owner (the process id in the name) is gone: a live
    run's temporaries are its work in progress, and this process's own may be
    too. Names from a process that died and whose id was reused stay behind
    until a later run finds that id free; they never look finished. Names
    without an id (lock files) are left to their owners.
    """
    pattern = str(path.with_name(f".{glob.escape(path.stem)}{TMP_MARK}*{path.suffix}"))
    for p in glob.glob(pattern):
        owner = temp_owner(p)
        if owner is not None and owner != os.getpid() and not process_alive(owner):
            remove_quietly(p)


LOCK_SUFFIX = f"{TMP_MARK}lock"
"""Lock files are temporaries too: a killed run leaves one, named like its other leftovers."""


def lock_name(folder: Path, name: str) -> Path:
    """The lock file that guards ``name`` (an output stem, or a folder-wide name) in ``folder``."""
    return folder / f".{name}{LOCK_SUFFIX}"


def _lock_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def _acquire(path: Path, what: str) -> int:
    """Take an exclusive lock on ``path`` (created if missing); its fd, or OutputError."""
    import fcntl

    from geoseg.errors import OutputError

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(
                f"cannot lock {what} ({path}: {err.strerror or err}); "
                "fix the folder's permissions or choose another --out"
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(fd)
            os.close(fd)
            raise OutputError(
                f"{what} is in use by another geoseg run (pid {owner}); wait for it to "
                "finish or choose another --out"
            ) from None
        # the last holder unlinks the file before it lets go: if it did so after our
        # open, we hold a lock on a name that is gone; start again on the new file
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def output_locks(folder: Path, names: Sequence[str], what: str = "{name}") -> Iterator[None]:
    """Hold an exclusive lock per name in ``folder`` for the duration (all or none).

    Locks are ``flock`` locks on ``.<name>.geoseg-tmp-lock`` files holding the
    owner's process id: the kernel releases them when the owner dies, so a
    killed run never blocks the next one. ``what`` is the error's subject
    (``{name}`` in it becomes the name).

    Raises
    ------
    OutputError
        Another process holds one of the locks (its id is in the message).
    """
    try:
        import fcntl  # noqa: F401  (POSIX only)
    except ImportError:  # pragma: no cover - no flock: runs are not kept apart
        yield
        return
    held: list[tuple[Path, int]] = []
    try:
        for name in sorted(set(names)):  # one order everywhere: no deadlock, no livelock
            path = lock_name(folder, name)
            held.append((path, _acquire(path, what.replace("{name}", name))))
        yield
    finally:
        for path, fd in reversed(held):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # before letting go, so nobody locks a name we delete
            os.close(fd)


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
