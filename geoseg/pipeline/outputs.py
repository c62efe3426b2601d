"""A scene's output names, what a predict run may replace, and what it must never touch.

``predict`` writes ``<stem>_classes.tif`` (with ``.aux.xml`` and ``.qml``
sidecars), ``<stem>_run.json`` and, when asked, ``<stem>_confidence.tif`` and
polygons. Three rules keep a folder honest:

- an existing output (a user's own ``<stem>_classes.qml`` included) is
  replaced only with ``--overwrite``;
- with ``--overwrite``, outputs of the same stem that this run does not make
  (an old ``_confidence.tif`` from a run with ``--confidence``) are removed when
  the new ones are published, so the run record and the folder agree;
- no name any scene of a call could write may be an input of that call (a glob
  over a folder that holds ``s.tif`` and ``s_classes.tif`` would otherwise
  overwrite the second with the first's class map).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from geoseg.atomic import temp_name
from geoseg.errors import InputError, OutputError
from geoseg.io.bandstack import vrt_sources

VectorFormat = Literal["gpkg", "geojson", "json", "fgb", "parquet"]
VECTOR_FORMATS: tuple[VectorFormat, ...] = get_args(VectorFormat)
"""Polygon formats ``predict`` can write (``--vector-format``)."""

SIDECARS = (".aux.xml",)
"""Files GDAL keeps beside a raster (``remove_quietly`` removes them with it)."""


def output_paths(out_dir: Path, stem: str, opts: Any) -> dict[str, Path]:
    """The outputs a run with ``opts`` makes for ``stem`` (the run record last to publish)."""
    paths = {"classes": out_dir / f"{stem}_classes.tif", "run": out_dir / f"{stem}_run.json"}
    if opts.confidence:
        paths["confidence"] = out_dir / f"{stem}_confidence.tif"
    if opts.vector:
        if opts.vector_format == "gpkg":  # the style travels inside the GeoPackage
            paths["vector"] = out_dir / f"{stem}_classes.gpkg"
        else:
            # other formats are styled by a <name>.qml sidecar, and <stem>_classes.qml
            # is the class raster's: the polygons need a base name of their own
            paths["vector"] = out_dir / f"{stem}_polygons.{opts.vector_format}"
            paths["vector_style"] = out_dir / f"{stem}_polygons.qml"
    return paths


def check_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` if missing and prove it writable with a probe file.

    Raises
    ------
    OutputError
        The folder cannot be created or written to.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = temp_name(out_dir / "write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(
            f"output folder {out_dir} is not writable ({err.strerror or err}); "
            "choose another --out or fix its permissions"
        ) from err


def locked_subject(out: Path) -> str:
    """Subject of the error when another run holds a scene's lock (``{name}``: the stem).

    Examples
    --------
    >>> locked_subject(Path("results"))
    "the outputs of scene '{name}' in results"
    """
    return f"the outputs of scene '{{name}}' in {out}"


def every_output(out_dir: Path, stem: str) -> list[Path]:
    """Every name a predict run of any options may write for ``stem``, sidecars included."""
    names = [
        f"{stem}_classes.tif",
        f"{stem}_classes.tif.aux.xml",
        f"{stem}_classes.qml",
        f"{stem}_confidence.tif",
        f"{stem}_confidence.tif.aux.xml",
        f"{stem}_run.json",
        f"{stem}_classes.gpkg",
        f"{stem}_polygons.qml",
        *(f"{stem}_polygons.{fmt}" for fmt in VECTOR_FORMATS if fmt != "gpkg"),
    ]
    return [out_dir / n for n in names]


def existing_outputs(out_dir: Path, stem: str) -> list[Path]:
    """Names of :func:`every_output` that exist (a user's own style included)."""
    return [p for p in every_output(out_dir, stem) if p.exists() or p.is_symlink()]


def stale_outputs(out_dir: Path, stem: str, opts: Any) -> list[Path]:
    """Existing outputs of ``stem`` a run with ``opts`` does not make (removed on publish)."""
    made = set(output_paths(out_dir, stem, opts).values())
    made |= {Path(f"{p}{s}") for p in made for s in SIDECARS}
    made.add(out_dir / f"{stem}_classes.qml")  # the class raster's style
    return [p for p in existing_outputs(out_dir, stem) if p not in made]


def check_existing(out_dir: Path, stem: str, opts: Any) -> None:
    """Refuse, without ``--overwrite``, when any output of ``stem`` exists.

    Raises
    ------
    OutputError
        An output exists (one this run would replace, or one it would leave
        stale beside its own) and ``opts.overwrite`` is false.
    """
    if opts.overwrite:
        return
    have = existing_outputs(out_dir, stem)
    if have:
        raise OutputError(f"{have[0]} exists; pass --overwrite to replace it")


def _real(path: str) -> str | None:
    if "://" in path or path.startswith("/vsi"):
        return None
    return os.path.realpath(path)


def input_files(paths: Iterable[str]) -> dict[str, str]:
    """Real paths of a call's local inputs (and the files their VRTs read) -> as given."""
    out: dict[str, str] = {}
    for path in paths:
        real = _real(path)
        if real is None:
            continue
        out[real] = path
        if path.lower().endswith(".vrt"):
            for src in vrt_sources(path):
                src_real = _real(src)
                if src_real is not None:
                    out.setdefault(src_real, src)
    return out


def check_not_inputs(paths: Sequence[str], out_dir: Path, stems: Sequence[str]) -> None:
    """Refuse a call in which any scene's output name is one of its inputs.

    Every name a run could write or remove for every stem is checked, whatever
    the options, and ``--overwrite`` does not lift it: geoseg never writes over
    (or removes) an input of the same call.

    Raises
    ------
    InputError
        An output name of some scene is an input file.
    """
    inputs = input_files(paths)
    if not inputs:
        return
    folder = Path(os.path.realpath(out_dir))
    for stem in stems:
        for p in every_output(folder, stem):
            given = inputs.get(str(p))
            if given is not None:
                raise InputError(
                    f"{given} is an input of this call and also an output name of scene "
                    f"'{stem}' in {out_dir}; geoseg never writes over its inputs: choose "
                    "another --out or leave that file out of the scenes"
                )
