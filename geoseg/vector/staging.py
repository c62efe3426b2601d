"""Temporaries of vector outputs: the final name behind a staged one, and orphan cleanup.

:func:`vectorize` may be handed a name that is itself a temporary (predict stages
every output and renames them together). Writing that under yet another temporary
name gave nested names (``..s_classes.geoseg-tmp-1-a.geoseg-tmp-1-b.gpkg``) that no
pattern of a later run matched, so a SIGKILL left them forever. A staged name is
now written in place, and leftovers are cleaned by their *final* name, but only
those whose writing process is gone: a concurrent run's temporaries stay.

>>> final_name(Path(".s_classes.geoseg-tmp-12-ab12cd.gpkg")).name
's_classes.gpkg'
>>> final_name(Path("..s_classes.geoseg-tmp-12-ab12cd.geoseg-tmp-12-ef34ab.gpkg")).name
's_classes.gpkg'
>>> final_name(Path("scene.gpkg")).name
'scene.gpkg'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from geoseg.atomic import TMP_MARK, process_alive, remove_quietly

_TOKEN = re.compile(re.escape(TMP_MARK) + r"(\d+)-[0-9a-f]+")


def final_name(path: Path) -> Path:
    """The file a (possibly nested) temporary name stands for; ``path`` if it is final."""
    name = path.name
    depth = len(_TOKEN.findall(name))
    if depth == 0 or not name.startswith("." * depth):
        return path
    stem = name[depth:].split(TMP_MARK, 1)[0]
    return path.with_name(stem + path.suffix)


def _alive(pid: int) -> bool:
    return pid == os.getpid() or process_alive(pid)


def orphans(final: Path) -> list[Path]:
    """Temporaries (nested or not) of ``final`` whose writing processes have all exited."""
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        pids = [int(m) for m in _TOKEN.findall(p.name)]
        if pids and final_name(p) == final and not any(_alive(pid) for pid in pids):
            found.append(p)
    return found


def clean_orphans(final: Path) -> list[Path]:
    """Delete :func:`orphans` of ``final`` (and their SQLite/GDAL sidecars); returns them."""
    found = orphans(final)
    for p in found:
        remove_quietly(p)
    return found
