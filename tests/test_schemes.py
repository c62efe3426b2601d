from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geoseg.errors import InputError
from geoseg.schemes import catalogs_dir, load_scheme, parse_classes

SCHEMES = sorted(p.stem for p in catalogs_dir().glob("*.yaml"))


def test_catalog_holds_the_expected_schemes() -> None:
    assert {"nlcd8", "water", "forest", "esa-worldcover"} <= set(SCHEMES)


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_is_valid(name: str) -> None:
    classes = load_scheme(name)
    doc = yaml.safe_load(Path(catalogs_dir() / f"{name}.yaml").read_text())
    assert doc["name"] == name and doc.get("description")
    assert len(classes) == len(doc["classes"]) >= 2


def test_esa_worldcover_official_colors() -> None:
    wc = {c.id: c for c in load_scheme("esa-worldcover")}
    assert len(wc) == 11
    assert wc[10].color.upper() == "#006400" and wc[80].color.upper() == "#0064C8"
    assert wc[50].name == "built-up"


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (
            [
                {"id": 1, "name": "a", "color": "#000000"},
                {"id": 1, "name": "b", "color": "#000000"},
            ],
            "unique",
        ),
        ([{"id": 255, "name": "a", "color": "#000000"}], "0..254"),
        ([{"id": 1, "name": "a", "color": "red"}], "color"),
        ([{"id": 1, "color": "#000000"}], "needs 'id', 'name' and 'color'"),
        ([], "at least one class"),
    ],
)
def test_bad_schemes_are_refused(items: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_classes(items)


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(InputError, match="known schemes: .*nlcd8"):
        load_scheme("no-such-scheme")


def test_dynamic_world_and_flood_schemes() -> None:
    dw = load_scheme("dynamic-world")
    assert [c.id for c in dw] == list(range(9))
    assert dw[0].name == "water" and dw[1].name == "trees" and dw[8].name == "snow_and_ice"
    assert dw[0].color.upper() == "#419BDF" and dw[6].color.upper() == "#C4281B"
    flood = load_scheme("flood")
    assert [(c.id, c.name) for c in flood] == [
        (0, "dry"),
        (1, "permanent water"),
        (2, "flood"),
        (3, "receded"),
    ]


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_schemes_describe_every_class(name: str) -> None:
    assert all(c.description for c in load_scheme(name))
    assert len({c.color.upper() for c in load_scheme(name)}) == len(load_scheme(name))
