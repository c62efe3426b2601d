"""Batches: manifest, resume, a corrupt scene failing alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import BatchError
from geoseg.pipeline.batch import MANIFEST
from tests.common import make_bundle, read, scene_file


def _archive(tmp: Path, n: int = 3) -> list[Path]:
    folder = tmp / "archive"
    folder.mkdir(exist_ok=True)
    return [scene_file(folder / f"scene{i}.tif", (150 + 10 * i, 140), seed=i) for i in range(n)]


def _corrupt(path: Path) -> None:
    """Keep the header, lose the tiles: opens fine, fails while reading pixels."""
    from rasterio.shutil import copy as rio_copy

    cog = path.with_suffix(".cog.tif")
    rio_copy(path, cog, driver="COG", BLOCKSIZE=64)
    data = cog.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    cog.unlink()


def _manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())["scenes"]


def _scene0_done(out: Path) -> bool:
    """The manifest (replaced atomically) records scene0 as done."""
    try:
        return _manifest(out).get("scene0", {}).get("state") == "done"
    except (FileNotFoundError, json.JSONDecodeError):
        return False


@pytest.fixture(scope="module")
def bundle() -> geoseg.ModelBundle:
    return make_bundle(chip=64, overlap=16)


def test_corrupt_scene_fails_alone_and_rerun_resumes(tmp_path: Path, bundle) -> None:
    scenes = _archive(tmp_path)
    good = scenes[1].read_bytes()
    _corrupt(scenes[1])
    out = tmp_path / "out"
    with pytest.raises(BatchError, match="1 of 3 scenes failed .*scene1") as info:
        geoseg.predict([str(s) for s in scenes], bundle, out, vector=False)
    states = {Path(r.scene).stem: r.state for r in info.value.results}
    assert states == {"scene0": "done", "scene1": "failed", "scene2": "done"}
    m = _manifest(out)
    assert m["scene1"]["state"] == "failed" and "corrupt" in m["scene1"]["error"]
    assert m["scene0"]["state"] == m["scene2"]["state"] == "done"
    assert not (out / "scene1_classes.tif").exists()
    done_mtime = (out / "scene0_run.json").stat().st_mtime_ns

    # same call again: finished scenes are skipped, the failed one is retried (and fails)
    with pytest.raises(BatchError) as again:
        geoseg.predict([str(s) for s in scenes], bundle, out, vector=False)
    assert [r.state for r in again.value.results] == ["skipped", "failed", "skipped"]
    assert (out / "scene0_run.json").stat().st_mtime_ns == done_mtime

    # the scene is repaired: only it runs now
    scenes[1].write_bytes(good)
    results = geoseg.predict([str(s) for s in scenes], bundle, out, vector=False)
    assert [r.state for r in results] == ["skipped", "done", "skipped"]
    assert all(e["state"] == "done" for e in _manifest(out).values())
    assert (out / "scene0_run.json").stat().st_mtime_ns == done_mtime


def test_changed_options_or_inputs_are_not_skipped(tmp_path: Path, bundle) -> None:
    scenes = [str(s) for s in _archive(tmp_path, 2)]
    out = tmp_path / "out"
    geoseg.predict(scenes, bundle, out, vector=False)
    with pytest.raises(BatchError) as info:  # other options: outputs exist, not ours
        geoseg.predict(scenes, bundle, out, vector=False, blend="crop")
    assert all("overwrite=True" in (r.error or "") for r in info.value.results)
    results = geoseg.predict(scenes, bundle, out, vector=False, blend="crop", overwrite=True)
    assert [r.state for r in results] == ["done", "done"]
    # a block size never changes the bytes, so it does not invalidate a finished scene
    results = geoseg.predict(scenes, bundle, out, vector=False, blend="crop", block=70)
    assert [r.state for r in results] == ["skipped", "skipped"]
    Path(scenes[0]).write_bytes(Path(scenes[0]).read_bytes())  # same content, new mtime
    results = geoseg.predict(scenes, bundle, out, vector=False, blend="crop")
    assert [r.state for r in results] == ["skipped", "skipped"]  # content hash, not mtime
    # what does change the bytes does invalidate: precision, the input's content, the model
    kw = {"vector": False, "blend": "crop", "overwrite": True}
    results = geoseg.predict(scenes, bundle, out, precision="bf16", **kw)
    assert [r.state for r in results] == ["done", "done"]
    results = geoseg.predict(scenes, bundle, out, **kw)
    assert [r.state for r in results] == ["done", "done"]  # back to fp32: run again
    scene_file(Path(scenes[0]), (150, 140), seed=99)  # same name and size, other pixels
    results = geoseg.predict(scenes, bundle, out, **kw)
    assert [r.state for r in results] == ["done", "skipped"]
    other = make_bundle(chip=64, overlap=16, seed=1)
    results = geoseg.predict(scenes, other, out, **kw)
    assert [r.state for r in results] == ["done", "done"]


def test_cli_batch_summary_and_exit_code(tmp_path: Path, bundle) -> None:
    scenes = _archive(tmp_path)
    _corrupt(scenes[2])
    bpath = bundle.save(tmp_path / "m.bundle")
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            str(tmp_path / "archive" / "scene*.tif"),
            "--model",
            str(bpath),
            "--out",
            str(tmp_path / "out"),
            "--no-vector",
        ],
    )
    assert res.exit_code == 2
    assert "2 done, 0 already done, 1 failed" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: 1 of 3 scenes failed")
    assert "Traceback" not in res.output


def test_killed_batch_resumes_to_the_same_bytes(tmp_path: Path, bundle) -> None:
    scenes = [str(s) for s in _archive(tmp_path, 3)]
    bpath = bundle.save(tmp_path / "m.bundle")
    ref = geoseg.predict(scenes, bundle, tmp_path / "ref", vector=False)
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "geoseg",
        "predict",
        *scenes,
        "--model",
        str(bpath),
        "--out",
        str(out),
        "--no-vector",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not _scene0_done(out):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    states = {k: v["state"] for k, v in _manifest(out).items()}
    assert states["scene0"] == "done" and "pending" in states.values(), states
    results = geoseg.predict(scenes, bundle, out, vector=False)
    assert results[0].state == "skipped"
    for r, want in zip(results, ref, strict=True):
        assert np.array_equal(read(r.outputs["classes"]), read(want.outputs["classes"]))


def test_manifest_false_predicts_every_scene_in_turn(tmp_path: Path) -> None:
    """``manifest=False`` with several scenes runs each one, not only the first."""
    scenes = _archive(tmp_path, 2)
    out = tmp_path / "out"
    results = geoseg.predict([str(s) for s in scenes], make_bundle(), out, manifest=False)
    assert [r.scene for r in results] == [str(s) for s in scenes]
    assert all((out / f"{s.stem}_classes.tif").exists() for s in scenes)
    assert not (out / MANIFEST).exists()
    for s in scenes:  # the same bytes as a run of that scene alone
        [alone] = geoseg.predict(str(s), make_bundle(), tmp_path / s.stem)
        assert np.array_equal(read(out / f"{s.stem}_classes.tif"), read(alone.outputs["classes"]))
