"""Bad input, as a table: one line of error, exit code 2, nothing with a final name written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests import bad_cases_bundle, bad_cases_predict, bad_cases_untrusted
from tests.badinput import (
    FINAL_SUFFIXES,
    Case,
    _all_nodata,
    _bad_arch,
    _bundle,
    _cog,
    _corrupt_tiles,
    _dup_stems,
    _existing_output,
    _mixed,
    _nan_only,
    _no_crs,
    _not_writable,
    _onnx_wrong_classes,
    _predict,
    _scene,
    _tampered,
    _text_file,
    _truncated,
    _weights_tampered,
    file_size_limit,
)
from tests.common import ZION, make_bundle, scene_file

CASES: dict[str, Case] = {
    "missing file": (_predict(lambda t: str(t / "nope.tif")), "does not exist"),
    "not a raster": (_predict(_text_file), "cannot open"),
    "truncated header": (_predict(lambda t: _truncated(t, ZION, 0.0005)), "cannot open"),
    "truncated tiles": (_predict(lambda t: _truncated(t, _cog(t), 0.6)), "corrupt"),
    "corrupt tiles": (_predict(_corrupt_tiles), "corrupt"),
    "no crs": (_predict(_no_crs), "--allow-no-crs"),
    "band count": (_predict(lambda t: _scene(t, bands=3)), "expects 4"),
    "band names": (_predict(None, "--bands", "red,green,blue,nir"), "no band named 'red'"),
    "bands out of range": (_predict(None, "--bands", "1,2,3,9"), "band 9 is out of range"),
    "bands too few": (_predict(None, "--bands", "1,2"), "selects 2 bands"),
    "all nodata": (_predict(_all_nodata), "no valid pixel"),
    "nan-only bands": (_predict(_nan_only), "no valid pixel"),
    "chip <= overlap": (_predict(None, "--chip", "32", "--overlap", "32"), "overlap 32"),
    "chip > scene, no pad": (_predict(None, "--chip", "128", "--no-pad"), "larger than the scene"),
    "unknown bundle": (_predict(None, bundle=lambda t: "no-such-model"), "no shipped bundle"),
    "corrupt bundle": (
        _predict(None, bundle=lambda t: _truncated(t, Path(_bundle(t)), 0.5)),
        "not a readable bundle",
    ),
    "tampered metadata": (_predict(None, bundle=_tampered), "integrity check"),
    "tampered weights": (_predict(None, bundle=_weights_tampered), "integrity check"),
    "onnx output shape": (_onnx_wrong_classes, "does not match the bundle's class scheme"),
    "unknown architecture": (_bad_arch, "unknown architecture"),
    "out not writable": (_not_writable, "not writable"),
    "output exists": (_existing_output, "--overwrite"),
    "mixed crs": (_mixed, "different CRSs"),
    "duplicate stems": (_dup_stems, "share the name"),
    "glob matches nothing": (_predict(lambda t: str(t / "*.nothing")), "no scene matches"),
    "cuda without gpu": (_predict(None, "--device", "cuda"), "no CUDA GPU"),
    "batch size 0": (_predict(None, "--batch-size", "0"), "--batch-size must be"),
    "bad block": (_predict(None, "--block", "-5"), "--block must be"),
}

# Each area keeps its rows in its own module (tests/bad_cases_*.py).
for _area in (bad_cases_untrusted, bad_cases_predict, bad_cases_bundle):
    assert not set(_area.CASES) & set(CASES), _area.__name__
    CASES.update(_area.CASES)


def _final_outputs(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.endswith(FINAL_SUFFIXES)
        and p.parent.name == "out"
    ]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    build, expected = CASES[case]
    if case == "cuda without gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    args = build(tmp_path)
    before = {p: p.read_bytes() for p in _final_outputs(tmp_path)}
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert expected in err, err
    assert "Traceback" not in result.output
    after = {p: p.read_bytes() for p in _final_outputs(tmp_path)}
    assert after == before  # nothing new or changed with a final name
    out = tmp_path / "out"
    if out.is_dir():
        assert not [p for p in out.iterdir() if ".geoseg-tmp-" in p.name]


def test_corrupt_tiles_met_mid_run_are_a_read_error_not_a_write_error(tmp_path: Path) -> None:
    """With fixed normalization nothing reads pixels before the blocks do."""
    fixed = {"type": "fixed", "mean": [0.0] * 4, "std": [1000.0] * 4}
    bundle = tmp_path / "fixed.bundle"
    make_bundle("ConvStack", chip=64, overlap=16, normalization=fixed).save(bundle)
    scene = _truncated(tmp_path, _cog(tmp_path), 0.6)
    args = ["predict", scene, "--model", str(bundle), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    err = result.stderr.strip()
    assert "cannot read pixels" in err and "corrupt" in err, err
    assert "cannot write" not in err and "disk space" not in err, err
    assert _final_outputs(tmp_path) == []


def test_disk_full_during_write(tmp_path: Path) -> None:
    src = str(scene_file(tmp_path / "big.tif", (900, 900), dtype="uint8"))
    bundle = _bundle(tmp_path)
    runner = CliRunner()
    with file_size_limit(300_000):
        result = runner.invoke(
            cli, ["predict", src, "--model", bundle, "--out", str(tmp_path / "out"), "--confidence"]
        )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "ran out of disk space" in result.stderr
    assert "\n" not in result.stderr.strip()
    assert _final_outputs(tmp_path) == []
    assert not [p for p in (tmp_path / "out").iterdir() if ".geoseg-tmp-" in p.name]


def test_no_crs_allowed_when_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            _no_crs(tmp_path),
            "--model",
            _bundle(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--allow-no-crs",
            "--no-vector",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "nocrs_classes.tif").exists()


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20
