"""The GPU path: mixed precision, streamed batches, one Dask worker per GPU.

This machine may have no GPU. What can be checked without one is checked for
real here (bf16 autocast runs on CPU; the per-GPU cluster starts real worker
processes, each with its own CUDA_VISIBLE_DEVICES); the tests marked ``gpu``
run only where CUDA is present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import InputError
from geoseg.models.device import predict_stream
from geoseg.models.predictor import get_predictor
from geoseg.models.torch_model import TorchPredictor
from tests.common import ZION, crop_raster, make_bundle, read, scene_file, worker_settings

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def zion_crop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rasterio.windows import Window

    out = tmp_path_factory.mktemp("gpu") / "zion_crop.tif"
    crop_raster(ZION, out, Window(200, 300, 400, 360), tiled=False)
    return out


def test_bf16_autocast_on_cpu_is_close_to_fp32_and_partition_invariant(
    zion_crop: Path, tmp_path: Path
) -> None:
    runs = {}
    cases = [("fp32", "fp32", 256), ("bf16", "bf16", 256), ("bf16b", "bf16", 1024)]
    for name, precision, block in cases:
        [res] = geoseg.predict(
            zion_crop,
            "landcover-nlcd8",
            tmp_path / name,
            device="cpu",
            precision=precision,
            block=block,
            vector=False,
        )
        runs[name] = read(res.outputs["classes"])
        assert res.record["parameters"]["precision"] == precision
    agree = (runs["fp32"] == runs["bf16"]).mean()
    assert agree >= 0.97, agree  # 16-bit matmuls move a few borderline pixels
    assert agree < 1.0  # bf16 really ran: fp32 and bf16 logits do not give identical maps
    # fixed-shape forward passes: bf16 results do not depend on the block size either
    assert np.array_equal(runs["bf16"], runs["bf16b"])


def test_predict_stream_equals_batch_by_batch() -> None:
    bundle = make_bundle(
        "Unet",
        encoder="resnet18",
        chip=64,
        overlap=16,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )
    pred = get_predictor(bundle, "cpu")
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(2, 4, 64, 64)).astype(np.float32) for _ in range(3)]
    streamed = list(predict_stream(pred, iter(batches)))
    assert len(streamed) == 3
    for x, y in zip(batches, streamed, strict=True):
        assert np.array_equal(pred.predict(x), y)


def test_fp16_on_cpu_and_precision_on_onnx_are_clear_errors() -> None:
    bundle = make_bundle("Pointwise", chip=32, overlap=0)
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        TorchPredictor(bundle, "cpu", "fp16")
    with pytest.raises(InputError, match=r"precision=\.\.\. must be one of"):
        get_predictor(bundle, "cpu", "int8")


def test_gpu_cluster_gives_each_worker_its_own_gpu() -> None:
    distributed = pytest.importorskip("distributed")
    from geoseg.engine.dask import DaskEngine, gpu_cluster

    with gpu_cluster([0, 1], check=False) as cluster, distributed.Client(cluster) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        assert sorted(seen.values()) == ["0", "1"]
        # started with the same quiet housekeeping as --workers clusters
        assert set(client.run(worker_settings).values()) == {(False, "1s")}
        assert not client.run_on_scheduler(
            lambda dask_scheduler: "stealing" in dask_scheduler.extensions
        )
        assert sorted(client.nthreads().values()) == [2, 2]
        engine = DaskEngine(client)
        if CUDA:
            assert engine.resolve_device("auto") == "cuda"
        else:
            # the workers are asked, not this process: none of them sees a GPU here
            assert engine.resolve_device("auto") == "cpu"
            with pytest.raises(InputError, match="have no such CUDA GPU"):
                engine.resolve_device("cuda")


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_cli_gpus_without_cuda_is_one_clear_line(tmp_path: Path) -> None:
    scene = scene_file(tmp_path / "s.tif", (64, 64), seed=1)
    r = CliRunner().invoke(
        cli,
        [
            "predict",
            str(scene),
            "-m",
            "landcover-nlcd8",
            "-o",
            str(tmp_path / "o"),
            "--gpus",
            "0,1",
        ],
    )
    assert r.exit_code == 2, r.output
    assert "no CUDA GPU" in r.output and "--workers" in r.output
    assert not (tmp_path / "o").exists()
    # predict-stac takes the same --gpus
    args = ["predict-stac", str(tmp_path / "items.json"), "-m", "landcover-nlcd8"]
    r = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "o"), "--gpus", "0,1"])
    assert r.exit_code == 2, r.output
    assert "no CUDA GPU" in r.output and "--workers" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "0,x"], "--gpus takes GPU indexes"),
        (["--gpus", "0", "--workers", "2"], "pass one of --scheduler"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA GPU"),
    ],
)
def test_cli_bad_gpu_options(tmp_path: Path, args: list[str], message: str) -> None:
    scene = scene_file(tmp_path / "s.tif", (64, 64), seed=1)
    # a test bundle (bands b1..b4): the check under test comes before any band-role question
    bundle = tmp_path / "b.bundle"
    make_bundle(chip=64, overlap=16).save(bundle)
    r = CliRunner().invoke(
        cli, ["predict", str(scene), "-m", str(bundle), "-o", str(tmp_path / "o"), *args]
    )
    assert r.exit_code == 2, r.output
    assert message in r.output


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_matches_cpu(zion_crop: Path, tmp_path: Path, precision: str) -> None:
    [cpu] = geoseg.predict(
        zion_crop, "landcover-nlcd8", tmp_path / "cpu", device="cpu", vector=False
    )
    [gpu] = geoseg.predict(
        zion_crop,
        "landcover-nlcd8",
        tmp_path / "gpu",
        device="cuda",
        precision=precision,
        vector=False,
        batch_size=4,
    )
    agree = (read(cpu.outputs["classes"]) == read(gpu.outputs["classes"])).mean()
    assert agree >= (0.995 if precision == "fp32" else 0.97), agree
