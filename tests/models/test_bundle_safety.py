"""Bring your own model, and bundles, vectorize and quicklook meeting careless or hostile input.

Cases the bad-input table (tests/bad_cases_bundle.py) cannot express live here: a
user's file kept intact, a folder that is not writable, a run killed with SIGKILL,
and models from other tools that must work end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

import geoseg
from geoseg.cli.main import cli
from geoseg.errors import BundleError
from geoseg.models.bundle import load_bundle
from tests.common import CLASSES3, dead_pid, make_bundle, read, scene_file


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_line_error(res: Result, text: str) -> None:
    assert res.exit_code == 2, (res.output, res.exception)
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and text in err, err


def export(
    model: torch.nn.Module,
    path: Path,
    *,
    shape: tuple[int, ...] = (1, 4, 64, 64),
    dynamic: bool = True,
) -> Path:
    """A real ONNX export of ``model`` (dynamic batch and size unless ``dynamic`` is false)."""
    axes = {"x": {0: "n", 2: "r", 3: "c"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model.eval(),
            (torch.zeros(*shape),),
            str(path),
            dynamo=False,
            input_names=["x"],
            dynamic_axes=axes,
        )
    return path


def _pointwise(classes: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Conv2d(4, classes, 1)


def _flat_meta(path: Path, **extra: Any) -> Path:
    meta = {
        "bands": ["b1", "b2", "b3", "b4"],
        "classes": [c["name"] for c in CLASSES3],
        "mean": [10000.0] * 4,
        "std": [5000.0] * 4,
        "chip": 64,
        "overlap": 8,
        **extra,
    }
    path.write_text(json.dumps(meta))
    return path


# --- issue 16: bring your own model -------------------------------------------------------


def test_flat_metadata_as_other_tools_write_it(tmp_path: Path) -> None:
    onnx = export(_pointwise(), tmp_path / "m.onnx")
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(onnx),
        "--metadata",
        str(_flat_meta(tmp_path / "m.json")),
        "-o",
        str(tmp_path / "out" / "river-model.bundle"),
    )
    assert res.exit_code == 0, res.output
    b = load_bundle(tmp_path / "out" / "river-model.bundle")
    assert b.name == "river-model"  # the output file's stem
    assert b.meta["normalization"] == {
        "type": "fixed",
        "mean": [10000.0] * 4,
        "std": [5000.0] * 4,
        "scale": 1.0,
        "offset": 0.0,
    }
    assert [c.name for c in b.classes] == [c["name"] for c in CLASSES3]


def test_template_filled_with_a_real_model_predicts(tmp_path: Path) -> None:
    res = _invoke("bundle", "template")
    assert res.exit_code == 0 and "docs/bundles.md" in res.output
    import yaml

    doc = yaml.safe_load(res.output)  # the template itself is valid metadata
    assert doc["bands"] == ["blue", "green", "red", "nir"] and doc["chip"] == 256
    filled = res.output.replace("name: my-model", "name: tiny-water").replace(
        "mean: [0.0, 0.0, 0.0, 0.0]", "mean: [15000.0, 15000.0, 15000.0, 15000.0]"
    )
    filled = filled.replace("std: [1.0, 1.0, 1.0, 1.0]", "std: [6000.0, 6000.0, 6000.0, 6000.0]")
    (tmp_path / "meta.yaml").write_text(filled)
    onnx = export(_pointwise(classes=2), tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.bundle"
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(onnx),
        "--metadata",
        str(tmp_path / "meta.yaml"),
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert load_bundle(out).name == "tiny-water"
    scene = scene_file(tmp_path / "s.tif", (300, 280))
    res = _invoke(
        "predict",
        str(scene),
        "--model",
        str(out),
        "--out",
        str(tmp_path / "r"),
        "--no-vector",
        "--bands",
        "1,2,3,4",
    )
    assert res.exit_code == 0, res.output
    classes = read(tmp_path / "r" / "s_classes.tif")
    assert set(np.unique(classes)) == {0, 1}


def test_create_help_points_to_the_docs_and_their_example_is_valid(tmp_path: Path) -> None:
    import yaml

    from geoseg.models.meta import bundle_arguments

    res = _invoke("bundle", "create", "--help")
    assert "docs/bundles.md" in res.output and "geoseg bundle template" in res.output
    text = Path(__file__).parents[2].joinpath("docs", "bundles.md").read_text()
    example = text.split("```yaml\n")[1].split("```")[0]
    args = bundle_arguments(yaml.safe_load(example), out=tmp_path / "x.bundle", onnx=True)
    assert args["name"] == "my-water-model" and args["normalization"]["scale"] == 0.0001


def test_fixed_batch_and_size_onnx_matches_torch(tmp_path: Path) -> None:
    """A model exported with batch 2 and a 64x64 input runs at chip 48 and any batch size."""
    torch_bundle = make_bundle("Pointwise", chip=48, overlap=8)
    fixed = export(
        torch_bundle.build_model(), tmp_path / "f.onnx", shape=(2, 4, 64, 64), dynamic=False
    )
    onnx_bundle = geoseg.ModelBundle.create(
        name="fixed",
        onnx=fixed.read_bytes(),
        bands=list(torch_bundle.bands),
        classes=CLASSES3,
        normalization=torch_bundle.meta["normalization"],
        chip=48,
        overlap=8,
    )
    assert onnx_bundle.meta["input_size"] == [64, 64]  # recorded from the graph
    scene = scene_file(tmp_path / "s.tif", (150, 140))
    [want] = geoseg.predict(scene, torch_bundle, tmp_path / "t", vector=False)
    for batch in (1, 3):
        [got] = geoseg.predict(
            scene, onnx_bundle, tmp_path / f"o{batch}", vector=False, batch_size=batch
        )
        same = read(got.outputs["classes"]) == read(want.outputs["classes"])
        assert same.mean() > 0.999  # runtimes differ only at float ties


def test_chip_larger_than_a_fixed_onnx_input(tmp_path: Path) -> None:
    fixed = export(_pointwise(), tmp_path / "f.onnx", dynamic=False)
    meta = _flat_meta(tmp_path / "m.json", chip=96)
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(fixed),
        "--metadata",
        str(meta),
        "-o",
        str(tmp_path / "out" / "x.bundle"),
    )
    _one_line_error(res, "fixed 64x64 input")
    assert not (tmp_path / "out" / "x.bundle").exists()
    meta = _flat_meta(tmp_path / "m.json")
    del_chip = json.loads(meta.read_text())
    del del_chip["chip"], del_chip["overlap"]
    meta.write_text(json.dumps(del_chip))  # no chip: the model's own size
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(fixed),
        "--metadata",
        str(meta),
        "-o",
        str(tmp_path / "ok.bundle"),
    )
    assert res.exit_code == 0, res.output
    assert load_bundle(tmp_path / "ok.bundle").chip == 64
    scene = scene_file(tmp_path / "s.tif", (150, 140))
    res = _invoke(
        "predict",
        str(scene),
        "--model",
        str(tmp_path / "ok.bundle"),
        "--out",
        str(tmp_path / "out"),
        "--chip",
        "128",
        "--no-vector",
    )
    _one_line_error(res, "--chip 64")


class _Nhwc(torch.nn.Module):
    """(n, rows, cols, bands) in, (n, rows, cols, classes) probabilities out."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x.permute(0, 3, 1, 2)).softmax(dim=1)
        return y.permute(0, 2, 3, 1)


class _Probs(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).softmax(dim=1)


@pytest.mark.parametrize("kind", ["probs", "nhwc", "input_size"])
def test_models_from_other_tools(kind: str, tmp_path: Path) -> None:
    """output: probs, layout: NHWC and input_size each give the torch model's classes."""
    torch_bundle = make_bundle("Pointwise", chip=48, overlap=8)
    net = torch_bundle.build_model()
    extra: dict[str, Any] = {}
    if kind == "probs":
        onnx = export(_Probs(net), tmp_path / "m.onnx")
        extra = {"output": "probs"}
    elif kind == "nhwc":
        axes = {"x": {0: "n", 1: "r", 2: "c"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Nhwc(net).eval(),
                (torch.zeros(1, 64, 64, 4),),
                str(tmp_path / "m.onnx"),
                dynamo=False,
                input_names=["x"],
                dynamic_axes=axes,
            )
        onnx = tmp_path / "m.onnx"
        extra = {"output": "probs", "layout": "NHWC"}
    else:  # dynamic axes in the graph, but the model is only valid at 64x64: pad to it
        onnx = export(net, tmp_path / "m.onnx")
        extra = {"input_size": 64}
    meta = {k: torch_bundle.meta[k] for k in ("bands", "normalization", "chip", "overlap")}
    meta.update(classes=CLASSES3, **extra)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(onnx),
        "--metadata",
        str(tmp_path / "meta.json"),
        "-o",
        str(tmp_path / "o.bundle"),
    )
    assert res.exit_code == 0, res.output
    scene = scene_file(tmp_path / "s.tif", (150, 140))
    [want] = geoseg.predict(scene, torch_bundle, tmp_path / "t", vector=False, confidence=True)
    [got] = geoseg.predict(
        scene, load_bundle(tmp_path / "o.bundle"), tmp_path / "b", vector=False, confidence=True
    )
    assert (read(got.outputs["classes"]) == read(want.outputs["classes"])).mean() > 0.999
    diff = read(got.outputs["confidence"]).astype(int) - read(want.outputs["confidence"])
    assert np.abs(diff).max() <= 1  # probabilities were not passed through softmax twice


def test_bundle_info_json_is_metadata_that_recreates_the_bundle(tmp_path: Path) -> None:
    onnx = export(_pointwise(), tmp_path / "m.onnx", dynamic=False)
    args = ["bundle", "create", "--onnx", str(onnx), "--metadata"]
    res = _invoke(*args, str(_flat_meta(tmp_path / "m.json")), "-o", str(tmp_path / "a.bundle"))
    assert res.exit_code == 0, res.output
    info = _invoke("bundle", "info", str(tmp_path / "a.bundle"), "--json").output
    (tmp_path / "info.json").write_text(info)  # nulls, kind, format and sha256 included
    res = _invoke(*args, str(tmp_path / "info.json"), "-o", str(tmp_path / "b.bundle"))
    assert res.exit_code == 0, res.output
    assert load_bundle(tmp_path / "b.bundle").sha256 == load_bundle(tmp_path / "a.bundle").sha256


def test_a_fixed_batch_too_large_for_memory_is_refused_before_allocating(tmp_path: Path) -> None:
    import onnx

    path = export(_pointwise(), tmp_path / "m.onnx", dynamic=False)
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 70_000  # 4.6 GB per pass
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 70_000
    onnx.save(model, str(path))
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(path),
        "--metadata",
        str(_flat_meta(tmp_path / "m.json")),
        "-o",
        str(tmp_path / "x.bundle"),
    )
    _one_line_error(res, "smaller or dynamic batch size")


def test_nhwc_model_without_layout_is_refused(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Nhwc(_pointwise()).eval(),
            (torch.zeros(1, 64, 64, 4),),
            str(tmp_path / "m.onnx"),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "n", 1: "r", 2: "c"}},
        )
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(tmp_path / "m.onnx"),
        "--metadata",
        str(_flat_meta(tmp_path / "m.json")),
        "-o",
        str(tmp_path / "out" / "x.bundle"),
    )
    _one_line_error(res, "layout: NHWC")


# --- item 10: numbers inside a bundle -----------------------------------------------------


def _forged(tmp: Path, **changes: Any) -> Path:
    """A bundle whose metadata was edited *and* re-hashed: only validation can refuse it."""
    from geoseg.models.schema import digest

    b = make_bundle()
    meta = {**b.meta, **changes}
    meta["sha256"] = digest(meta, b.tensors)
    from safetensors.numpy import save_file

    path = tmp / "forged.bundle"
    save_file(b.tensors, str(path), metadata={"geoseg": json.dumps(meta)})
    return path


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (
            {"normalization": {"type": "fixed", "mean": [0.0] * 4, "std": [float("nan")] * 4}},
            "finite",
        ),
        (
            {"normalization": {"type": "percentile", "mean": [float("inf")] * 4, "std": [1.0] * 4}},
            "finite",
        ),
        (
            {"normalization": {"type": "fixed", "mean": [0] * 4, "std": [1] * 4, "scale": 0}},
            "scale non-zero",
        ),
        ({"normalization": {"type": "fixed", "mean": ["x"] * 4, "std": [1] * 4}}, "not a number"),
        (
            {"normalization": {"type": "fixed", "mean": [10**400] * 4, "std": [1] * 4}},
            "not a number",
        ),
        ({"chip": 50000}, "1..4096"),
        ({"chip": 1e29}, "1..4096"),
        ({"chip": 64.5}, "whole number"),
        ({"chip": 10**400}, "1..4096"),
        ({"chip": float("inf")}, "whole number"),
        ({"chip": "64"}, "whole number"),
        ({"overlap": -3}, "0..4096"),
        ({"classes": 7}, "'classes' must be a list"),
        ({"format_version": "1"}, "format_version"),
        ({"arch_params": {"layers": 10**6, "width": 8}}, "'layers' must be a whole number"),
        ({"arch_params": {"layers": 3, "width": 10**9}}, "'width' must be a whole number"),
        ({"arch_params": {"layers": 3, "width": 8, "x": [1, 10**7]}}, "above 4096"),
        ({"name": "ok\n\x1b[2Kerror: spoofed"}, "printable"),
        ({"bands": ["b1", "b2", "b3", "b4\r"]}, "band names"),
    ],
)
def test_forged_bundle_numbers_are_refused_at_load(
    changes: dict[str, Any], text: str, tmp_path: Path
) -> None:
    with pytest.raises(BundleError, match=text):
        load_bundle(_forged(tmp_path, **changes))


def test_a_model_too_large_to_build_is_refused_before_allocating() -> None:
    from geoseg.models.arch import build_model

    with pytest.raises(BundleError, match="parameters"):  # 1.4 billion, counted on meta
        build_model(
            "Unet",
            encoder="resnet18",
            in_channels=4,
            classes=3,
            params={"decoder_channels": [4096] * 5},
        )


def test_bundle_info_shows_no_terminal_escape_from_a_card(tmp_path: Path) -> None:
    path = _forged(tmp_path, card="# Card\n\x1b]0;owned\x07\x1b[2J wiped", description="a\rb")
    res = _invoke("bundle", "info", str(path))
    assert res.exit_code == 0 and "# Card" in res.output and "wiped" in res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\r" not in res.output


def test_nan_std_gave_a_one_class_map_now_refused_at_create() -> None:
    with pytest.raises(BundleError, match="finite"):
        make_bundle(normalization={"type": "fixed", "mean": [0.0] * 4, "std": [float("nan")] * 4})


# --- item 12: names and paths -------------------------------------------------------------


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def test_a_folder_named_like_a_shipped_bundle_does_not_shadow_it(tmp_path: Path) -> None:
    (tmp_path / "water").mkdir()
    (tmp_path / "water" / "notes.txt").write_text("my water project")
    with _cwd(tmp_path):
        assert load_bundle("water").name == "water"
        with pytest.raises(BundleError, match="is a folder, not a bundle file"):
            load_bundle("./water")
        res = _invoke("bundle", "info", "water")
        assert res.exit_code == 0 and "water" in res.output
        assert "write ./water for the folder" in res.stderr  # says which one it took


def test_an_onnx_file_given_as_a_bundle_says_how_to_wrap_it(tmp_path: Path) -> None:
    onnx = export(_pointwise(), tmp_path / "m.onnx")
    with pytest.raises(BundleError, match="geoseg bundle create --onnx"):
        load_bundle(str(onnx))


# --- item 6 and 9: the user's files and folders --------------------------------------------


def test_bundle_create_keeps_an_existing_bundle_without_overwrite(tmp_path: Path) -> None:
    onnx = export(_pointwise(), tmp_path / "m.onnx")
    meta = str(_flat_meta(tmp_path / "m.json"))
    target = tmp_path / "mine.bundle"
    target.write_bytes(b"my precious bundle")
    args = ["bundle", "create", "--onnx", str(onnx), "--metadata", meta, "-o", str(target)]
    _one_line_error(_invoke(*args), "--overwrite")
    assert target.read_bytes() == b"my precious bundle"
    assert _invoke(*args, "--overwrite").exit_code == 0
    assert load_bundle(target).kind == "onnx"


def test_outputs_into_a_missing_folder_create_it(tmp_path: Path) -> None:
    src = make_bundle().save(tmp_path / "t.bundle")
    onnx = tmp_path / "new" / "deeper" / "t.onnx"
    assert _invoke("bundle", "export-onnx", str(src), "-o", str(onnx)).exit_code == 0
    target = tmp_path / "other" / "made.bundle"
    res = _invoke(
        "bundle",
        "create",
        "--onnx",
        str(onnx),
        "--metadata",
        str(_flat_meta(tmp_path / "m.json")),
        "-o",
        str(target),
    )
    assert res.exit_code == 0, res.output
    assert load_bundle(target).kind == "onnx"
    classes = _class_raster(tmp_path)
    polygons = tmp_path / "shapes" / "v.gpkg"  # vectorize says so, before any work
    _one_line_error(_invoke("vectorize", str(classes), "-o", str(polygons)), "does not exist")
    png = tmp_path / "looks" / "q.png"
    assert _invoke("quicklook", str(classes), "-o", str(png)).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@contextlib.contextmanager
def _unprivileged() -> Iterator[None]:
    """Run as ``nobody`` (root writes into any folder, whatever its mode says)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_read_only_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import matplotlib.pyplot  # noqa: F401  # imported while its cache folder is writable

    base = Path(__import__("tempfile").mkdtemp(dir="/tmp"))  # tmp_path's parents are 0700
    try:
        base.chmod(0o755)
        src = make_bundle().save(base / "t.bundle")
        onnx = export(_pointwise(), base / "m.onnx")
        meta = _flat_meta(base / "m.json")
        classes = _class_raster(base)
        ro = base / "ro"
        ro.mkdir(mode=0o555)
        ro.chmod(0o555)
        runs = [
            [
                "bundle",
                "create",
                "--onnx",
                str(onnx),
                "--metadata",
                str(meta),
                "-o",
                str(ro / "x.bundle"),
            ],
            [
                "bundle",
                "create",
                "--onnx",
                str(onnx),
                "--metadata",
                str(meta),
                "-o",
                str(ro / "sub" / "x.bundle"),
            ],
            ["bundle", "export-onnx", str(src), "-o", str(ro / "x.onnx")],
            ["quicklook", str(classes), "-o", str(ro / "x.png")],
            ["vectorize", str(classes), "-o", str(ro / "x.gpkg")],
        ]
        for args in runs:
            with _unprivileged():
                res = _invoke(*args)
            _one_line_error(res, "not writable")
        assert list(ro.iterdir()) == []
    finally:
        import shutil

        shutil.rmtree(base)


def _class_raster(tmp: Path) -> Path:
    [res] = geoseg.predict(
        scene_file(tmp / "cs.tif", (90, 80)), make_bundle(), tmp / "pred", vector=False
    )
    return Path(res.outputs["classes"])


# --- item 6: vectorize beside the user's files, and what a SIGKILL leaves --------------------


def test_vectorize_keeps_the_users_own_qml(tmp_path: Path) -> None:
    classes = _class_raster(tmp_path)
    style = tmp_path / "x.qml"
    style.write_text("<qgis><!-- my own style --></qgis>")
    out = tmp_path / "x.geojson"
    res = _invoke("vectorize", str(classes), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.exists() and style.read_text() == "<qgis><!-- my own style --></qgis>"
    assert "x.qml kept" in res.stderr and "--overwrite" in res.stderr
    res = _invoke("vectorize", str(classes), "-o", str(out), "--overwrite")
    assert res.exit_code == 0, res.output
    assert "categorizedSymbol" in style.read_text()  # asked for: geoseg's class style


def test_a_staged_output_is_written_in_place_not_under_a_temporary_of_it(tmp_path: Path) -> None:
    """predict stages the vector file; vectorize must not nest a second temporary name."""
    from geoseg.atomic import TMP_MARK, temp_name
    from geoseg.vector import vectorize

    classes = _class_raster(tmp_path)
    staged = temp_name(tmp_path / "out" / "s_classes.gpkg")
    staged.parent.mkdir()
    seen: list[str] = []
    vectorize(classes, staged, block=32, progress=lambda *_: seen.extend(os.listdir(staged.parent)))
    assert seen and not [n for n in seen if n.count(TMP_MARK) > 1], seen
    assert os.listdir(staged.parent) == [staged.name]  # the caller renames it


def test_leftovers_of_dead_runs_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    import subprocess

    from geoseg.vector import vectorize

    classes = _class_raster(tmp_path)
    out = tmp_path / "v" / "s_classes.gpkg"
    out.parent.mkdir()
    dead = dead_pid()
    nested = out.with_name(f"..s_classes.geoseg-tmp-{dead}-aaaaaa.geoseg-tmp-{dead}-bbbbbb.gpkg")
    plain = out.with_name(f".s_classes.geoseg-tmp-{dead}-cccccc.gpkg")
    sieve = out.with_name(f".s_classes.sieve.geoseg-tmp-{dead}-dddddd.tif")
    other = out.with_name(f".other.geoseg-tmp-{dead}-eeeeee.gpkg")  # another output's
    with subprocess.Popen(["sleep", "60"]) as live_proc:
        live = out.with_name(f".s_classes.geoseg-tmp-{live_proc.pid}-ffffff.gpkg")
        for p in (nested, plain, sieve, other, live):
            p.write_bytes(b"left by a killed run")
        try:
            vectorize(classes, out)
        finally:
            live_proc.kill()
    assert sorted(os.listdir(out.parent)) == sorted([out.name, other.name, live.name])


_KILLED_PREDICT = """
import sys, time
import geoseg.vector.core as core
from geoseg.models.bundle import load_bundle
import geoseg

release = core._release_blocks
def slow(*args, **kwargs):  # the vector file is open and half written: stop here
    for i, part in enumerate(release(*args, **kwargs)):
        yield part
        if i == 0:
            print("writing", flush=True)
            time.sleep(120)
core._release_blocks = slow
geoseg.predict(sys.argv[1], load_bundle(sys.argv[2]), sys.argv[3], block=32)
"""


def test_sigkill_mid_vectorize_then_rerun_leaves_no_temporary(tmp_path: Path) -> None:
    """A real predict process killed with SIGKILL while it writes its GeoPackage."""
    import signal
    import subprocess
    import sys

    from geoseg.atomic import TMP_MARK

    scene = scene_file(tmp_path / "s.tif", (160, 150))
    bundle = make_bundle().save(tmp_path / "m.bundle")
    out = tmp_path / "out"
    args = [sys.executable, "-c", _KILLED_PREDICT, str(scene), str(bundle), str(out)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = [n for n in os.listdir(out) if TMP_MARK in n and n.endswith(".gpkg")]
    assert left, os.listdir(out)  # the kill did leave a half-written GeoPackage
    [res] = geoseg.predict(scene, bundle, out, block=32)
    assert Path(res.outputs["vector"]).exists()
    assert not [n for n in os.listdir(out) if TMP_MARK in n], os.listdir(out)
