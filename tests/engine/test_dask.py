"""The Dask engine gives the local engine's bytes: LocalCluster, a real scheduler, lost workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import geoseg
from tests.common import make_bundle, read, scene_file, worker_settings

distributed = pytest.importorskip("distributed")

from geoseg.engine.base import Engine  # noqa: E402
from geoseg.engine.dask import DaskEngine  # noqa: E402


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scene_file(tmp_path_factory.mktemp("dask") / "s.tif", (700, 650), seed=21)


@pytest.fixture(scope="module")
def bundle() -> geoseg.ModelBundle:
    return make_bundle(
        "Unet",
        encoder="resnet18",
        chip=128,
        overlap=32,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )


@pytest.fixture(scope="module")
def local_result(
    scene: Path, bundle: geoseg.ModelBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[np.ndarray, np.ndarray, dict]:
    out = tmp_path_factory.mktemp("local")
    [res] = geoseg.predict(scene, bundle, out, block=256, confidence=True, vector=False)
    return read(res.outputs["classes"]), read(res.outputs["confidence"]), res.record


def _check_same(res: geoseg.PredictResult, local: tuple[np.ndarray, np.ndarray, dict]) -> None:
    cls, conf, rec = local
    assert np.array_equal(read(res.outputs["classes"]), cls)
    assert np.abs(read(res.outputs["confidence"]).astype(int) - conf).max() <= 1
    assert res.record["chips_inferred"] == rec["chips_inferred"]
    assert res.record["parameters"]["engine"] == "dask"


def test_local_cluster_same_bytes_and_model_once_per_worker(
    scene, bundle, local_result, tmp_path: Path
) -> None:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        from geoseg.engine.dask import chips_run_here

        before = client.run(chips_run_here)
        [res] = geoseg.predict(
            scene, bundle, tmp_path, block=256, confidence=True, vector=False, client=client
        )
        ran = [n - before[w] for w, n in client.run(chips_run_here).items()]
        from geoseg.models.predictor import loaded_bundles

        loads = client.run(loaded_bundles)
        counting = _CountingEngine(client)
        assert isinstance(counting, Engine)  # every member predict uses, no getattr probes
        [again] = geoseg.predict(
            scene, bundle, tmp_path / "again", block=128, vector=False, engine=counting
        )
    _check_same(res, local_result)
    assert res.record["blocks"] > 4
    # each chip once: counted where the model ran, the workers' chips add up to the
    # scene's, and the run record says who ran how many (both workers took part)
    assert sum(ran) == res.record["chips_inferred"] > 0
    assert sorted(res.record["chips_by_worker"].values()) == sorted(ran)
    assert min(ran) > 0
    # each worker built the model exactly once, however many blocks it ran
    assert [len(v) for v in loads.values()] == [1, 1], loads
    # backpressure: blocks are handed out as results come back, never all at once
    limit = counting.in_flight_per_thread * 2
    assert again.record["blocks"] == counting.pulled > 3 * limit
    assert counting.delivered == counting.pulled and 0 < counting.most_outstanding <= limit
    assert np.array_equal(read(again.outputs["classes"]), local_result[0])


class _CountingEngine(DaskEngine):
    """Counts blocks taken from the plan and results handed back, at every result."""

    def run(self, job, blocks, on_result):  # type: ignore[no-untyped-def]
        self.pulled = self.delivered = self.most_outstanding = 0

        def pull():  # type: ignore[no-untyped-def]
            for block in blocks:
                self.pulled += 1
                yield block

        def deliver(result):  # type: ignore[no-untyped-def]
            self.most_outstanding = max(self.most_outstanding, self.pulled - self.delivered)
            self.delivered += 1
            on_result(result)

        super().run(job, pull(), deliver)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _cli_cluster(
    n_workers: int, *, nanny: bool = True
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real `dask scheduler` and `dask worker` processes on loopback."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [
        subprocess.Popen(
            [
                *dask,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
                "--no-show",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    workers = []
    try:
        for _ in range(n_workers):
            w = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--nanny" if nanny else "--no-nanny",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            workers.append(w)
        procs += workers
        yield address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_real_scheduler_and_workers_same_bytes(scene, bundle, local_result, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    bpath = bundle.save(tmp_path / "m.bundle")
    with _cli_cluster(2) as (address, _), distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        [res] = geoseg.predict(
            scene, bundle, tmp_path, block=256, confidence=True, vector=False, client=client
        )
        # and from the command line, --scheduler on the same cluster
        args = ["predict", str(scene), "-m", str(bpath), "-o", str(tmp_path / "cli")]
        cli_run = CliRunner().invoke(cli, [*args, "--no-vector", "--scheduler", address])
    _check_same(res, local_result)
    assert cli_run.exit_code == 0, cli_run.output
    assert np.array_equal(read(tmp_path / "cli" / "s_classes.tif"), local_result[0])


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "via-scheduler"])
def test_killing_a_worker_mid_run_changes_nothing(
    scene, bundle, local_result, tmp_path: Path, direct: bool
) -> None:
    with (
        _cli_cluster(2, nanny=False) as (address, workers),
        # direct: results fetched from the workers (the dead one is asked first);
        # otherwise the scheduler relays them, Dask's default for clusters you bring
        distributed.Client(address, timeout=60, direct_to_workers=direct) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        killed = []

        def progress(done: int, total: int) -> None:
            if not killed and done >= total // 4:
                os.kill(workers[0].pid, signal.SIGKILL)  # no nanny: this pid is the worker
                killed.append(time.time())

        [res] = geoseg.predict(
            scene,
            bundle,
            tmp_path,
            block=128,
            confidence=True,
            vector=False,
            client=client,
            progress=progress,
        )
        alive = len(client.scheduler_info()["workers"])
    assert killed, "the worker was never killed"
    assert alive == 1  # the scheduler saw it go; its blocks were rerun elsewhere
    _check_same(res, local_result)


def test_cli_workers_and_scheduler(scene, bundle, local_result, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    bpath = bundle.save(tmp_path / "m.bundle")
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            str(scene),
            "--model",
            str(bpath),
            "--out",
            str(tmp_path / "w"),
            "--workers",
            "2",
            "--block",
            "256",
            "--confidence",
            "--no-vector",
        ],
    )
    assert res.exit_code == 0, res.output
    assert np.array_equal(read(tmp_path / "w" / "s_classes.tif"), local_result[0])
    port = _free_port()  # nothing listens there
    res = CliRunner().invoke(
        cli,
        [
            "predict",
            str(scene),
            "--model",
            str(bpath),
            "--out",
            str(tmp_path / "x"),
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
        ],
    )
    assert res.exit_code == 2 and "cannot reach the Dask scheduler" in res.stderr
    assert not (tmp_path / "x" / "s_classes.tif").exists()


@contextlib.contextmanager
def _http_server(folder: Path, log: Path | None = None) -> Iterator[str]:
    """A loopback HTTP server with byte ranges (what /vsicurl/ needs), in its own process.

    Its own process, not a thread: GDAL holds the GIL while it opens a URL, so a
    server thread in this interpreter could never answer.
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "range_server.py"),
            str(folder),
            *([str(log)] if log else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def test_remote_cog_read_by_workers(scene, bundle, local_result, tmp_path: Path) -> None:
    """Workers read /vsicurl/ inputs themselves; only block results travel."""
    from rasterio.shutil import copy as rio_copy

    served = tmp_path / "served"
    served.mkdir()
    rio_copy(scene, served / "s.tif", driver="COG", BLOCKSIZE=256)
    with (
        _http_server(served) as url,
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        [res] = geoseg.predict(
            f"/vsicurl/{url}/s.tif",
            bundle,
            tmp_path / "out",
            block=256,
            confidence=True,
            vector=False,
            client=client,
        )
    _check_same(res, local_result)
    assert res.record["scene"]["path"] == f"/vsicurl/{url}/s.tif"


def _set_user_agent(name: str) -> None:
    os.environ["GDAL_HTTP_USERAGENT"] = name  # GDAL reads it at each request


def test_remote_pixels_go_to_the_workers_not_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fixed normalization the client only opens the file; the workers read the tiles."""
    from rasterio.shutil import copy as rio_copy

    from geoseg.engine.dask import local_cluster

    served = tmp_path / "served"
    served.mkdir()
    src = scene_file(tmp_path / "big.tif", (900, 800), seed=6)
    rio_copy(src, served / "s.tif", driver="COG", BLOCKSIZE=256, COMPRESS="NONE")
    size = (served / "s.tif").stat().st_size
    fixed = {"type": "fixed", "mean": [0.0] * 4, "std": [1e3] * 4}
    bundle = make_bundle(chip=64, overlap=16, normalization=fixed)
    log = tmp_path / "requests.tsv"
    with _http_server(served, log) as url, local_cluster(2) as client:
        client.run(_set_user_agent, "geoseg-worker")
        monkeypatch.setenv("GDAL_HTTP_USERAGENT", "geoseg-client")
        [res] = geoseg.predict(f"/vsicurl/{url}/s.tif", bundle, tmp_path / "out", client=client)
    sent: dict[str, int] = {}
    for line in log.read_text().splitlines():
        agent, nbytes = line.rsplit("\t", 1)
        sent[agent] = sent.get(agent, 0) + int(nbytes)
    assert set(sent) <= {"geoseg-client", "geoseg-worker"}, sent
    pixels = 900 * 800 * 4 * 2  # the full-resolution bands, stored uncompressed
    assert sent["geoseg-worker"] >= pixels  # every pixel, some twice at block edges
    assert sent.get("geoseg-client", 0) < 0.02 * size, (sent, size)  # the header only
    assert res.record["chips_inferred"] == res.record["chips_total"]


def test_worker_allocator_settings_and_a_client_without_torch() -> None:
    """Workers undo the nanny's frozen mmap threshold; the run record never imports torch.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_`` for its workers, which freezes
    glibc's mmap threshold at 128 KiB: every activation tensor then page-faults
    in afresh (1.45x slower forward passes, see benchmarks/README.md). And a
    client that only merges and writes must not pay seconds to import torch for
    a version string.
    """
    import subprocess
    import sys

    from geoseg.engine.local import tune_malloc

    assert tune_malloc() is True  # glibc here
    code = (
        "import sys, geoseg.pipeline.predict; from geoseg.versions import versions; v = versions();"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert v['torch'][0].isdigit(), v"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clusters_geoseg_starts_are_quiet_and_results_skip_the_scheduler(
    scene, bundle, local_result, tmp_path: Path
) -> None:
    import dask

    from geoseg.engine.dask import local_cluster

    before = dask.config.get("distributed.scheduler.work-stealing")
    with local_cluster(2) as client:
        # the settings reach the worker processes and the scheduler, not just this process
        assert set(client.run(worker_settings).values()) == {(False, "1s")}
        assert not client.run_on_scheduler(
            lambda dask_scheduler: "stealing" in dask_scheduler.extensions
        )
        # block results come straight from the workers: the scheduler (in this
        # process for a LocalCluster) never relays one, which would hold a second copy
        scheduler = client.cluster.scheduler
        relayed = []
        gather = scheduler.handlers["gather"]

        def counting_gather(*args, **kwargs):  # type: ignore[no-untyped-def]
            relayed.append(kwargs.get("keys"))
            return gather(*args, **kwargs)

        scheduler.handlers["gather"] = counting_gather
        [res] = geoseg.predict(
            scene, bundle, tmp_path, block=256, confidence=True, vector=False, client=client
        )
    _check_same(res, local_result)
    assert res.record["blocks"] > 4
    assert relayed == []
    assert dask.config.get("distributed.scheduler.work-stealing") == before


def _crash_on_killer(job, block, bundle, device, precision="fp32"):  # type: ignore[no-untyped-def]
    """The block task, except that on ``killer.tif`` it takes its worker process down."""
    from geoseg.engine.dask import run_block_on_worker

    if job.scene is not None and Path(job.scene.path).name == "killer.tif":
        os._exit(1)
    return run_block_on_worker(job, block, bundle, device, precision)


class _CrashingEngine(DaskEngine):
    task = staticmethod(_crash_on_killer)


def test_batch_on_dask_a_scene_that_kills_workers_or_is_corrupt_fails_alone(
    tmp_path: Path,
) -> None:
    import dask
    from rasterio.shutil import copy as rio_copy

    from geoseg.engine.dask import local_cluster
    from geoseg.errors import BatchError
    from geoseg.pipeline.batch import MANIFEST

    # fixed normalization: the corrupt scene is first read by a worker, not by this process
    bundle = make_bundle(
        chip=64, overlap=16, normalization={"type": "fixed", "mean": [0.0] * 4, "std": [1e3] * 4}
    )
    folder = tmp_path / "archive"
    folder.mkdir()
    good = scene_file(folder / "good.tif", (160, 150), seed=1)
    scene_file(folder / "killer.tif", (160, 150), seed=2)
    rio_copy(scene_file(tmp_path / "c.tif", (300, 300), seed=3), tmp_path / "cog.tif",
             driver="COG", BLOCKSIZE=128)  # fmt: skip
    data = (tmp_path / "cog.tif").read_bytes()
    (folder / "corrupt.tif").write_bytes(data[: int(len(data) * 0.6)])
    scenes = [str(folder / n) for n in ("corrupt.tif", "good.tif", "killer.tif")]
    [ref] = geoseg.predict(good, bundle, tmp_path / "ref", vector=False)
    out = tmp_path / "out"
    # a worker that dies once marks its task bad at once (Dask's default is 3 deaths)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        local_cluster(2) as client,
    ):
        with pytest.raises(BatchError) as info:
            geoseg.predict(scenes, bundle, out, vector=False, engine=_CrashingEngine(client))
        client.wait_for_workers(2, timeout=60)  # the nannies bring the killed workers back
    by_name = {Path(r.scene).name: r for r in info.value.results}
    assert by_name["good.tif"].state == "done"
    assert by_name["corrupt.tif"].state == "failed"
    assert "cannot read pixels" in (by_name["corrupt.tif"].error or "")
    assert by_name["killer.tif"].state == "failed"
    assert "took down every Dask worker" in (by_name["killer.tif"].error or "")
    done = by_name["good.tif"].outputs["classes"]
    assert np.array_equal(read(done), read(ref.outputs["classes"]))
    manifest = json.loads((out / MANIFEST).read_text())["scenes"]
    assert {k: v["state"] for k, v in manifest.items()} == {
        "corrupt": "failed",
        "good": "done",
        "killer": "failed",
    }
    assert not list(out.glob("killer*")) and not list(out.glob("corrupt*"))
