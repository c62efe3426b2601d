"""Builders for the bad-input table: scenes, bundles and command lines that must fail cleanly.

The table itself is ``tests/test_bad_input.py``; its cases live in that module and in the
``tests/bad_cases_*.py`` modules beside it (one per area), which all build on these helpers.
"""

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

from tests.common import make_bundle, scene_file, write_raster

Case = tuple[Callable[[Path], list[str]], str]
"""A table row: builds the command line in a temporary folder; the text the error must contain."""

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
