"""Each backend keeps the spine's invariants; ORT agrees with torch; --explain says what and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import geoseg
from geoseg.pipeline.predict import explain
from tests.common import ZION, make_bundle, read, scene_file

pytest.importorskip("onnxruntime")

BACKENDS = ["torch", "onnxruntime"]


@pytest.fixture(scope="module")
def unet() -> geoseg.ModelBundle:
    return make_bundle(
        "Unet",
        encoder="resnet18",
        chip=96,
        overlap=32,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_partition_invariance_per_backend(
    tmp_path: Path, backend: str, unet: geoseg.ModelBundle
) -> None:
    """Block sizes and thread counts give the same bytes on each backend."""
    src = scene_file(tmp_path / "s.tif", (333, 270), seed=5)
    outs = []
    for block, threads in [(64, 1), (128, 2), (1000, 1)]:
        [res] = geoseg.predict(
            src,
            unet,
            tmp_path / f"{block}-{threads}",
            block=block,
            threads=threads,
            vector=False,
            confidence=True,
            backend=backend,
        )
        assert res.record["execution"]["backend"] == backend
        outs.append((read(res.outputs["classes"]), read(res.outputs["confidence"])))
    for cls, conf in outs[1:]:
        assert np.array_equal(cls, outs[0][0])
        assert np.array_equal(conf, outs[0][1])


def test_ort_class_raster_agrees_with_torch_on_a_shipped_bundle(tmp_path: Path) -> None:
    """landcover-nlcd8 on Zion: ORT and torch differ only in float summation order.

    Logits differ by ~1e-5, so only pixels whose top two classes are that close
    can flip; measured here: none (benchmarks/README.md has every shipped bundle).
    """
    got = {}
    for backend in BACKENDS:
        [res] = geoseg.predict(
            ZION, "landcover-nlcd8", tmp_path / backend, vector=False, backend=backend
        )
        got[backend] = read(res.outputs["classes"])
    assert len(np.unique(got["torch"])) >= 4
    assert (got["torch"] == got["onnxruntime"]).mean() >= 0.9999


def test_auto_runs_ort_on_cpu_and_records_why(tmp_path: Path, unet: geoseg.ModelBundle) -> None:
    src = scene_file(tmp_path / "s.tif", (200, 180), seed=2)
    [res] = geoseg.predict(src, unet, tmp_path / "out", vector=False, device="cpu", threads=2)
    ex = res.record["execution"]
    assert ex["backend"] == "onnxruntime" and ex["backend_reason"].startswith("auto")
    assert ex["parallel_blocks"] == 2
    assert ex["threads_per_block"] == max(1, (__import__("os").cpu_count() or 1) // 2)
    assert res.record["parameters"]["backend"] == "auto"


def test_explain_plans_without_running(tmp_path: Path, unet: geoseg.ModelBundle) -> None:
    from geoseg.models.predictor import loaded_bundles

    src = scene_file(tmp_path / "s.tif", (200, 180), seed=3)
    before = loaded_bundles().count(unet.sha256)
    [plan] = explain(src, unet, device="cpu", threads=1, batch_size=2)
    assert plan["backend"] == "onnxruntime" and plan["device"] == "cpu"
    assert (plan["parallel_blocks"], plan["threads_per_block"]) == (1, __import__("os").cpu_count())
    assert plan["batch_size"] == 2 and plan["batch_reason"] == "--batch-size"
    assert plan["chip"] == 96 and plan["chips"] > 1
    assert loaded_bundles().count(unet.sha256) == before  # no model built
    [torch_plan] = explain(src, unet, device="cpu", backend="torch")
    assert torch_plan["backend"] == "torch" and torch_plan["backend_reason"] == "--backend torch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]  # nothing written


def test_dask_gives_the_in_process_bytes_on_torch_too(
    tmp_path: Path, unet: geoseg.ModelBundle
) -> None:
    """tests/engine/test_dask.py checks the default backend (ORT on CPU); this, torch."""
    distributed = pytest.importorskip("distributed")
    src = scene_file(tmp_path / "s.tif", (300, 280), seed=9)
    kw = {"block": 128, "vector": False, "backend": "torch"}
    [local] = geoseg.predict(src, unet, tmp_path / "local", **kw)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        [res] = geoseg.predict(src, unet, tmp_path / "dask", client=client, **kw)
    assert res.record["execution"]["backend"] == "torch"
    assert np.array_equal(read(res.outputs["classes"]), read(local.outputs["classes"]))
