from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.common import make_bundle, scene_file


def _all_commands() -> list[list[str]]:
    """Every registered command and sub-command: each one's --help shows an example."""
    import click

    out = []
    for name, cmd in sorted(cli.commands.items()):
        if isinstance(cmd, click.Group):
            out += [[name, sub] for sub in sorted(cmd.commands)]
        else:
            out.append([name])
    return out


COMMANDS = _all_commands()


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_has_an_example(cmd: list[str]) -> None:
    res = CliRunner().invoke(cli, [*cmd, "--help"])
    assert res.exit_code == 0
    assert "Example" in res.output and "geoseg " in res.output


def test_help_does_not_import_torch() -> None:
    code = "import sys; from geoseg.cli.main import cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _geoseg() -> list[str]:
    return [sys.executable, "-m", "geoseg"]


def test_predict_as_a_real_subprocess(tmp_path: Path) -> None:
    scene = scene_file(tmp_path / "s.tif", (200, 180))
    bundle = make_bundle().save(tmp_path / "m.bundle")
    out = subprocess.run(
        [
            *_geoseg(),
            "predict",
            str(scene),
            "--model",
            str(bundle),
            "--out",
            str(tmp_path / "out"),
            "--confidence",
            "--quicklook",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for name in (
        "s_classes.tif",
        "s_confidence.tif",
        "s_classes.gpkg",
        "s_run.json",
        "s_quicklook.png",
    ):
        assert (tmp_path / "out" / name).exists(), name
    bad = subprocess.run(
        [
            *_geoseg(),
            "predict",
            str(tmp_path / "missing.tif"),
            "--model",
            str(bundle),
            "--out",
            str(tmp_path / "out2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_killed_run_leaves_no_final_file(tmp_path: Path) -> None:
    """SIGKILL mid-run: only temporaries remain, and a re-run cleans them and finishes."""
    scene = scene_file(tmp_path / "big.tif", (1400, 1400), dtype="uint8")
    bundle = make_bundle(
        "Unet",
        encoder="resnet18",
        chip=128,
        overlap=32,
        arch_params={"encoder_depth": 3, "decoder_channels": [32, 16, 8]},
    )
    bpath = bundle.save(tmp_path / "m.bundle")
    out = tmp_path / "out"
    args = [
        *_geoseg(),
        "predict",
        str(scene),
        "--model",
        str(bpath),
        "--out",
        str(out),
        "--confidence",
        "--block",
        "256",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(".geoseg-tmp-" in p.name for p in out.glob(".*")):
        time.sleep(0.05)
    time.sleep(1.0)  # let it write some cells
    assert proc.poll() is None, "run finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers and all(".geoseg-tmp-" in n for n in leftovers), leftovers
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "big_classes.gpkg",
        "big_classes.qml",  # QGIS style sidecar of the class raster
        "big_classes.tif",
        "big_classes.tif.aux.xml",
        "big_confidence.tif",
        "big_run.json",
    ], names
    with rasterio.open(out / "big_classes.tif") as ds:
        assert ds.shape == (1400, 1400)


def _run_in_pty(args: list[str]) -> str:
    """Run a command on a real pseudo-terminal (100 columns) and return what it drew."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    out = b""
    while select.select([fd], [], [], 120)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace")


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    scene = scene_file(tmp_path / "s.tif", (300, 280))
    bundle = make_bundle().save(tmp_path / "m.bundle")
    drawn = _run_in_pty(
        [
            sys.executable,
            "-m",
            "geoseg",
            "predict",
            str(scene),
            "--model",
            str(bundle),
            "--out",
            str(tmp_path / "out"),
            "--no-vector",
        ]
    )
    assert "100%" in drawn and "chips/s" in drawn, drawn[-2000:]
    quiet = subprocess.run(
        [
            *_geoseg(),
            "predict",
            str(scene),
            "--model",
            str(bundle),
            "--out",
            str(tmp_path / "out2"),
            "--no-vector",
        ],
        capture_output=True,
        text=True,
    )
    assert "chips/s" not in quiet.stderr  # no bar in logs


def _predict_args(tmp_path: Path) -> list[str]:
    scene = scene_file(tmp_path / "s.tif", (300, 260))
    bundle = tmp_path / "m.bundle"
    make_bundle().save(bundle)
    return ["predict", str(scene), "-m", str(bundle), "-o", str(tmp_path / "out"), "--no-vector"]


def test_off_a_terminal_a_long_run_prints_progress_lines(tmp_path: Path) -> None:
    """Logs and CI (stderr not a TTY) get periodic lines; GEOSEG_PROGRESS_SECONDS=0: each update."""
    args = _predict_args(tmp_path)
    env = {**os.environ, "GEOSEG_PROGRESS_SECONDS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "geoseg", *args, "--block", "64"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if " chips (" in ln]
    assert len(lines) >= 3, done.stderr
    assert "elapsed, about" in lines[0] and lines[-1].endswith(tuple("0123456789s"))
    assert "(100 %) in " in lines[-1]
    # the default (a line every 30 s) keeps a short run quiet
    env.pop("GEOSEG_PROGRESS_SECONDS")
    quiet = subprocess.run(
        [sys.executable, "-m", "geoseg", *args, "--overwrite"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert quiet.returncode == 0 and " chips (" not in quiet.stderr, quiet.stderr


def test_on_a_terminal_the_progress_bar_shows(tmp_path: Path) -> None:
    """Under a pseudo-terminal (as in tmux or an ssh session) predict draws its tqdm bar."""
    import pty

    args = _predict_args(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the pty
        os.execv(sys.executable, [sys.executable, "-m", "geoseg", *args])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the pty
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "chips" in text and "100%" in text and "\r" in text, text  # a redrawn bar
    assert "elapsed, about" not in text  # not the off-terminal lines


def test_the_cli_names_flags_and_the_api_names_arguments(tmp_path: Path) -> None:
    """One error, two wordings: ``--overwrite`` on the CLI, ``overwrite=True`` in the API."""
    import geoseg
    from geoseg.errors import OutputError

    args = _predict_args(tmp_path)
    assert CliRunner().invoke(cli, args).exit_code == 0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output, again.output
    assert "overwrite=True" not in again.output
    scene, bundle, out = args[1], args[3], args[5]
    with pytest.raises(OutputError) as err:
        geoseg.predict(scene, bundle, out, vector=False)
    assert "overwrite=True" in str(err.value) and "--overwrite" not in str(err.value)
