from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import BundleError
from geoseg.models.arch import SMP_ARCHITECTURES, build_model
from geoseg.models.bundle import load_bundle
from tests.common import CLASSES3, make_bundle, read, scene_file


def test_save_load_round_trip(tmp_path: Path) -> None:
    b = make_bundle(
        "Unet",
        encoder="resnet18",
        chip=64,
        overlap=16,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
        card="# card\ntrained on nothing",
    )
    path = b.save(tmp_path / "u.bundle")
    back = load_bundle(path)
    assert back.sha256 == b.sha256 and back.meta == b.meta
    x = torch.randn(2, 4, 64, 64)
    with torch.inference_mode():
        assert torch.equal(b.build_model()(x), back.build_model()(x))
    assert "trained on nothing" in back.card_text()
    assert not list(tmp_path.glob(".*geoseg-tmp*"))


def test_bundle_holds_no_pickle(tmp_path: Path) -> None:
    path = make_bundle().save(tmp_path / "b.bundle")
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "geoseg" in header["__metadata__"]
    assert b"\x80\x04" not in raw[: 8 + header_len]  # no pickle protocol marker in the header


@pytest.mark.parametrize(
    "arch", ["Unet", "UnetPlusPlus", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "Segformer"]
)
def test_smp_architectures_build_and_round_trip(arch: str, tmp_path: Path) -> None:
    assert arch in SMP_ARCHITECTURES
    encoder = "mit_b0" if arch == "Segformer" else "resnet18"
    b = geoseg.ModelBundle.create(
        name=arch,
        architecture=arch,
        encoder=encoder,
        bands=["a", "b", "c"],
        classes=CLASSES3,
        normalization={"type": "percentile"},
        chip=64,
        overlap=16,
    )
    back = load_bundle(b.save(tmp_path / "m.bundle"))
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        y = back.build_model()(x)
    assert y.shape == (1, 3, 64, 64)


def test_pruning_keeps_outputs() -> None:
    torch.manual_seed(0)
    full = build_model(
        "Unet",
        encoder="resnet18",
        in_channels=4,
        classes=3,
        params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )
    names = {n for n, _ in full.named_parameters()}
    assert not any(n.startswith("encoder.layer4") for n in names)  # unused stage dropped


def test_onnx_bundle_matches_torch(tmp_path: Path) -> None:
    from geoseg.models.onnx_export import export_onnx

    torch_bundle = make_bundle(
        "Unet",
        encoder="resnet18",
        chip=64,
        overlap=16,
        arch_params={"encoder_depth": 3, "decoder_channels": [16, 8, 8]},
    )
    src = torch_bundle.save(tmp_path / "t.bundle")
    runner = CliRunner()
    res = runner.invoke(cli, ["bundle", "export-onnx", str(src), "-o", str(tmp_path / "m.onnx")])
    assert res.exit_code == 0, res.output
    meta = {
        k: torch_bundle.meta[k]
        for k in ("name", "bands", "classes", "normalization", "chip", "overlap")
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    res = runner.invoke(
        cli,
        [
            "bundle",
            "create",
            "--onnx",
            str(tmp_path / "m.onnx"),
            "--metadata",
            str(tmp_path / "meta.json"),
            "-o",
            str(tmp_path / "o.bundle"),
        ],
    )
    assert res.exit_code == 0, res.output
    onnx_bundle = load_bundle(tmp_path / "o.bundle")
    assert onnx_bundle.kind == "onnx"
    scene = scene_file(tmp_path / "s.tif", (150, 140))
    [a] = geoseg.predict(scene, torch_bundle, tmp_path / "a", vector=False, confidence=True)
    [b] = geoseg.predict(scene, onnx_bundle, tmp_path / "b", vector=False, confidence=True)
    ca, cb = read(a.outputs["classes"]), read(b.outputs["classes"])
    assert (ca == cb).mean() > 0.999  # float kernels differ between runtimes only at ties
    assert (
        np.abs(read(a.outputs["confidence"]).astype(int) - read(b.outputs["confidence"])).max() <= 1
    )
    del export_onnx


def test_create_from_weights_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(3)
    model = build_model("FPN", encoder="resnet18", in_channels=2, classes=2)
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    (tmp_path / "meta.yaml").write_text(
        "name: fpn\nbands: [red, nir]\nscheme: water\nnormalization: {type: percentile}\n"
        "chip: 128\noverlap: 32\n"
    )
    x = torch.randn(1, 2, 64, 64)
    with torch.inference_mode():
        want = model(x)
    for weights in ("w.safetensors", "w.pt"):
        out = tmp_path / f"{weights}.bundle"
        res = CliRunner().invoke(
            cli,
            [
                "bundle",
                "create",
                "--arch",
                "FPN",
                "--encoder",
                "resnet18",
                "--weights",
                str(tmp_path / weights),
                "--metadata",
                str(tmp_path / "meta.yaml"),
                "-o",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
        with torch.inference_mode():
            assert torch.equal(load_bundle(out).build_model()(x), want)


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file(
        build_model("Pointwise", encoder=None, in_channels=3, classes=2).state_dict(),
        str(tmp_path / "w.safetensors"),
    )
    (tmp_path / "meta.yaml").write_text(
        "name: x\nbands: [a, b]\nscheme: water\nnormalization: {type: percentile}\n"
        "chip: 64\noverlap: 8\n"
    )
    res = CliRunner().invoke(
        cli,
        [
            "bundle",
            "create",
            "--arch",
            "Pointwise",
            "--weights",
            str(tmp_path / "w.safetensors"),
            "--metadata",
            str(tmp_path / "meta.yaml"),
            "-o",
            str(tmp_path / "x.bundle"),
        ],
    )
    assert res.exit_code == 2 and "do not fit" in res.stderr
    assert not (tmp_path / "x.bundle").exists()


def test_info_and_list(tmp_path: Path) -> None:
    path = make_bundle(card="## Model card\nGood at squares.").save(tmp_path / "b.bundle")
    res = CliRunner().invoke(cli, ["bundle", "info", str(path)])
    assert res.exit_code == 0 and "Good at squares." in res.output and "sha256" in res.output
    res = CliRunner().invoke(cli, ["bundle", "info", str(path), "--json"])
    assert json.loads(res.output)["name"] == "test-convstack"
    res = CliRunner().invoke(cli, ["bundle", "list"])
    assert res.exit_code == 0 and "landcover-nlcd8" in res.output


def test_invalid_metadata_is_refused() -> None:
    with pytest.raises(BundleError, match="normalization"):
        make_bundle(normalization={"type": "zscore"})
    with pytest.raises(BundleError, match="chip"):
        make_bundle(chip=16, overlap=16)
