"""Bad input, as a table: one line of error, exit code 2, nothing with a final name written."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.common import ZION, make_bundle, scene_file, write_raster

FINAL_SUFFIXES = ("_classes.tif", "_confidence.tif", "_classes.gpkg", "_run.json", ".bundle")


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """A real 'disk full': the kernel refuses writes past ``limit`` bytes (EFBIG)."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def _bundle(tmp: Path, bands: int = 4, **kw: Any) -> str:
    path = tmp / f"m{bands}.bundle"
    if not path.exists():
        make_bundle("ConvStack", bands=bands, chip=64, overlap=16, **kw).save(path)
    return str(path)


def _scene(tmp: Path, name: str = "s.tif", **kw: Any) -> str:
    return str(scene_file(tmp / name, kw.pop("shape", (90, 80)), **kw))


def _tampered(tmp: Path) -> str:
    """Edit a class name inside the bundle header without updating its hash."""
    path = Path(_bundle(tmp))
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["geoseg"])
    meta["classes"][0]["name"] = "lava"
    header["__metadata__"]["geoseg"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    out = tmp / "tampered.bundle"
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    return str(out)


def _weights_tampered(tmp: Path) -> str:
    path = Path(_bundle(tmp))
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0xFF
    out = tmp / "flipped.bundle"
    out.write_bytes(bytes(raw))
    return str(out)


def _truncated(tmp: Path, src: Path, keep: float) -> str:
    out = tmp / f"trunc_{src.name}"
    data = src.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return str(out)


def _cog(tmp: Path) -> Path:
    from rasterio.shutil import copy as rio_copy

    src = _scene(tmp, "plain.tif", shape=(300, 300))
    rio_copy(src, tmp / "cog.tif", driver="COG", BLOCKSIZE=128)  # IFDs first, then tiles
    return tmp / "cog.tif"


def _corrupt_tiles(tmp: Path) -> str:
    src = Path(_scene(tmp, "c.tif", shape=(300, 300), compress="deflate"))
    raw = bytearray(src.read_bytes())
    for i in range(len(raw) // 3, len(raw) - 10, 997):
        raw[i] ^= 0x5A
    out = tmp / "corrupt.tif"
    out.write_bytes(bytes(raw))
    return str(out)


def _no_crs(tmp: Path) -> str:
    return str(scene_file(tmp / "nocrs.tif", (80, 80), crs=None))


def _all_nodata(tmp: Path) -> str:
    data = np.zeros((4, 80, 80), dtype="uint16")
    return str(write_raster(tmp / "empty.tif", data, nodata=0))


def _nan_only(tmp: Path) -> str:
    data = np.full((4, 80, 80), np.nan, dtype="float32")
    return str(write_raster(tmp / "nan.tif", data))


def _other_crs(tmp: Path) -> str:
    return str(
        scene_file(
            tmp / "other.tif",
            (80, 80),
            crs="EPSG:4326",
            transform=__import__("affine").Affine(0.001, 0, -110, 0, -0.001, 40),
        )
    )


def _onnx_wrong_classes(tmp: Path) -> list[str]:
    import torch

    model = torch.nn.Conv2d(4, 7, 1)  # 7 outputs, the scheme has 3 classes
    onnx_path = tmp / "wrong.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 4, 64, 64),),
            str(onnx_path),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "n", 2: "r", 3: "c"}},
        )
    meta = tmp / "meta.json"
    meta.write_text(
        json.dumps(
            {
                "name": "wrong",
                "bands": ["b1", "b2", "b3", "b4"],
                "scheme": "water",
                "normalization": {"type": "percentile"},
                "chip": 64,
                "overlap": 16,
            }
        )
    )
    return [
        "bundle",
        "create",
        "--onnx",
        str(onnx_path),
        "--metadata",
        str(meta),
        "-o",
        str(tmp / "out" / "wrong.bundle"),
    ]


def _predict(
    scene: Callable[[Path], str] | str | None = None,
    *extra: str,
    bundle: Callable[[Path], str] | None = None,
) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        s = scene(tmp) if callable(scene) else (scene or _scene(tmp))
        b = bundle(tmp) if bundle else _bundle(tmp)
        return ["predict", s, "--model", b, "--out", str(tmp / "out"), *extra]

    return build


def _existing_output(tmp: Path) -> list[str]:
    s = _scene(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "s_classes.tif").write_bytes(b"precious")
    return ["predict", s, "--model", _bundle(tmp), "--out", str(tmp / "out")]


def _not_writable(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("x")
    return ["predict", _scene(tmp), "--model", _bundle(tmp), "--out", str(tmp / "afile" / "out")]


def _mixed(tmp: Path) -> list[str]:
    return [
        "predict",
        _scene(tmp),
        _other_crs(tmp),
        "--model",
        _bundle(tmp),
        "--out",
        str(tmp / "out"),
    ]


def _dup_stems(tmp: Path) -> list[str]:
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    return [
        "predict",
        _scene(tmp / "a"),
        _scene(tmp / "b"),
        "--model",
        _bundle(tmp),
        "--out",
        str(tmp / "out"),
    ]


def _text_file(tmp: Path) -> str:
    (tmp / "notes.tif").write_text("this is not a raster\n" * 50)
    return str(tmp / "notes.tif")


def _bad_arch(tmp: Path) -> list[str]:
    meta = tmp / "meta.yaml"
    meta.write_text(
        "name: x\nbands: [a, b]\nscheme: water\nnormalization: {type: percentile}\n"
        "chip: 64\noverlap: 8\n"
    )
    return [
        "bundle",
        "create",
        "--arch",
        "NoSuchNet",
        "--metadata",
        str(meta),
        "-o",
        str(tmp / "out" / "x.bundle"),
    ]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
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
