"""The layout shows the data flow: packages import only along the arrows of DESIGN.md.

Every ``geoseg/**/*.py`` is parsed with :mod:`ast`; each import (module level or
inside a function, absolute or relative, ``importlib.import_module("...")`` with a
literal name) becomes an edge between two geoseg modules. Imports under
``if TYPE_CHECKING:`` run only in type checkers and are exempt. The tests fail on

(a) an import between packages that :data:`ALLOWED` does not list,
(b) an import cycle between modules,
(c) a module importing the root ``geoseg`` package (its lazy names import the
    whole pipeline; the version comes from :mod:`geoseg.versions`),
(d) geoseg or its tests importing a deprecated old path (``geoseg/scene.py`` and
    the other shims that call :func:`geoseg._moved.alias`),

except for the entries of :data:`KNOWN`, each of which must still exist: the list
can only shrink.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "geoseg"

#: package -> the packages its modules may import (besides its own), in data-flow order.
#: ``base`` is the top-level modules (errors, atomic, records, versions, ...).
#: DESIGN.md draws this map; keep the two the same.
_PIPELINE_MAY = frozenset("base grid sensors io analysis models engine vector".split())
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset(),
    "grid": frozenset({"base"}),
    "sensors": frozenset({"base"}),
    "io": frozenset({"base", "grid", "sensors"}),
    "analysis": frozenset({"base", "grid", "io"}),
    "models": frozenset({"base", "grid", "sensors", "io"}),
    "engine": frozenset({"base", "grid", "sensors", "io", "models"}),
    "vector": frozenset({"base", "grid", "io", "analysis"}),
    "pipeline": _PIPELINE_MAY,
    "change": frozenset({"base", "grid", "io", "analysis"}),
    "report": frozenset({"base", "grid", "io", "analysis", "models", "vector"}),
    "train": _PIPELINE_MAY | {"pipeline", "change", "report"},
    "workflows": _PIPELINE_MAY | {"pipeline", "change", "report", "train"},
    "cli": _PIPELINE_MAY | {"pipeline", "change", "report", "train", "workflows"},
}

#: top-level modules that belong to a package's layer rather than to ``base``
LAYER_OF_TOP: dict[str, str] = {"__main__": "cli"}

#: Known violations, each with its reason; empty since issue 17 landed, and a new
#: entry needs a reason and an issue that removes it. Each entry is
#: ``"kind: source -> target"``; the kinds are ``layer`` (a), ``cycle`` (b: the edge
#: to drop so that the cycle is gone), ``root`` (c) and ``shim`` (d). An entry
#: that no longer happens fails ``test_known_violations_still_exist``: delete it.
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (both dotted module names) at ``line``."""

    source: str
    target: str
    line: int

    def key(self, kind: str) -> str:
        return f"{kind}: {self.source} -> {self.target}"


def module_name(path: Path) -> str:
    """``geoseg/io/scene.py`` -> ``geoseg.io.scene``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every geoseg module by dotted name."""
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


@cache
def shims() -> frozenset[str]:
    """The deprecated old paths: top-level modules that only call ``alias(__name__, ...)``."""
    return frozenset(
        name
        for name, path in modules().items()
        if name.count(".") == 1 and "alias(__name__" in path.read_text(encoding="utf-8")
    )


@cache
def root_names() -> frozenset[str]:
    """What ``geoseg/__init__.py`` offers as attributes (``__all__``): not submodules."""
    tree = ast.parse((SRC / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return frozenset(ast.literal_eval(node.value))
    raise AssertionError("geoseg/__init__.py has no __all__")


def layer(module: str) -> str:
    """The package (layer) a module belongs to: ``geoseg.io.scene`` -> ``io``."""
    parts = module.split(".")
    if module == "geoseg":
        return "root"
    if module in shims():
        return "shim"
    if len(parts) == 2 and not (SRC / parts[1]).is_dir():
        return LAYER_OF_TOP.get(parts[1], "base")
    return parts[1]


def _resolve(name: str) -> str:
    """The geoseg module a dotted import name lands in (the longest existing prefix)."""
    known = modules()
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under ``body`` except what ``if TYPE_CHECKING:`` guards."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def imports_of(module: str, path: Path) -> list[Edge]:
    """The geoseg modules ``module`` imports, one edge per import (not deduplicated)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: list[Edge] = []

    def add(target: str, node: ast.AST) -> None:
        if target == "geoseg" or target.startswith("geoseg."):
            edges.append(Edge(module, target, getattr(node, "lineno", 0)))

    for node in _nodes(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_resolve(alias.name), node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if base == "geoseg" and alias.name in root_names():
                    add("geoseg", node)  # an attribute of the root package, not the shim
                elif sub in modules():
                    add(sub, node)
                else:
                    add(_resolve(base), node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(_resolve(node.args[0].value), node)
    return edges


@cache
def edges() -> tuple[Edge, ...]:
    """Every import between geoseg modules, once per pair (the first line that makes it)."""
    first: dict[tuple[str, str], Edge] = {}
    for name, path in modules().items():
        for e in imports_of(name, path):
            if e.target != name:
                first.setdefault((e.source, e.target), e)
    return tuple(first.values())


def layer_violations() -> dict[str, Edge]:
    """(a): imports between packages that :data:`ALLOWED` does not list."""
    out: dict[str, Edge] = {}
    for e in edges():
        src, dst = layer(e.source), layer(e.target)
        if src in ("root", "shim") or dst in ("root", "shim") or src == dst:
            continue  # the root and the shims have their own rules, (c) and (d)
        if dst not in ALLOWED[src]:
            out[e.key("layer")] = e
    return out


def root_violations() -> dict[str, Edge]:
    """(c): modules importing the root ``geoseg`` package."""
    return {
        e.key("root"): e
        for e in edges()
        if e.target == "geoseg" and e.source != "geoseg" and layer(e.source) != "shim"
    }


def shim_violations() -> dict[str, Edge]:
    """(d): geoseg modules (other than the shims) importing a deprecated old path."""
    return {
        e.key("shim"): e
        for e in edges()
        if e.target in shims() and layer(e.source) != "shim" and e.source != "geoseg"
    }


def cycles(skip: set[tuple[str, str]]) -> list[list[str]]:
    """Import cycles between modules (one cycle per strongly connected component).

    Edges in ``skip`` are left out: they are the known back-edges of :data:`KNOWN`.
    """
    graph = _graph(skip)
    return [_cycle_in(graph, comp) for comp in _components(graph) if len(comp) > 1]


def _graph(skip: set[tuple[str, str]]) -> dict[str, set[str]]:
    """Module -> the modules it imports, without the edges in ``skip``."""
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for e in edges():
        if (e.source, e.target) not in skip and e.target in graph:
            graph[e.source].add(e.target)
    return graph


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.add(top)
                        if top == node:
                            break
                    out.append(comp)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """One concrete cycle through a component, from its first module back to it."""
    start = min(comp)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & comp):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle in component {sorted(comp)}")


def _known(kind: str) -> set[str]:
    return {k for k in KNOWN if k.startswith(f"{kind}: ")}


def _pairs(keys: set[str]) -> set[tuple[str, str]]:
    pairs = set()
    for k in keys:
        src, dst = k.split(": ", 1)[1].split(" -> ")
        pairs.add((src, dst))
    return pairs


def _report(found: dict[str, Edge], kind: str, why: str) -> str:
    lines = [
        f"  {e.key(kind)}   ({modules()[e.source].relative_to(REPO)}:{e.line})"
        for k, e in sorted(found.items())
    ]
    return f"{why}:\n" + "\n".join(lines)


# -- the tests ---------------------------------------------------------------


def test_imports_are_read_like_python_reads_them(tmp_path: Path) -> None:
    """Relative, absolute and function-level imports count; TYPE_CHECKING ones do not."""
    src = tmp_path / "probe.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import scene\n"
        "from ..grid.chips import ChipGrid\n"
        "import geoseg.errors\n"
        "from geoseg import predict, io\n"
        "if TYPE_CHECKING:\n"
        "    from geoseg.cli.main import cli\n"
        "else:\n"
        "    from geoseg.models import bundle\n"
        "def f():\n"
        "    import importlib\n"
        "    from geoseg.pipeline.predict import predict\n"
        "    return importlib.import_module('geoseg.vector.core')\n",
        encoding="utf-8",
    )
    found = [e.target for e in imports_of("geoseg.io.probe", src)]
    assert found == [
        "geoseg.io.scene",
        "geoseg.grid.chips",
        "geoseg.errors",
        "geoseg",
        "geoseg.io",
        "geoseg.models.bundle",
        "geoseg.pipeline.predict",
        "geoseg.vector.core",
    ]


def test_cycles_are_found_and_reported_as_paths() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (comp,) = [c for c in _components(graph) if len(c) > 1]
    assert comp == {"a", "b", "c"}
    assert _cycle_in(graph, comp) == ["a", "b", "c", "a"]


def test_every_module_is_in_a_known_layer() -> None:
    unknown = {m for m in modules() if layer(m) not in {*ALLOWED, "root", "shim"}}
    assert not unknown, f"add these packages to ALLOWED (and DESIGN.md's map): {sorted(unknown)}"


def test_imports_follow_the_arrows() -> None:
    found = {k: e for k, e in layer_violations().items() if k not in KNOWN}
    assert not found, _report(
        found, "layer", "imports against the arrows of DESIGN.md (move the code down a layer)"
    )


def test_no_import_cycles() -> None:
    found = cycles(_pairs(_known("cycle")))
    assert not found, "import cycles between modules:\n" + "\n".join(
        "  " + " -> ".join(c) for c in found
    )


def test_library_does_not_import_the_root_package() -> None:
    found = {k: e for k, e in root_violations().items() if k not in KNOWN}
    assert not found, _report(
        found,
        "root",
        "modules importing the root geoseg package (import from the defining module; "
        "the version is geoseg.versions)",
    )


def test_library_does_not_import_old_paths() -> None:
    found = {k: e for k, e in shim_violations().items() if k not in KNOWN}
    assert not found, _report(found, "shim", "imports of deprecated old paths (use the new one)")


def test_tests_do_not_import_old_paths() -> None:
    bad = []
    for path in sorted((REPO / "tests").glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for e in imports_of("tests." + path.stem, path):
            if e.target in shims():
                bad.append(f"  {path.relative_to(REPO)}:{e.line} imports {e.target}")
    assert not bad, "tests importing deprecated old paths:\n" + "\n".join(bad)


def test_known_violations_still_exist() -> None:
    """The allow-list only shrinks: an entry whose import is gone must be deleted."""
    now = {*layer_violations(), *root_violations(), *shim_violations()}
    back = _pairs(_known("cycle"))
    graph = _graph(back)
    for src, dst in back:
        # a known back-edge still closes a cycle if it exists and leads back to its source
        if any(e.source == src and e.target == dst for e in edges()) and _reaches(graph, dst, src):
            now.add(f"cycle: {src} -> {dst}")
    stale = sorted(set(KNOWN) - now)
    assert not stale, "fixed: delete these entries from KNOWN in tests/test_layout.py:\n" + (
        "\n".join(f"  {k}" for k in stale)
    )


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for child in graph[todo.pop()]:
            if child == goal:
                return True
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return start == goal


# -- start-up: the CLI and the root package stay light -------------------------

HEAVY = ("rasterio", "torch", "shapely", "pyarrow", "scipy")


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\n"
        f"print('loaded:', *(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stderr.strip().splitlines()[-1].split()[1:]


@pytest.mark.parametrize(
    "code",
    [
        "import geoseg",
        "import geoseg.cli.main",
        "import sys; sys.argv = ['geoseg', '--help']\n"
        "from geoseg.cli.main import cli\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass",
    ],
    ids=["import geoseg", "import geoseg.cli.main", "geoseg --help"],
)
def test_startup_does_not_import_heavy_libraries(code: str) -> None:
    assert _loaded_after(code) == []


def test_help_as_a_real_subprocess_is_light() -> None:
    code = (
        "import runpy, sys\nsys.argv = ['geoseg', '--help']\n"
        "try:\n    runpy.run_module('geoseg', run_name='__main__')\nexcept SystemExit:\n    pass"
    )
    assert _loaded_after(code) == []


# -- the old paths ---------------------------------------------------------------


def _target_of_shim(name: str) -> str:
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "alias":
            target = node.args[1]
            assert isinstance(target, ast.Constant) and isinstance(target.value, str)
            return target.value
    raise AssertionError(f"{name} does not call alias")


@pytest.mark.parametrize("old", sorted(shims()))
def test_old_path_warns_and_is_the_new_module(old: str) -> None:
    new = _target_of_shim(old)
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


@pytest.mark.parametrize("name", ["predict", "vectorize"])
def test_root_functions_survive_their_old_module_paths(name: str) -> None:
    import geoseg

    sys.modules.pop(f"geoseg.{name}", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module(f"geoseg.{name}")
    value = getattr(geoseg, name)
    assert callable(value) and not isinstance(value, type(sys))
    assert value.__name__ == name


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("geoseg.cli.options", "geoseg.engine.cluster", "dask_client"),
        ("geoseg.workflows.runner", "geoseg.workflows.context", "RunContext"),
        ("geoseg.workflows.runner", "geoseg.workflows.context", "StepRecord"),
        ("geoseg.workflows.spec", "geoseg.workflows.sections", "EngineSpec"),
        ("geoseg.workflows.spec", "geoseg.workflows.sections", "DatedScene"),
        ("geoseg.yamlspec", "geoseg.yamlsafe", "safe_load"),
        ("geoseg.yamlspec", "geoseg.yamlsafe", "MAX_ALIAS_NODES"),
    ],
)
def test_moved_names_stay_importable_from_their_old_module(old: str, new: str, name: str) -> None:
    old_value = getattr(importlib.import_module(old), name)
    assert old_value is getattr(importlib.import_module(new), name)


def test_design_md_draws_the_same_map() -> None:
    """DESIGN.md's table of packages and the arrows it allows is :data:`ALLOWED`."""
    text = (REPO / "DESIGN.md").read_text(encoding="utf-8")
    table = text.split("<!-- layout-map")[1].split("<!-- /layout-map -->")[0]
    drawn: dict[str, frozenset[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("package", "---"):
            continue
        package, _, may = cells
        if may == "everything":
            drawn[package] = frozenset(ALLOWED) - {package}
        elif may == "everything but cli":
            drawn[package] = frozenset(ALLOWED) - {package, "cli"}
        else:
            drawn[package] = frozenset(m.strip() for m in may.split(",")) - {"—"}
    assert drawn == ALLOWED
    assert list(drawn) == list(ALLOWED), "keep the table in the order of ALLOWED"


def _top_level_names(path: Path) -> tuple[set[str], dict[str, str]]:
    """Names a module defines, and names it imports from other geoseg modules."""
    defined: set[str] = set()
    imported: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geoseg"):
            imported.update({a.asname or a.name: str(node.module) for a in node.names})
    return defined, imported


def test_names_are_imported_from_the_module_that_defines_them() -> None:
    """One place per concept: code imports a name where it is defined, not through a re-export.

    Old modules re-export what moved out of them (for users, one release); geoseg,
    its tests, scripts and benchmarks import from the new place. A package's
    ``__init__`` is its public face and may be imported from.
    """
    found = []
    files = [*SRC.rglob("*.py"), *(REPO / "tests").rglob("*.py")]
    files += [*(REPO / "scripts").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    for path in sorted(files):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "geoseg."
            ):
                continue
            source = REPO / (str(node.module).replace(".", "/") + ".py")
            if not source.exists():
                continue  # a package's __init__, or not a module
            defined, imported = _top_level_names(source)
            for alias in node.names:
                if alias.name in imported and alias.name not in defined:
                    found.append(
                        f"{path.relative_to(REPO)}:{node.lineno}: {alias.name} from "
                        f"{node.module}, defined in {imported[alias.name]}"
                    )
    assert not found, "import these from where they are defined:\n" + "\n".join(found)
