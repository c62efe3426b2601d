r"""Dataclasses from YAML, with the line of every key in every error.

A spec is a tree of dataclasses. :func:`load` *composes* a YAML file with
PyYAML's safe loader (its node tree, which knows the line of every key),
checks the tree's size, takes the document from the same tree (plain values
only, as ``yaml.safe_load`` gives), then builds the dataclasses, checking as it
goes:

- an unknown key: ``wf.yaml line 7: unknown key 'simplfy' in vectorize; known
  keys: format, simplify, …``;
- a wrong type: ``wf.yaml line 9: vectorize.min_area must be float or None,
  got 'big'``;
- a missing required key, and any :class:`~geoseg.errors.GeosegError` a
  dataclass's ``__post_init__`` raises (reported at its section's line);
- paths: a field typed :data:`InputPath` (or ``Annotated[str, IsPath(...)]``)
  is resolved against the YAML file's folder and, for inputs, must exist
  (``wf.yaml line 4: inputs.pre: file ../data/x.tif does not exist …``).

The YAML may come from someone else (a shared workflow, a config in a
repository), so parsing is bounded (aliases, depth, integer size): see
:mod:`geoseg.yamlsafe`, which this module builds on. What is left here
(about 430 lines) is one job, the typed walk from a document to dataclasses:
most of it is :class:`_Builder`'s one method per kind of type.

Supported types: ``Any``, ``bool``, ``int``, ``float`` (ints accepted), ``str``
(numbers accepted: ``date: 2020``), ``None``, ``Literal[...]``, unions
(``int | str``, ``X | None``; tried in order), ``list[X]``, ``tuple[X, ...]``,
``dict[K, V]``, nested dataclasses and ``Annotated[X, IsPath(...)]``.

A dataclass may define ``yaml_shorthand(value)`` (a static or class method): it
is called with a raw value that is not a mapping and returns the mapping (or
value) to build from, so ``engine: local`` or ``early_stopping: 5`` can stand
for a full section. Fields whose metadata holds ``{"yaml": False}`` cannot be
set from YAML (e.g. a ``base_dir`` filled in by the loader).

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass
... class Opt:
...     size: int = 3
...     name: str | None = None
>>> loads("size: 5\n", Opt)
Opt(size=5, name=None)
>>> loads("size: 5\nsise: 6\n", Opt, source="a.yml")
Traceback (most recent call last):
...
geoseg.errors.SpecError: a.yml line 2: unknown key 'sise' at the top level; known keys: size, name
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from geoseg.errors import (
    GeosegError,
)
from geoseg.errors import (
    SpecError as SpecError,  # re-exported: defined in errors since 0.2
)

# moved to geoseg.yamlsafe in 0.2 (bounded parsing); importable from here for one release
from geoseg.yamlsafe import MAX_ALIAS_NODES as MAX_ALIAS_NODES
from geoseg.yamlsafe import MAX_DEPTH as MAX_DEPTH
from geoseg.yamlsafe import KeyPath, parse_yaml
from geoseg.yamlsafe import check_size as check_size
from geoseg.yamlsafe import key_lines as key_lines
from geoseg.yamlsafe import safe_load as safe_load

T = TypeVar("T")
_MAX_INT = 10**18 - 1


@dataclass(frozen=True, slots=True)
class IsPath:
    """Marks a ``str`` field as a path, resolved against the YAML file's folder.

    Parameters
    ----------
    exists
        The path must exist when the spec is loaded (inputs).
    glob
        The value may be a glob; it must match at least one path when ``exists``.
    """

    exists: bool = True
    glob: bool = False


InputPath = Annotated[str, IsPath(exists=True)]
"""A file or folder that must exist, relative to the YAML file's folder."""
InputGlob = Annotated[str, IsPath(exists=True, glob=True)]
"""A path or glob (``scenes/*.tif``) that must match something."""
OutputPath = Annotated[str, IsPath(exists=False)]
"""A path to write, relative to the YAML file's folder; need not exist."""


@dataclass(frozen=True)
class Source:
    """Where a spec came from: its name, the line of every key and its folder.

    ``lines`` maps key paths (``("vectorize", "simplify")``; list items by index)
    to 1-based lines.
    """

    name: str = "spec"
    lines: Mapping[KeyPath, int] = dataclasses.field(default_factory=dict)
    base_dir: Path | None = None

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path``, else of its nearest parent that has one."""
        for i in range(len(path), 0, -1):
            if path[:i] in self.lines:
                return self.lines[path[:i]]
        return None

    def where(self, path: KeyPath = ()) -> str:
        """``"<file> line N"`` (or just the file when the line is unknown)."""
        n = self.line(path)
        return f"{self.name} line {n}" if n is not None else self.name

    def error(self, path: KeyPath, message: str) -> SpecError:
        """A :class:`SpecError` located at ``path``: ``"<file> line N: <message>"``."""
        return SpecError(f"{self.where(path)}: {message}")

    def has(self, path: KeyPath) -> bool:
        """Whether the YAML set the key at ``path``."""
        return path in self.lines

    def resolve(self, value: str) -> Path:
        """A path from the spec, ``~`` expanded, relative ones against the spec's folder."""
        p = Path(os.path.expanduser(value))
        if p.is_absolute() or self.base_dir is None:
            return p
        return Path(os.path.normpath(self.base_dir / p))


def dotted(path: KeyPath) -> str:
    """``("a", "0", "b")`` → ``"a[0].b"``; the empty path is ``"the top level"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "the top level"


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about values from files.

    >>> shown(10**40, 12)
    '100000000000… (41 characters)'
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def read_yaml(path: str | os.PathLike[str], *, what: str = "spec") -> tuple[Any, Source]:
    """Parse a YAML file safely; return the document and its :class:`Source`.

    Raises
    ------
    SpecError
        The file is missing or is not valid YAML (with the line of the problem).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{what} file {p} does not exist; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read {what} file {p} ({err}); check the file") from err
    doc, lines = parse_yaml(text, str(p))
    return doc, Source(str(p), lines, p.resolve().parent)


def load(path: str | os.PathLike[str], cls: type[T], *, what: str = "spec") -> tuple[T, Source]:
    """Load a YAML file into dataclass ``cls``; relative paths are relative to its folder.

    Returns
    -------
    (T, Source)
        The built tree and where each key was (for later, located errors).

    Raises
    ------
    SpecError
        See the module notes.
    """
    doc, source = read_yaml(path, what=what)
    return build(cls, doc, source), source


def loads(text: str, cls: type[T], *, source: str = "spec", base_dir: str | None = None) -> T:
    """Like :func:`load`, from YAML text (paths relative to ``base_dir``, else the cwd)."""
    doc, lines = parse_yaml(text, source)
    return build(cls, doc, Source(source, lines, Path(base_dir) if base_dir else None))


def build(cls: type[T], doc: Any, source: Source | None = None, path: KeyPath = ()) -> T:
    """Build dataclass ``cls`` from a parsed document (a mapping), checking every key.

    Raises
    ------
    SpecError
        Unknown key, wrong type, missing required key, bad value, missing input path.
    """
    src = source or Source()
    value: T = _Builder(src).convert(doc, cls, path)
    return value


def known_keys(cls: type) -> list[str]:
    """The keys a YAML mapping for dataclass ``cls`` may hold."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)]


def type_name(tp: Any) -> str:
    """A readable name of a type annotation (``int or None``, ``'a' or 'b'``, ``list of str``)."""
    origin = typing.get_origin(tp)
    if tp is type(None) or tp is None:
        return "None"
    if tp is Any:
        return "anything"
    if origin is Annotated:
        return type_name(typing.get_args(tp)[0])
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} items ({', '.join(type_name(a) for a in args)})"
        return f"a list of {type_name(args[0]) if args else 'anything'}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


class _RefusedValue(SpecError):
    """A value of the right type that cannot be used (a missing file, a number out of range).

    A union does not go on to try its other types after this error.
    """


class _Builder:
    def __init__(self, source: Source) -> None:
        self.source = source

    def fail(self, path: KeyPath, message: str) -> SpecError:
        return self.source.error(path, message)

    def refuse(self, path: KeyPath, message: str) -> _RefusedValue:
        return _RefusedValue(f"{self.source.where(path)}: {message}")

    def wrong(self, path: KeyPath, tp: Any, value: Any) -> SpecError:
        return self.fail(path, f"{dotted(path)} must be {type_name(tp)}, got {shown(value)}")

    def convert(self, value: Any, tp: Any, path: KeyPath) -> Any:
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if tp is type(None) or tp is None:
            if value is None:
                return None
            raise self.wrong(path, tp, value)
        if origin is Annotated:
            inner, *marks = typing.get_args(tp)
            out = self.convert(value, inner, path)
            for mark in marks:
                if isinstance(mark, IsPath) and isinstance(out, str):
                    out = self.path(out, mark, path)
            return out
        if origin in (typing.Union, types.UnionType):
            return self.union(value, tp, path)
        if origin is Literal:
            args = typing.get_args(tp)
            if any(value == a and type(value) is type(a) for a in args):
                return value
            raise self.fail(path, f"{dotted(path)} must be {type_name(tp)}, got {shown(value)}")
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.dataclass(value, tp, path)
        if origin in (list, tuple):
            return self.sequence(value, tp, path)
        if origin is dict or tp is dict:
            return self.mapping(value, tp, path)
        return self.scalar(value, tp, path)

    def union(self, value: Any, tp: Any, path: KeyPath) -> Any:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        real = [a for a in args if a is not type(None)]
        if len(real) == 1 and isinstance(value, list | dict):
            # X | None with a container: X's own error says where inside it failed
            return self.convert(value, real[0], path)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return self.convert(value, arg, path)
            except _RefusedValue:
                raise
            except SpecError:
                continue
        raise self.wrong(path, tp, value)

    def scalar(self, value: Any, tp: Any, path: KeyPath) -> Any:
        if isinstance(value, bool):
            if tp is bool:
                return value
            raise self.wrong(path, tp, value)
        if tp is float and isinstance(value, int | float):
            number = float(value) if abs(value) < 1e308 else math.inf
            if not math.isfinite(number):  # .nan and .inf pass every range check
                raise self.refuse(
                    path, f"{dotted(path)} must be a finite number, got {shown(value)}"
                )
            return number
        if tp is int and isinstance(value, int):
            if abs(value) > _MAX_INT:  # numpy, torch and GDAL take 64-bit integers at most
                raise self.refuse(
                    path,
                    f"{dotted(path)} must be an integer of at most 18 digits, got {shown(value)}",
                )
            return value
        if tp is str and isinstance(value, str | int | float):
            return str(value)  # `date: 2020` or `name: 42` read as numbers; str() restores them
        raise self.wrong(path, tp, value)

    def sequence(self, value: Any, tp: Any, path: KeyPath) -> Any:
        if not isinstance(value, list):
            raise self.wrong(path, tp, value)
        args = typing.get_args(tp)
        if typing.get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise self.fail(path, f"{dotted(path)} needs {len(args)} items, got {len(value)}")
            return tuple(
                self.convert(v, a, (*path, str(i)))
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        items = [self.convert(v, item, (*path, str(i))) for i, v in enumerate(value)]
        return tuple(items) if typing.get_origin(tp) is tuple else items

    def mapping(self, value: Any, tp: Any, path: KeyPath) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{dotted(path)} must be a mapping, got {shown(value)}")
        args = typing.get_args(tp)
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        out = {}
        for k, v in value.items():
            sub = (*path, str(k))
            out[self.convert(k, key_tp, sub)] = self.convert(v, value_tp, sub)
        return out

    def dataclass(self, value: Any, cls: type, path: KeyPath) -> Any:
        shorthand = getattr(cls, "yaml_shorthand", None)
        if not isinstance(value, dict) and callable(shorthand):
            try:
                value = shorthand(value)
            except GeosegError as err:
                raise self.fail(path, f"{dotted(path)}: {err}") from err
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(path, f"{dotted(path)} must be a mapping, got {shown(value)}")
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        known = known_keys(cls)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if name not in known:
                section = f"in {dotted(path)}" if path else "at the top level"
                raise self.fail(
                    (*path, name),
                    f"unknown key '{name}' {section}; known keys: {', '.join(known)}",
                )
            kwargs[name] = self.convert(item, hints[name], (*path, name))
        missing = [
            n
            for n, f in fields.items()
            if n not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            where = f"in {dotted(path)}" if path else "at the top level"
            raise self.fail(path, f"missing required key(s) {', '.join(missing)} {where}")
        try:
            return cls(**kwargs)
        except SpecError:
            raise
        except GeosegError as err:
            prefix = f"{dotted(path)}: " if path else ""
            raise self.fail(path, f"{prefix}{err}") from err

    def path(self, value: str, mark: IsPath, path: KeyPath) -> str:
        if "://" in value or value.startswith("/vsi"):
            return value  # remote: GDAL checks it when it reads
        resolved = self.source.resolve(value)
        text = str(resolved)
        if not mark.exists:
            return text
        if mark.glob and glob.has_magic(value):
            if not glob.glob(text, recursive=True):
                raise self.refuse(
                    path,
                    f"{dotted(path)}: no file matches {value} (resolved to {text}); "
                    "check the pattern (relative paths are relative to the spec's folder)",
                )
            return text
        if not resolved.exists():
            raise self.refuse(
                path,
                f"{dotted(path)}: file {value} does not exist (resolved to {text}); "
                "check the path (relative paths are relative to the spec's folder)",
            )
        return text
