"""Untrusted inputs: STAC catalogs, workflow and train YAML, zone files (docs/security.md).

The one-line errors are rows of the bad-input table (``tests/bad_cases_untrusted.py``);
these tests check what the table cannot: that nothing was written outside the output
folder, that a YAML bomb is refused in bounded time and memory, and what names become.
"""

from __future__ import annotations

import csv
import io
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import shapely
from click.testing import CliRunner

from geoseg.analysis.stats import class_areas
from geoseg.cli.main import cli
from geoseg.errors import GeosegError, SpecError
from geoseg.yamlsafe import MAX_ALIAS_NODES
from geoseg.yamlspec import loads, read_yaml
from tests.bad_cases_untrusted import (
    ESCAPE,
    class_raster,
    deep_out,
    laughs,
    predict_stac_args,
    stac_bundle,
    stac_catalog,
    train_config,
    workflow,
    zones_file,
)

pytest.importorskip("pystac")


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _planted(tmp: Path) -> Path:
    """The file ``ESCAPE`` points at from ``deep_out(tmp)/_inputs``, made beforehand."""
    target = tmp / "a" / "outside" / "evil.vrt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"precious")
    return target


def _one_line(args: list[str]) -> str:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, (res.output, res.exception)
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in res.output
    return err


# -- STAC: item ids and asset keys never leave --out ----------------------------------------


def test_hostile_item_id_writes_nothing_anywhere(tmp_path: Path) -> None:
    planted = _planted(tmp_path)
    catalog = stac_catalog(tmp_path, ("fine", ESCAPE))
    stac_bundle(tmp_path)
    before = _files(tmp_path)
    out = deep_out(tmp_path)
    err = _one_line(predict_stac_args(catalog, tmp_path, out))
    assert repr(ESCAPE) in err and "cannot be used in a file name" in err
    assert _files(tmp_path) == before  # not even the safe item's VRT: ids are checked first
    assert planted.read_bytes() == b"precious"


def test_hostile_asset_key_is_only_a_key(tmp_path: Path) -> None:
    """Asset keys are matched, never used as file names: the item predicts, inside --out."""
    import pystac

    planted = _planted(tmp_path)
    catalog = stac_catalog(tmp_path, ("a",), asset_key=ESCAPE + "\n|x")
    stac_bundle(tmp_path)
    before = _files(tmp_path)
    out = deep_out(tmp_path)
    res = CliRunner().invoke(cli, predict_stac_args(catalog, tmp_path, out, "--no-vector"))
    assert res.exit_code == 0, (res.output, res.exception)
    new = set(_files(tmp_path)) - set(before)
    assert new and all(out in p.parents for p in new), sorted(map(str, new))
    assert planted.read_bytes() == b"precious"
    results = pystac.Catalog.from_file(str(out / "stac" / "catalog.json"))
    [item] = results.get_items(recursive=True)
    assert item.id == "a" and (out / "a_classes.tif").exists()


@pytest.mark.parametrize("folder", ["_inputs", "stac"])
def test_a_folder_linking_elsewhere_is_refused(tmp_path: Path, folder: str) -> None:
    """``inside`` resolves links: a symlink out of --out is not written through."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / folder).symlink_to(elsewhere, target_is_directory=True)
    catalog = stac_catalog(tmp_path)
    res = CliRunner().invoke(cli, predict_stac_args(catalog, tmp_path, out))
    assert res.exit_code == 2 and "outside the output folder" in res.stderr, res.output
    assert list(elsewhere.iterdir()) == []


def test_batch_workflow_checks_stac_ids_too(tmp_path: Path) -> None:
    from geoseg.workflows import run_workflow

    planted = _planted(tmp_path)
    catalog = stac_catalog(tmp_path, (ESCAPE,))
    spec = tmp_path / "batch.yaml"
    spec.write_text(
        f"kind: batch\nmodel: {stac_bundle(tmp_path)}\ninputs:\n  stac: {catalog}\n"
        f"report: false\nout: {deep_out(tmp_path)}\n",
        encoding="utf-8",
    )
    with pytest.raises(GeosegError, match="cannot be used in a file name"):
        run_workflow(spec)
    assert planted.read_bytes() == b"precious"
    assert not (tmp_path / "a" / "outside" / "evil").exists()


# -- YAML: bounded parsing ---------------------------------------------------------------


def _merge_laughs(levels: int) -> str:
    """Merge keys (``<<``) doubling a mapping at each level: 2**levels pairs when flattened."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: {i}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [laughs(9, 9), laughs(10, 10), laughs(40, 2), _merge_laughs(25)],
    ids=["9x9", "10x10", "40x2", "merge-keys"],
)
def test_alias_bombs_are_refused_in_bounded_time_and_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(SpecError, match=r"bomb.yaml: YAML aliases \(\*name\) expand"):
            read_yaml(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 2.0 and peak < 20 * 2**20, (seconds, peak)


def _limited(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run geoseg with 2 GiB of address space and 60 s: the bomb used 3.2 GB and 22 s."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    return subprocess.run(
        [sys.executable, "-m", "geoseg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )


@pytest.mark.parametrize("command", ["run --check", "train"])
def test_alias_bomb_cli_is_one_line_within_limits(tmp_path: Path, command: str) -> None:
    if command == "train":
        path = train_config(tmp_path, laughs(10, 10))
    else:
        path = workflow(tmp_path, laughs(10, 10))
    res = _limited([*command.split(), str(path)], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip()
    assert "\n" not in err and "YAML aliases (*name) expand this document" in err, err


@dataclass
class _Doc:
    base: Any = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def test_a_few_aliases_still_work() -> None:
    text = "base: &b {chip: 256, overlap: 32}\nruns:\n" + "".join(
        f"  - {{<<: *b, name: r{i}}}\n" for i in range(50)
    )
    doc = loads(text, _Doc)
    assert len(doc.runs) == 50 and doc.runs[7] == {"chip": 256, "overlap": 32, "name": "r7"}
    big = "base: &b [" + ", ".join(["x"] * 100) + "]\nruns: [" + ", ".join(["{l: *b}"] * 99) + "]"
    assert 99 * 101 <= MAX_ALIAS_NODES  # 99 uses of a 101-node list: just inside the cap
    assert len(loads(big, _Doc).runs) == 99


# -- sizes in workflow and train files ---------------------------------------------------


@pytest.mark.parametrize("chip", ["1e29", "1" + "0" * 29, "1.0e+29"])
def test_absurd_chip_fails_the_run_before_anything_is_written(tmp_path: Path, chip: str) -> None:
    path = workflow(tmp_path, f"predict: {{chip: {chip}}}\n")
    err = _one_line(["run", str(path)])
    assert "line 8: predict" in err and "chip" in err
    assert not (tmp_path / "out").exists()


def test_train_chip_flag_is_checked_like_the_file(tmp_path: Path) -> None:
    path = train_config(tmp_path, "epochs: 1\n")
    err = _one_line(["train", str(path), "--chip", "100000"])
    assert "model.chip must be a whole number from 8 to 4,096, got 100000" in err
    assert not (tmp_path / "out").exists()


def test_unsafe_workflow_file_name_needs_an_out(tmp_path: Path) -> None:
    """Without ``out`` the outputs go to results/<file name>: '...yaml' would be results/.."""
    from geoseg.workflows import load_workflow

    path = workflow(tmp_path, "", name="...yaml")
    path.write_text(path.read_text(encoding="utf-8").replace(f"out: {tmp_path / 'out'}\n", ""))
    with pytest.raises(SpecError, match=r"workflow file name '\.\.' cannot be used.*out="):
        load_workflow(path)
    assert load_workflow(path, out=tmp_path / "o").out == tmp_path / "o"


# -- zones: polygons only, names as written ----------------------------------------------


def _box(col0: int, col1: int) -> shapely.Polygon:
    x0, y0 = 300000.0, 4150000.0
    return shapely.box(x0 + 30 * col0, y0 - 30 * 20, x0 + 30 * col1, y0)


def test_zone_names_null_newline_and_pipe(tmp_path: Path) -> None:
    geoms = [_box(0, 5), _box(5, 10), _box(10, 15), _box(15, 20)]
    zones = zones_file(tmp_path, geoms, [None, "two\nlines", "a|b", "c\\|d"])
    table = class_areas(class_raster(tmp_path), zones=zones, zone_field="name")
    assert [r.zone for r in table.rows] == ["", "two\nlines", "a|b", "c\\|d"]
    md = table.to_markdown()
    assert "nan" not in md
    body = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert len(body) == len(table.rows)  # one line per row: the newline did not split it
    assert [line.split(" | ")[0] for line in body] == [
        "| ",
        "| two<br>lines",
        "| a\\|b",
        "| c\\\\\\|d",
    ]
    rows = list(csv.reader(io.StringIO(table.to_csv())))[1:]
    assert [r[0] for r in rows] == ["", "two\nlines", "a|b", "c\\|d"]  # CSV keeps them exact


def test_integer_zone_ids_with_a_null_are_not_floats(tmp_path: Path) -> None:
    zones = zones_file(tmp_path, [_box(0, 10), _box(10, 20)], [3, None], dtype="Int64")
    table = class_areas(class_raster(tmp_path), zones=zones, zone_field="name")
    assert [r.zone for r in table.rows] == ["3", ""]


def test_a_collapsed_polygon_is_not_burned_as_a_line(tmp_path: Path) -> None:
    """make_valid turns a zero-area ring into a line; only polygon parts are rasterized."""
    x0, y0 = 300000.0, 4150000.0
    line = [(x0, y0 - 300), (x0 + 300, y0 - 300), (x0 + 600, y0 - 300), (x0, y0 - 300)]
    flat = shapely.Polygon(line)
    zones = zones_file(tmp_path, [_box(0, 10), flat], ["real", "flat"])
    table = class_areas(class_raster(tmp_path), zones=zones, zone_field="name")
    assert {r.zone for r in table.rows} == {"real"} and table.empty_zones == ("flat",)


@pytest.mark.parametrize("kind", ["bundle metadata", "class scheme"])
def test_bombs_in_bundle_metadata_and_class_schemes(tmp_path: Path, kind: str) -> None:
    """The other YAML readers go through the same bounded loader (they used plain safe_load)."""
    from geoseg.models.meta import read_metadata
    from geoseg.schemes import load_scheme

    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(10, 10), encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(GeosegError, match=r"YAML aliases \(\*name\) expand"):
        read_metadata(str(path)) if kind == "bundle metadata" else load_scheme(path)
    assert time.perf_counter() - start < 2.0
