"""Torch bundles on ONNX Runtime: the backend choice, the verified export cache, the predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import geoseg.engine.backend as ort_backend
from geoseg.engine.backend import OrtTorchPredictor, cache_dir, cached_onnx, choose_backend
from geoseg.errors import InputError
from tests.common import make_bundle

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEOSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _no_export(*args: object, **kwargs: object) -> bytes:
    raise AssertionError("exported again")


def test_export_is_cached_by_bundle_hash_and_reused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle()
    assert cache_dir() == cache
    data = cached_onnx(bundle)
    side = json.loads((cache / f"{bundle.sha256}.json").read_text())
    assert (cache / f"{bundle.sha256}.onnx").read_bytes() == data
    assert side["bundle_sha256"] == bundle.sha256
    import geoseg.models.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "onnx_bytes", _no_export)
    assert cached_onnx(bundle) == data  # from the cache, not exported


@pytest.mark.parametrize("damage", ["bytes", "sidecar", "other-bundle", "no-sidecar"])
def test_a_cached_file_that_does_not_verify_is_exported_again(cache: Path, damage: str) -> None:
    bundle = make_bundle()
    good = cached_onnx(bundle)
    model, side = cache / f"{bundle.sha256}.onnx", cache / f"{bundle.sha256}.json"
    if damage == "bytes":
        model.write_bytes(good[:-10] + b"x" * 10)
    elif damage == "sidecar":
        side.write_text("{not json")
    elif damage == "other-bundle":
        record = json.loads(side.read_text())
        side.write_text(json.dumps({**record, "bundle_sha256": "0" * 64}))
    else:
        side.unlink()
    assert cached_onnx(bundle) == good
    assert model.read_bytes() == good  # repaired in place
    assert json.loads(side.read_text())["bundle_sha256"] == bundle.sha256


def test_an_unwritable_cache_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GEOSEG_CACHE_DIR", str(blocker))
    bundle = make_bundle()
    assert len(cached_onnx(bundle)) > 100


@pytest.mark.parametrize("arch", ["ConvStack", "Unet"])
def test_ort_predictor_matches_torch(cache: Path, arch: str) -> None:
    from geoseg.models.torch_model import TorchPredictor

    kw = (
        {"encoder": "resnet18", "arch_params": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}}
        if arch == "Unet"
        else {}
    )
    bundle = make_bundle(arch, chip=64, **kw)
    x = np.random.default_rng(1).standard_normal((3, 4, 64, 64)).astype(np.float32)
    ref = TorchPredictor(bundle).predict(x)
    for threads in (1, 2):
        got = OrtTorchPredictor(bundle, threads=threads).predict(x)
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
        assert (got.argmax(1) == ref.argmax(1)).mean() > 0.999


def test_auto_picks_ort_for_fp32_on_cpu_and_torch_elsewhere() -> None:
    import geoseg

    bundle = make_bundle()
    assert choose_backend("auto", bundle, "cpu", "fp32").name == "onnxruntime"
    assert choose_backend("auto", bundle, "cuda", "fp32").name == "torch"
    assert choose_backend("auto", bundle, "cpu", "bf16").name == "torch"
    assert choose_backend("torch", bundle, "cpu", "fp32").name == "torch"
    assert choose_backend("auto", geoseg.load_bundle("ndvi"), "cpu", "fp32").name == "numpy"
    with pytest.raises(InputError, match="fp32 on CPU only"):
        choose_backend("onnxruntime", bundle, "cuda", "fp32")
    with pytest.raises(InputError, match="must be one of auto, torch, onnxruntime"):
        choose_backend("tensorrt", bundle, "cpu", "fp32")


def test_auto_without_onnxruntime_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_backend, "ort_available", lambda: False)
    choice = choose_backend("auto", make_bundle(), "cpu", "fp32")
    assert choice.name == "torch" and "not installed" in choice.reason


def test_predictor_cache_keys_backend_and_threads(cache: Path) -> None:
    from geoseg.engine.backend import get_backend_predictor as get
    from geoseg.models.torch_model import TorchPredictor

    bundle = make_bundle(seed=11)
    one = get(bundle, "cpu", "fp32", backend="onnxruntime", threads=1)
    assert isinstance(one, OrtTorchPredictor) and one.threads == 1
    assert get(bundle, "cpu", "fp32", backend="auto", threads=1) is one
    assert get(bundle, "cpu", "fp32", backend="onnxruntime", threads=2) is not one
    assert isinstance(get(bundle, "cpu", "fp32", backend="torch"), TorchPredictor)


def test_int8_is_refused_with_the_measured_reason() -> None:
    from geoseg.models.device import check_precision
    from geoseg.pipeline.options import PredictOptions

    with pytest.raises(InputError, match=r"int8 is not offered.*99\.5 %"):
        check_precision("int8", "cpu")
    with pytest.raises(InputError, match="int8 is not offered"):
        PredictOptions(precision="int8")  # type: ignore[arg-type]


def test_index_and_onnx_bundles_ignore_the_backend_choice() -> None:
    """What the engine passes on (the resolved name) builds the kind's own predictor."""
    import geoseg
    from geoseg.engine.backend import get_backend_predictor

    ndvi = geoseg.load_bundle("ndvi")
    for backend in ("auto", "torch", "numpy"):
        pred = get_backend_predictor(ndvi, "cpu", "fp32", backend=backend)
        assert type(pred).__name__ == "IndexPredictor"
