"""Output safety the bad-input table cannot express: concurrent runs, a full disk, stale outputs.

Concurrency uses real ``geoseg`` processes (one is paused with SIGSTOP while it
holds its outputs, so the timing is certain); the full disk is a real tmpfs of
a chosen size, mounted in a private mount namespace (``unshare``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import geoseg
from geoseg.atomic import TMP_MARK, clean_stale
from geoseg.cli.main import cli
from tests.common import make_bundle, scene_file, write_raster

GEOSEG = [sys.executable, "-m", "geoseg"]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name)


def _start_and_pause(args: list[str], out: Path) -> subprocess.Popen[bytes]:
    """Start a geoseg run and stop it (SIGSTOP) once it is writing temporaries."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and any(".tif" in n and "lock" not in n for n in _temps(out)):
            os.kill(proc.pid, signal.SIGSTOP)
            return proc
        time.sleep(0.005)
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"the first run never wrote temporaries: {err!r}")


@pytest.fixture
def paused() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes to resume (and reap) whatever the test's outcome."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _setup(tmp_path: Path, *names: str, shape: tuple[int, int] = (700, 700)) -> list[str]:
    make_bundle("ConvStack", chip=64, overlap=16).save(tmp_path / "m.bundle")
    return [str(scene_file(tmp_path / n, shape, seed=i)) for i, n in enumerate(names)]


def test_second_run_on_a_scene_is_refused_and_the_first_finishes(
    tmp_path: Path, paused: list[subprocess.Popen[bytes]]
) -> None:
    """The second run used to delete the first's live temporaries; the first then crashed."""
    [scene] = _setup(tmp_path, "s.tif")
    out = tmp_path / "out"
    args = [*GEOSEG, "predict", scene, "-m", str(tmp_path / "m.bundle"), "-o", str(out)]
    first = _start_and_pause([*args, "--no-vector", "--block", "64"], out)
    paused.append(first)
    live = _temps(out)
    second = subprocess.run([*args, "--overwrite"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr
    err = second.stderr.strip()
    assert "\n" not in err and err.startswith("error: "), err
    assert f"in use by another geoseg run (pid {first.pid})" in err, err
    assert _temps(out) == live  # nothing of the first run's was touched
    os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert sorted(p.name for p in out.iterdir()) == [
        "s_classes.qml",
        "s_classes.tif",
        "s_classes.tif.aux.xml",
        "s_run.json",
    ]


def test_batches_into_one_folder_are_kept_apart_other_scenes_are_not(
    tmp_path: Path, paused: list[subprocess.Popen[bytes]]
) -> None:
    """One batch per folder (its manifest); a single scene of another name runs beside it."""
    a, b, c = _setup(tmp_path, "a.tif", "b.tif", "c.tif", shape=(500, 500))
    out = tmp_path / "out"
    model = ["-m", str(tmp_path / "m.bundle"), "-o", str(out), "--no-vector"]
    first = _start_and_pause([*GEOSEG, "predict", a, b, *model, "--block", "64"], out)
    paused.append(first)
    other_batch = subprocess.run(
        [*GEOSEG, "predict", c, str(tmp_path / "*.nothing"), *model],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other_batch.returncode == 2  # the glob matches nothing: cheap sanity check
    batch = subprocess.run(
        [*GEOSEG, "predict", str(tmp_path / "c.tif"), a, *model, "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert batch.returncode == 2, batch.stderr
    assert "manifest" in batch.stderr and f"(pid {first.pid})" in batch.stderr, batch.stderr
    single = subprocess.run(
        [*GEOSEG, "predict", c, *model], capture_output=True, text=True, timeout=300
    )
    assert single.returncode == 0, single.stderr
    os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: v["state"] for k, v in manifest["scenes"].items()} == {"a": "done", "b": "done"}
    assert (out / "c_classes.tif").exists() and not _temps(out)


def test_only_temporaries_of_a_dead_run_are_cleaned(tmp_path: Path) -> None:
    """A temporary's name carries its owner's pid: a live owner's file stays."""
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = out / f".s_classes{TMP_MARK}{dead.pid}-aaaaaa.tif"
        live = out / f".s_classes{TMP_MARK}{alive.pid}-bbbbbb.tif"
        for p in (stale, live):
            p.write_bytes(b"partial")
        geoseg.predict(scene, str(tmp_path / "m.bundle"), out, vector=False)
        assert not stale.exists() and live.exists()
        clean_stale(out / "s_classes.tif")
        assert live.exists()
    finally:
        alive.kill()
        alive.wait()
    clean_stale(out / "s_classes.tif")  # its owner is gone now
    assert not live.exists()


# -- disk full ---------------------------------------------------------------------


def _stage_bytes(folder: Path, shape: tuple[int, int]) -> int:
    """Size of the uncompressed stage GeoTIFF (with overviews) of a class map of ``shape``."""
    from geoseg.io.writer import RasterSink, overview_factors

    sink = RasterSink(
        folder / "stage-probe.tif",
        shape=shape,
        crs="EPSG:32612",
        transform=rasterio.Affine(30, 0, 0, 0, -30, 0),
        classes=make_bundle().classes,
        description="class",
    )
    try:
        sink.write((0, 0, *shape), np.zeros(shape, dtype=np.uint8))
        sink.ds.build_overviews(overview_factors(shape[1], shape[0]))
        sink.ds.close()
        return sink.tmp.stat().st_size
    finally:
        sink.abort()


def _tmpfs_run(out: Path, size: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with ``out`` a fresh tmpfs of ``size`` bytes; stdout lists what is left.

    The mount lives in a private mount namespace and goes with it, so the
    listing is taken inside, right after the run.
    """
    out.mkdir()
    script = (
        f'mount -t tmpfs -o size={size} tmpfs "{out}" || exit 99; '
        f'"$@"; rc=$?; ls -A "{out}"; exit $rc'
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=64k tmpfs "{probe}"'],
        capture_output=True,
    )
    return done.returncode == 0


def test_disk_full_during_the_cog_copy(tmp_path: Path) -> None:
    """Room for the stage raster but not its COG copy: GDAL raised CPLE_AppDefinedError.

    That is neither a RasterioError nor an OSError, so it escaped as a traceback
    (after libtiff printed its own lines straight to stderr); now it is one line.
    """
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs in a private namespace here (unshare)")
    shape = (900, 900)
    [scene] = _setup(tmp_path, "big.tif", shape=shape)
    page = 4096
    # the stage, the lock file and three pages: the COG (about 100 kB) cannot fit
    size = (-(-_stage_bytes(tmp_path, shape) // page) + 1 + 3) * page
    out = tmp_path / "out"
    args = [*GEOSEG, "predict", scene, "-m", str(tmp_path / "m.bundle"), "-o", str(out)]
    done = _tmpfs_run(out, size, [*args, "--no-vector"])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ran out of disk space"), lines
    assert done.stdout.strip() == ""  # no temporary, no 0-byte file, no lock


# -- stale outputs ------------------------------------------------------------------


def test_overwrite_without_confidence_removes_the_old_one(tmp_path: Path) -> None:
    """The folder holds what the run record lists, no older outputs of the same scene."""
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    out = tmp_path / "out"
    bundle = str(tmp_path / "m.bundle")
    geoseg.predict(scene, bundle, out, confidence=True, vector_format="geojson")
    assert (out / "s_confidence.tif").exists() and (out / "s_polygons.geojson").exists()
    [res] = geoseg.predict(scene, bundle, out, overwrite=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "s_classes.gpkg",
        "s_classes.qml",
        "s_classes.tif",
        "s_classes.tif.aux.xml",
        "s_run.json",
    ], names
    record = json.loads((out / "s_run.json").read_text())
    assert sorted(Path(p).name for p in record["outputs"].values()) == sorted(
        Path(p).name for p in res.outputs.values()
    )


def test_overwrite_replaces_a_user_style_only_when_asked(tmp_path: Path) -> None:
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "s_classes.qml"
    mine.write_text("<qgis>mine</qgis>\n")
    with pytest.raises(geoseg.errors.OutputError, match="s_classes.qml exists"):
        geoseg.predict(scene, str(tmp_path / "m.bundle"), out, vector=False)
    assert mine.read_text() == "<qgis>mine</qgis>\n"
    geoseg.predict(scene, str(tmp_path / "m.bundle"), out, vector=False, overwrite=True)
    assert 'type="paletted"' in mine.read_text()


# -- resources and values -------------------------------------------------------------


def test_a_huge_batch_size_is_capped_at_the_scene_and_keeps_bytes(tmp_path: Path) -> None:
    """--batch-size 100000 used to pad every forward pass to 100000 chips (97.7 GiB)."""
    [scene] = _setup(tmp_path, "s.tif", shape=(300, 280))
    bundle = str(tmp_path / "m.bundle")
    maps = []
    for block in (48, 96, 1024):
        out = tmp_path / f"out{block}"
        [res] = geoseg.predict(scene, bundle, out, vector=False, batch_size=100_000, block=block)
        assert res.record["parameters"]["batch_size"] == res.record["chips_total"] == 36
        maps.append((out / "s_classes.tif").read_bytes())
    assert maps[0] == maps[1] == maps[2]


def test_values_beyond_float32_are_nodata(tmp_path: Path) -> None:
    """float64 1e300 is inf as float32: such pixels are nodata, the rest are classified."""
    rng = np.random.default_rng(1)
    data = rng.random((4, 120, 100)) * 1000.0
    data[:, 10:40, 20:60] = 1e300
    scene = write_raster(tmp_path / "f64.tif", data)
    fixed = {"type": "fixed", "mean": [500.0] * 4, "std": [300.0] * 4}
    bundle = make_bundle("ConvStack", chip=64, overlap=16, normalization=fixed)
    outs = []
    for block in (48, 512):
        out = tmp_path / f"out{block}"
        geoseg.predict(str(scene), bundle, out, vector=False, block=block)
        with rasterio.open(out / "f64_classes.tif") as ds:
            outs.append(ds.read(1))
    classes = outs[0]
    assert (classes[10:40, 20:60] == 255).all()
    assert (np.delete(classes.ravel(), np.flatnonzero(classes.ravel() == 255)) != 255).all()
    assert (classes != 255).sum() == classes.size - 30 * 40
    assert np.array_equal(outs[0], outs[1])


# -- warnings -----------------------------------------------------------------------


def _warning_scene(path: Path) -> str:
    """A GeoTIFF whose every opening makes GDAL warn (ExtraSamples tag renamed, tags unsorted)."""
    import struct

    data = (np.random.default_rng(0).random((4, 90, 80)) * 20000).astype("uint16")
    profile = {"driver": "GTiff", "width": 80, "height": 90, "count": 4, "dtype": "uint16"}
    transform = rasterio.Affine(30, 0, 300000, 0, -30, 4150000)
    with rasterio.open(
        path, "w", **profile, photometric="RGB", crs="EPSG:32612", transform=transform
    ) as ds:
        ds.write(data)
    raw = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", raw, 4)[0]
    for i in range(struct.unpack_from("<H", raw, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", raw, entry)[0] == 338:  # ExtraSamples
            struct.pack_into("<H", raw, entry, 65000)
    path.write_bytes(bytes(raw))
    return str(path)


def test_warnings_are_held_back_and_shown_once_with_a_count(tmp_path: Path) -> None:
    """GDAL warned once per opening of the scene, around the error line too."""
    scene = _warning_scene(tmp_path / "w.tif")
    make_bundle("ConvStack", chip=64, overlap=16).save(tmp_path / "m.bundle")
    args = ["predict", scene, "-m", str(tmp_path / "m.bundle"), "-o", str(tmp_path / "out")]
    runner = CliRunner()
    bad = runner.invoke(cli, [*args, "--chip", "128", "--no-pad"])
    assert bad.exit_code == 2, bad.output
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: "), bad.stderr
    good = runner.invoke(cli, [*args, "--no-vector"])
    assert good.exit_code == 0, good.output
    warned = [line for line in good.stderr.splitlines() if "ExtraSamples" in line]
    assert len(warned) == 1 and warned[0].endswith(" times)"), good.stderr


def test_warning_counter_counts_log_records_once_each(tmp_path: Path) -> None:
    import logging

    from geoseg.cli.main import collected_warnings

    with collected_warnings() as seen:
        for _ in range(36):
            logging.getLogger("rasterio._env").warning("CPLE_AppDefined in ExtraSamples")
        logging.getLogger("geoseg").info("below WARNING: streamed, not counted")
    assert dict(seen.counts) == {"warning: ExtraSamples": 36}


@pytest.mark.parametrize(
    ("headroom_mb", "threads", "words"),
    [
        (512, "2", "needs about 0.7 GiB"),  # refused by the estimate, before reading
        (380, "1", "ran out of memory predicting"),  # the estimate (0.35 GiB) let it through
    ],
)
def test_an_address_space_limit_gives_a_sentence(
    tmp_path: Path, headroom_mb: int, threads: str, words: str
) -> None:
    """Under ``ulimit -v`` a run is refused, or fails, with a sentence, not a traceback.

    It used to end in numpy's MemoryError or torch's "DefaultCPUAllocator: can't
    allocate memory", both tracebacks.
    """
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    code = (
        "import resource, sys\n"
        "import torch  # its libraries map gigabytes of address space: load them first\n"
        "from geoseg.cli.main import cli\n"
        "# what the run imports, loaded before the limit as torch is (geoseg imports lazily)\n"
        "import geoseg.pipeline.predict, geoseg.pipeline.stac, geoseg.vector\n"
        "import geoseg.engine.xarray\n"
        "size = next(int(line.split()[1]) * 1024 for line in open('/proc/self/status')\n"
        "            if line.startswith('VmSize:'))\n"
        f"room = {headroom_mb} * 2**20\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + room, resource.RLIM_INFINITY))\n"
        "cli(sys.argv[1:], prog_name='geoseg')\n"
    )
    out = tmp_path / "out"
    args = ["predict", scene, "-m", str(tmp_path / "m.bundle"), "-o", str(out), "--no-vector"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--chip", "2048", "--threads", threads],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "a smaller --chip" in lines[0], lines
    assert not out.exists() or not list(out.iterdir())


def test_predict_xarray_takes_the_same_chip_and_batch_rules() -> None:
    xr = pytest.importorskip("xarray")
    from geoseg.engine.xarray import predict_xarray
    from geoseg.errors import InputError

    da = xr.DataArray(np.ones((4, 90, 80), dtype="float32"), dims=("band", "y", "x"))
    bundle = make_bundle()
    with pytest.raises(InputError, match="omit chip="):
        predict_xarray(da, bundle, chip=0)
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        predict_xarray(da, bundle, batch_size=0)
    capped = predict_xarray(da, bundle, batch_size=100_000).values
    one = predict_xarray(da, bundle, batch_size=4).values  # the scene has 4 chips
    assert np.array_equal(capped, one)


def test_a_lock_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """Root ignores permissions, so the lock's name is taken by a folder instead."""
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    out = tmp_path / "out"
    (out / f".s{TMP_MARK}lock").mkdir(parents=True)
    result = CliRunner().invoke(
        cli, ["predict", scene, "-m", str(tmp_path / "m.bundle"), "-o", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: cannot lock the outputs of scene 's'"), result.stderr
    assert result.stderr.count("\n") == 1


def test_on_dask_the_workers_memory_limit_decides(tmp_path: Path) -> None:
    """The model runs on the workers: their memory limit, not this machine's, is the budget."""
    distributed = pytest.importorskip("distributed")
    [scene] = _setup(tmp_path, "s.tif", shape=(90, 80))
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            memory_limit="200MB",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        pytest.raises(geoseg.errors.InputError, match=r"a Dask worker has 0\.2 GiB available"),
    ):
        geoseg.predict(
            scene, str(tmp_path / "m.bundle"), tmp_path / "out", client=client, chip=2048
        )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
