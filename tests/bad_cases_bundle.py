"""Bad-input rows. Bundles, vectorize and quicklook: create, export, write beside user files."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.badinput import Case, _bundle, _predict, _scene
from tests.common import make_bundle

_FLAT = {
    "bands": ["b1", "b2", "b3", "b4"],
    "classes": ["land", "water", "cloud"],
    "mean": [10000.0] * 4,
    "std": [5000.0] * 4,
    "chip": 64,
    "overlap": 8,
}


def _onnx(tmp: Path, *, fixed: bool = False, nhwc: bool = False) -> Path:
    import torch

    path = tmp / f"m{'_fixed' if fixed else ''}{'_nhwc' if nhwc else ''}.onnx"
    if path.exists():
        return path
    torch.manual_seed(0)
    net: torch.nn.Module = torch.nn.Conv2d(4, 3, 1)
    shape: tuple[int, ...] = (1, 4, 64, 64)
    axes: dict[str, dict[int, str]] | None = None if fixed else {"x": {0: "n", 2: "r", 3: "c"}}
    if nhwc:
        net, shape, axes = _ChannelsLast(net), (1, 64, 64, 4), {"x": {0: "n", 1: "r", 2: "c"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(net.eval(), (torch.zeros(*shape),), str(path), dynamo=False,
                          input_names=["x"], dynamic_axes=axes)  # fmt: skip
    return path


class _ChannelsLast(__import__("torch").nn.Module):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Any) -> Any:
        return self.inner(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _create(
    meta: dict[str, Any] | str | None = None,
    *extra: str,
    onnx: Callable[[Path], Path] = _onnx,
    out: str = "out/x.bundle",
    suffix: str = ".json",
) -> Callable[[Path], list[str]]:
    """``bundle create --onnx`` with metadata ``meta`` (a dict as JSON, or raw text)."""

    def build(tmp: Path) -> list[str]:
        path = tmp / f"meta{suffix}"
        doc = _FLAT if meta is None else meta
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        model = str(onnx(tmp))
        return ["bundle", "create", "--onnx", model, "--metadata", str(path), "-o",
                str(tmp / out), *extra]  # fmt: skip

    return build


def _flat(**changes: Any) -> dict[str, Any]:
    doc = {**_FLAT, **changes}
    return {k: v for k, v in doc.items() if v is not None}


def _existing(build: Callable[[Path], list[str]], name: str) -> Callable[[Path], list[str]]:
    def run(tmp: Path) -> list[str]:
        (tmp / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "out" / name).write_bytes(b"the user's own file")
        return build(tmp)

    return run


def _forged(**changes: Any) -> Callable[[Path], str]:
    """A bundle edited *and* re-hashed: the integrity check passes, validation must not."""

    def build(tmp: Path) -> str:
        from safetensors.numpy import save_file

        from geoseg.models.schema import digest

        b = make_bundle("ConvStack", chip=64, overlap=16)
        meta = {**b.meta, **changes}
        meta["sha256"] = digest(meta, b.tensors)
        path = tmp / "forged.bundle"
        save_file(b.tensors, str(path), metadata={"geoseg": json.dumps(meta)})
        return str(path)

    return build


def _shadow_folder(tmp: Path) -> str:
    (tmp / "water").mkdir()
    return str(tmp / "water")


def _under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("x")
    return _create(out="afile/x.bundle")(tmp)


def _quicklook(*extra: str, raster: Callable[[Path], str] = _scene) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        return ["quicklook", raster(tmp), "-o", str(tmp / "out" / "q.png"), *extra]

    return build


def _export_over_existing(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "m.onnx").write_bytes(b"the user's own model")
    return ["bundle", "export-onnx", _bundle(tmp), "-o", str(tmp / "out" / "m.onnx")]


def _fixed_bundle(tmp: Path) -> str:
    import geoseg

    path = tmp / "fixed.bundle"
    geoseg.ModelBundle.create(
        name="fixed", onnx=_onnx(tmp, fixed=True).read_bytes(), bands=_FLAT["bands"],
        classes=[{"id": i, "name": n, "color": "#123456"} for i, n in enumerate(_FLAT["classes"])],
        normalization={"type": "percentile"}, chip=64, overlap=8,
    ).save(path)  # fmt: skip
    return str(path)


NAN = float("nan")

CASES: dict[str, Case] = {
    # bundle create: the metadata a user writes (issue 16)
    "meta: flat form lacks bands": (_create(_flat(bands=None)), "metadata 'bands' is missing"),
    "meta: no classes": (_create(_flat(classes=None)), "metadata 'classes' is missing"),
    "meta: no normalization": (
        _create(_flat(mean=None, std=None)),
        "metadata 'normalization' is missing",
    ),
    "meta: mean without std": (_create(_flat(std=None)), "metadata 'std' is missing"),
    "meta: mean per band": (_create(_flat(mean=[0, 0, 0])), "needs 4 finite numbers"),
    "meta: nan std": (_create(_flat(std=[NAN] * 4)), "needs 4 finite numbers"),
    "meta: 400-digit mean": (_create(_flat(mean=[10**400] * 4)), "needs 4 finite numbers"),
    "meta: 400-digit chip": (_create(_flat(chip=10**400)), "4096"),
    "meta: nan std nested": (
        _create(
            _flat(
                mean=None,
                std=None,
                normalization={"type": "fixed", "mean": [0] * 4, "std": [NAN] * 4},
            )
        ),
        "finite numbers",
    ),  # fmt: skip
    "meta: scale 0": (_create(_flat(scale=0)), "metadata 'scale' must not be 0"),
    "meta: chip 1e29": (_create(_flat(chip=1e29)), "metadata 'chip' must be a whole number"),
    "meta: chip 50000": (_create(_flat(chip=50000)), "4096"),
    "meta: chip as text": (_create(_flat(chip="big")), "metadata 'chip' must be a whole number"),
    "meta: overlap >= chip": (_create(_flat(overlap=64)), "overlap must be smaller than chip"),
    "meta: typo key": (_create(_flat(overlapp=8)), "did you mean 'overlap'"),
    "meta: bands as numbers": (_create(_flat(bands=[1, 2, 3, 4])), "e.g. bands: [blue"),
    "meta: classes as numbers": (_create(_flat(classes=[0, 1, 2])), "metadata 'classes'"),
    "meta: class without color": (
        _create(_flat(classes=[{"id": 0, "name": "land"}])),
        "needs 'id', 'name' and 'color'",
    ),
    "meta: two normalizations": (
        _create(_flat(normalization={"type": "percentile"})),
        "is given twice",
    ),
    "meta: not a mapping": (_create("- just\n- a list\n", suffix=".yaml"), "must hold a mapping"),
    "meta: yaml syntax": (_create("bands: [a, b\n", suffix=".yaml"), "cannot parse metadata"),
    "meta: missing file": (
        lambda t: [
            "bundle",
            "create",
            "--onnx",
            "m.onnx",
            "--metadata",
            str(t / "none.yaml"),
            "-o",
            str(t / "out" / "x.bundle"),
        ],
        "bundle template",
    ),  # fmt: skip
    "meta: output with --arch": (
        lambda t: (
            _create(_flat(output="probs"))(t)[:2]
            + [
                "--arch",
                "Pointwise",
                "--metadata",
                str(t / "meta.json"),
                "-o",
                str(t / "out" / "x.bundle"),
            ]
        ),
        "use it with --onnx",
    ),  # fmt: skip
    "meta: layout typo": (_create(_flat(layout="nhwc")), "must be NCHW or NHWC"),
    # bundle create: the ONNX model and the output file
    "onnx: chip over fixed input": (
        _create(_flat(chip=96), onnx=lambda t: _onnx(t, fixed=True)),
        "fixed 64x64 input",
    ),
    "onnx: channels last unsaid": (
        _create(onnx=lambda t: _onnx(t, nhwc=True)),
        "set layout: NHWC",
    ),
    "create over an existing bundle": (
        _existing(_create(), "x.bundle"),
        "exists; pass --overwrite",
    ),
    "create -o is a folder": (_existing(_create(out="out/sub"), "sub/keep"), "is a folder"),
    "create -o under a file": (_under_a_file, "is a file"),
    "export-onnx over an existing file": (_export_over_existing, "exists; pass --overwrite"),
    "create -o is the onnx input": (
        lambda t: _create()(t)[:-1] + [str(_onnx(t)), "--overwrite"],
        "is an input of this command",
    ),
    "export-onnx -o is the bundle": (
        lambda t: ["bundle", "export-onnx", _bundle(t), "-o", _bundle(t), "--overwrite"],
        "is an input of this command",
    ),
    # predict with a bundle someone else made
    "bundle nan std (re-hashed)": (
        _predict(
            None,
            bundle=_forged(normalization={"type": "fixed", "mean": [0.0] * 4, "std": [NAN] * 4}),
        ),
        "finite",
    ),  # fmt: skip
    "bundle chip 50000 (re-hashed)": (_predict(None, bundle=_forged(chip=50000)), "1..4096"),
    "bundle chip 1e29 (re-hashed)": (_predict(None, bundle=_forged(chip=1e29)), "1..4096"),
    "bundle overlap text (re-hashed)": (
        _predict(None, bundle=_forged(overlap="16")),
        "whole number",
    ),
    "bundle model too large (re-hashed)": (
        _predict(None, bundle=_forged(arch_params={"layers": 3, "width": 10**9})),
        "arch_params 'width'",
    ),
    "bundle is a folder": (_predict(None, bundle=_shadow_folder), "is a folder, not a bundle"),
    "bundle is an onnx file": (
        _predict(None, bundle=lambda t: str(_onnx(t))),
        "geoseg bundle create --onnx",
    ),
    "predict --chip over fixed onnx input": (
        _predict(None, "--chip", "96", bundle=_fixed_bundle),
        "--chip 64",
    ),
    # quicklook
    "quicklook of a scene": (_quicklook(), "not a class raster"),
    "quicklook bad --bands": (_quicklook("--bands", "red"), "--bands takes band numbers"),
    "quicklook not png": (
        lambda t: ["quicklook", _scene(t), "-o", str(t / "out" / "q.jpg")],
        "must be a .png",
    ),
}
