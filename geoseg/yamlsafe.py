r"""Bounded YAML parsing: the document and the line of every key, safe from hostile input.

Workflows, training configs, class schemes and bundle metadata may come from someone
else (a shared workflow, a config in a repository, a downloaded bundle), so every
YAML geoseg reads is parsed here, bounded: anchors and aliases may repeat at most
:data:`MAX_ALIAS_NODES` nodes in all (a "billion laughs" document of a few hundred
bytes would otherwise expand to 10⁹ nodes), an alias may not contain itself,
documents nest at most :data:`MAX_DEPTH` levels, and integers have at most 4300
digits; each is refused with one line naming the file. The document is composed
once (PyYAML's safe loader; its node tree knows the line of every key), checked,
and only then constructed, with plain values as ``yaml.safe_load`` gives them.

:mod:`geoseg.yamlspec` builds dataclasses from what :func:`parse_yaml` returns.

>>> parse_yaml("a: 1\nb: [2, 3]\n", "x.yml")
({'a': 1, 'b': [2, 3]}, {('a',): 1, ('b',): 2, ('b', '0'): 2, ('b', '1'): 2})
"""

from __future__ import annotations

from typing import Any

from geoseg.errors import SpecError

KeyPath = tuple[str, ...]
"""A key's place in a document: mapping keys and list indexes, as text."""

MAX_ALIAS_NODES = 10_000
"""How many nodes aliases (``*name``) may add to a document in all, beyond the nodes written
out. Repeating a section a few times costs tens of nodes; exponential nesting is refused."""
MAX_DEPTH = 64
"""How deeply mappings and lists may nest (real specs use fewer than 10 levels)."""


def key_lines(node: Any, prefix: KeyPath = ()) -> dict[KeyPath, int]:
    """1-based line of every mapping key and sequence item in a composed YAML node tree.

    An alias is walked once per use, so the tree must have passed :func:`check_size`
    (as every tree :func:`parse_yaml` parses has).
    """
    import yaml

    out: dict[KeyPath, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = (*prefix, str(k.value))
            out[path] = k.start_mark.line + 1
            out.update(key_lines(v, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            path = (*prefix, str(i))
            out[path] = v.start_mark.line + 1
            out.update(key_lines(v, path))
    return out


def safe_load(text: str, name: str = "YAML") -> Any:
    r"""``yaml.safe_load`` with this module's bounds (aliases, depth), for any untrusted YAML.

    Raises
    ------
    SpecError
        Not valid YAML, or a document past the bounds (see the module notes); the
        message starts with ``name``.

    Examples
    --------
    >>> safe_load("a: &x [1, 2]\nb: *x\n")
    {'a': [1, 2], 'b': [1, 2]}
    >>> safe_load("date: 2021-06-03")  # dates stay the text written
    {'date': '2021-06-03'}
    """
    return parse_yaml(text, name)[0]


def _loader(text: str) -> Any:
    """A SafeLoader that keeps dates and timestamps as the text written (``2021-06-03``).

    Specs type their dates as years or ISO text (geoseg.change.date_axis parses them);
    YAML would otherwise turn an unquoted date into a ``datetime.date`` no field takes.
    """
    import yaml

    class _Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    _Loader.add_constructor(
        "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
    )
    return _Loader(text)


def parse_yaml(text: str, name: str) -> tuple[Any, dict[KeyPath, int]]:
    """The document in ``text`` and the 1-based line of every key path in it.

    Composed once, the node graph's size checked, then lines and objects taken from it.

    Raises
    ------
    SpecError
        Not valid YAML, or a document past the bounds (see the module notes); the
        message starts with ``name``.
    """
    import yaml

    loader = _loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        check_size(node, name)
        lines = key_lines(node)  # before construction: merge keys (<<) rewrite the nodes
        return loader.construct_document(node), lines
    except SpecError:
        raise
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{name} line {mark.line + 1}" if mark is not None else name
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{where}: not valid YAML ({problem}); fix the syntax") from err
    except RecursionError as err:  # the composer recurses once per level
        raise SpecError(
            f"{name}: YAML nested more than {MAX_DEPTH} levels deep; flatten the document"
        ) from err
    except ValueError as err:  # a bad date, or an integer longer than Python converts
        problem = str(err).split(";")[0]
        raise SpecError(f"{name}: a YAML value cannot be read ({problem}); fix the value") from err
    finally:
        loader.dispose()


def check_size(root: Any, name: str = "spec") -> int:
    """Check a composed YAML node graph before anything walks it; return its expanded size.

    The composer shares one node for an anchor and all its aliases, so the graph is small
    while the document it stands for can be exponential (or, with an alias inside its own
    anchor, infinite). Sizes are computed once per distinct node.

    Raises
    ------
    SpecError
        The aliases add more than :data:`MAX_ALIAS_NODES` nodes, an alias contains
        itself, or the document nests deeper than :data:`MAX_DEPTH`.
    """
    import yaml

    known: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    open_nodes: set[int] = set()

    def measure(node: Any, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            raise SpecError(
                f"{name} line {node.start_mark.line + 1}: a YAML alias refers to a node that "
                "contains it (a recursive document); write the value out"
            )
        if key not in known:
            if depth > MAX_DEPTH:
                raise SpecError(
                    f"{name} line {node.start_mark.line + 1}: YAML nested more than "
                    f"{MAX_DEPTH} levels deep; flatten the document"
                )
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            open_nodes.add(key)
            sizes = [measure(child, depth + 1) for child in children]
            open_nodes.discard(key)
            known[key] = (1 + sum(s for s, _ in sizes), 1 + max((h for _, h in sizes), default=0))
        size, height = known[key]
        if depth + height > MAX_DEPTH + 1:
            raise SpecError(
                f"{name}: YAML nested more than {MAX_DEPTH} levels deep (through an alias); "
                "flatten the document"
            )
        return size, height

    total, _ = measure(root, 1)
    if total - len(known) > MAX_ALIAS_NODES:
        raise SpecError(
            f"{name}: YAML aliases (*name) expand this document by more than "
            f"{MAX_ALIAS_NODES:,} nodes; write the repeated parts out or use fewer aliases"
        )
    return total
