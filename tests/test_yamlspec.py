"""geoseg.yamlspec: dataclasses from YAML with the line of every mistake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from geoseg.errors import InputError, SpecError
from geoseg.yamlspec import InputGlob, InputPath, OutputPath, build, dotted, load, loads, type_name


@dataclass
class Inner:
    mode: Literal["a", "b"] = "a"
    size: int = 4
    ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"size must be at least 1, got {self.size}")


@dataclass
class Term:
    name: str
    weight: float = 1.0


@dataclass
class Early:
    patience: int = 0

    @staticmethod
    def yaml_shorthand(value: Any) -> Any:
        return {"patience": value} if isinstance(value, int) else value


@dataclass
class Top:
    name: str
    inner: Inner = field(default_factory=Inner)
    terms: list[Term] = field(default_factory=list)
    ids: list[int | str] | None = None
    shape: tuple[int, ...] | None = None
    pair: tuple[int, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    early: Early = field(default_factory=Early)
    flag: bool = False
    scene: InputPath | None = None
    pattern: InputGlob | None = None
    out: OutputPath | None = None
    hidden: str = field(default="x", metadata={"yaml": False})


GOOD = """\
name: demo
inner:
  mode: b
  size: 8
  ratio: 1        # an int is a fine float
terms:
  - {name: ce}
  - {name: dice, weight: 0.5}
ids: [1, forest, 3]
shape: [2, 3]
pair: [1, x]
extra: {anything: [1, 2]}
weights: {a: 1, b: 2.5}
early: 5
flag: true
"""


def test_builds_the_whole_tree() -> None:
    top = loads(GOOD, Top)
    assert top.inner == Inner(mode="b", size=8, ratio=1.0)
    assert isinstance(top.inner.ratio, float)
    assert top.terms == [Term("ce"), Term("dice", 0.5)]
    assert top.ids == [1, "forest", 3]
    assert top.shape == (2, 3) and top.pair == (1, "x")
    assert top.extra == {"anything": [1, 2]} and top.weights == {"a": 1.0, "b": 2.5}
    assert top.early == Early(5) and top.flag is True and top.hidden == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\ninner:\n  mode: a\n  sise: 3\n",
            "t.yaml line 4: unknown key 'sise' in inner; known keys: mode, size, ratio",
        ),
        ("name: x\ncolour: red\n", "t.yaml line 2: unknown key 'colour' at the top level;"),
        ("name: x\nhidden: y\n", "t.yaml line 2: unknown key 'hidden' at the top level"),
        ("name: x\ninner:\n  size: big\n", "t.yaml line 3: inner.size must be int, got 'big'"),
        ("name: x\ninner:\n  size: true\n", "t.yaml line 3: inner.size must be int, got True"),
        ("name: x\ninner:\n  mode: c\n", "t.yaml line 3: inner.mode must be 'a' or 'b', got 'c'"),
        ("name: x\nterms:\n  - {name: ce}\n  - {weight: 2}\n", "t.yaml line 4: missing required"),
        (
            "name: x\nterms:\n  - {name: ce}\n  - {name: d, weight: heavy}\n",
            "t.yaml line 4: terms[1].weight must be float, got 'heavy'",
        ),
        ("name: x\nids: [1, [2]]\n", "t.yaml line 2: ids[1] must be int or str, got [2]"),
        ("name: x\npair: [1]\n", "t.yaml line 2: pair needs 2 items, got 1"),
        ("name: x\ninner: 3\n", "t.yaml line 2: inner must be a mapping, got 3"),
        ("name: x\ninner:\n  size: 0\n", "t.yaml line 2: inner: size must be at least 1, got 0"),
        ("inner: {}\n", "t.yaml: missing required key(s) name at the top level"),
        ("name: x\nweights: {a: lots}\n", "t.yaml line 2: weights.a must be float, got 'lots'"),
        ("name: [x\n", "t.yaml line 2: not valid YAML"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        loads(text, Top, source="t.yaml")
    assert str(err.value).startswith(message), str(err.value)
    assert isinstance(err.value, InputError)


def test_paths_resolve_against_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.tif").write_bytes(b"")
    spec = tmp_path / "conf" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(
        "name: x\nscene: ../data/a.tif\npattern: ../data/*.tif\nout: ../results/r\n",
        encoding="utf-8",
    )
    top, source = load(spec, Top)
    assert top.scene == str(tmp_path / "data" / "a.tif")
    assert top.pattern == str(tmp_path / "data" / "*.tif")
    assert top.out == str(tmp_path / "results" / "r")  # outputs need not exist
    assert source.line(("out",)) == 4 and source.where(("scene",)) == f"{spec} line 2"


def test_missing_input_file_and_empty_glob_name_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n\nscene: nope.tif\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"spec.yaml line 3: scene: file nope.tif does not exist"):
        load(spec, Top)
    spec.write_text("name: x\npattern: '*.nothing'\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"spec.yaml line 2: pattern: no file matches \*.nothing"):
        load(spec, Top)


def test_missing_file_and_bad_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load(tmp_path / "none.yaml", Top)


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        loads("name: !!python/object/apply:os.system ['echo hi']\n", Top)


def test_build_from_a_dict_without_lines() -> None:
    with pytest.raises(SpecError, match=r"^spec: inner.size must be int"):
        build(Top, {"name": "x", "inner": {"size": "big"}})


def test_numbers_are_accepted_as_text_but_not_booleans() -> None:
    assert loads("name: 2020\n", Top).name == "2020"
    assert loads("name: x\nids: [7]\n", Top).ids == [7]  # int | str keeps the int
    with pytest.raises(SpecError, match="name must be str, got True"):
        loads("name: yes\n", Top)


def test_helpers() -> None:
    assert dotted(("a", "0", "b")) == "a[0].b" and dotted(()) == "the top level"
    assert type_name(int | None) == "int or None"
    assert type_name(list[str]) == "a list of str"


@pytest.mark.parametrize("name", ["train-landcover", "train-forest"])
def test_builds_the_training_configs_as_their_own_loader_does(name: str) -> None:
    """General enough for geoseg.train.config's tree (Literal, unions, lists, nested)."""
    import dataclasses

    from geoseg.train.config import TrainConfig, load_config
    from geoseg.yamlspec import read_yaml
    from tests.common import REPO

    path = REPO / "workflows" / f"{name}.yaml"
    doc, source = read_yaml(path)
    ours = dataclasses.asdict(build(TrainConfig, doc, source))
    theirs = dataclasses.asdict(load_config(path))
    assert ours.pop("base_dir") == "." and ours == {
        k: v for k, v in theirs.items() if k != "base_dir"
    }
