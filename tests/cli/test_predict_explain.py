"""``geoseg predict --explain`` and ``--backend``: what a run picks, printed, nothing written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.common import ZION


def test_explain_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(ZION), "-m", "landcover-nlcd8", "-o", str(out), "--explain"]
    res = CliRunner().invoke(cli, [*args, "--device", "cpu", "--threads", "1"])
    assert res.exit_code == 0, res.output
    for word in (
        "backend      onnxruntime: auto",
        "1 block task(s) at once",
        "chip         256",
        "batch size   1",
        "block        ",
        "(--explain: nothing was predicted",
    ):
        assert word in res.output, word
    assert not out.exists()
    res = CliRunner().invoke(cli, [*args, "--backend", "torch"])
    assert res.exit_code == 0 and "backend      torch: --backend torch" in res.output


def test_backend_is_checked_and_recorded(tmp_path: Path) -> None:
    import json

    args = ["predict", str(ZION), "-m", "landcover-nlcd8", "-o", str(tmp_path), "--no-vector"]
    res = CliRunner().invoke(cli, [*args, "--backend", "tensorrt"])
    assert res.exit_code == 2 and "tensorrt" in res.output
    res = CliRunner().invoke(cli, [*args, "--backend", "torch", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rec = json.loads(next(tmp_path.glob("*_run.json")).read_text())
    assert rec["execution"]["backend"] == "torch" and rec["parameters"]["backend"] == "torch"
