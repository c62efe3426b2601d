"""geoseg.models: one registry of bundle kinds, and no import cycle among the modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geoseg.errors import BundleError, InputError
from geoseg.models.bundle import load_bundle
from geoseg.models.device import Predictor
from geoseg.models.kinds import BUNDLE_KINDS, KINDS, kind_of, validate_meta
from geoseg.models.onnx_model import OnnxPredictor
from geoseg.models.predictor import get_predictor, returns_logits
from geoseg.models.shipped import shipped_bundles
from geoseg.models.spectral import IndexPredictor
from geoseg.models.torch_model import TorchPredictor
from tests.common import REPO

MODELS = REPO / "geoseg" / "models"


def _models_imports(path: Path) -> set[str]:
    """Modules of geoseg.models that ``path`` imports, at any level, except under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geoseg.models"):
            if node.module == "geoseg.models":
                found.update(f"geoseg.models.{a.name}" for a in node.names)
            else:
                found.add(str(node.module))
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("geoseg.models"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    return {
        "geoseg.models" + ("" if p.stem == "__init__" else f".{p.stem}"): _models_imports(p)
        for p in sorted(MODELS.glob("*.py"))
    }


def test_no_import_cycle_among_models_modules() -> None:
    """Counting function-level imports: a bundle no longer imports the forward pass."""
    graph = _graph()
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            walk(dep, [*path, node])
        done.add(node)

    for module in graph:
        walk(module, [])


def test_bundle_module_knows_no_predictor() -> None:
    """The file format reaches kinds only through the registry, never the predictor cache."""
    deps = _graph()["geoseg.models.bundle"]
    assert "geoseg.models.predictor" not in deps
    assert "geoseg.models.indices" not in deps


def test_importing_a_bundle_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys, geoseg.models.bundle, geoseg.models.predictor; "
        "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_registry_has_the_three_kinds() -> None:
    assert KINDS == ("torch", "onnx", "index")
    assert all(BUNDLE_KINDS[name].name == name for name in KINDS)


@pytest.mark.parametrize(("name", "cls"), [("water", TorchPredictor), ("ndwi", IndexPredictor)])
def test_predictor_comes_from_the_bundles_kind(name: str, cls: type) -> None:
    bundle = load_bundle(name)
    pred: Predictor = get_predictor(bundle)
    assert isinstance(pred, cls)
    assert returns_logits(bundle) is kind_of(bundle.meta).returns_logits(bundle.meta) is True


def test_onnx_kind_makes_an_onnx_predictor(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from geoseg.models.bundle import ModelBundle
    from geoseg.models.onnx_export import onnx_bytes

    torch_bundle = load_bundle("water")
    made = ModelBundle.create(
        name="w-onnx",
        bands=torch_bundle.bands,
        classes=torch_bundle.classes,
        normalization=torch_bundle.meta["normalization"],
        onnx=onnx_bytes(torch_bundle),
        chip=64,
        overlap=8,
        output="probs",
    )
    assert isinstance(get_predictor(made), OnnxPredictor)
    assert not returns_logits(made)
    with pytest.raises(InputError, match="runs as exported"):
        get_predictor(made, precision="bf16")


def test_each_kind_checks_its_own_keys() -> None:
    meta = dict(load_bundle("ndwi").meta)
    with pytest.raises(BundleError, match="apply to ONNX bundles only"):
        validate_meta({**meta, "layout": "NHWC"})
    with pytest.raises(BundleError, match="unknown index"):
        validate_meta({**meta, "index": {**meta["index"], "name": "evi"}})
    torch_meta = dict(load_bundle("water").meta)
    with pytest.raises(BundleError, match="needs an 'architecture'"):
        validate_meta({**torch_meta, "architecture": None})
    with pytest.raises(BundleError, match="bundle kind must be one of torch, onnx, index"):
        validate_meta({**torch_meta, "kind": "tflite"})


def test_checking_keeps_shipped_metadata_as_is() -> None:
    """Checking is idempotent on every shipped bundle: key order and values unchanged."""
    for name in shipped_bundles():
        meta = load_bundle(name).meta
        again = validate_meta(meta)
        assert list(again) == list(meta)
        assert again == meta


def test_index_predictor_scores() -> None:
    pred = get_predictor(load_bundle("ndwi"))
    chips = np.array([[[[3.0]], [[1.0]]]], dtype=np.float32)  # green, nir: ndwi 0.5
    assert pred.predict(chips)[0, :, 0, 0].tolist() == [0.0, 25.0]


def test_bundle_meta_describes_every_shipped_key() -> None:
    """BundleMeta names every key a shipped bundle has, and every required one is there."""
    from geoseg.models.schema import BundleMeta, IndexSpec

    for name in shipped_bundles():
        meta = load_bundle(name).meta
        assert isinstance(meta, dict)  # still a plain dict at run time
        assert set(meta) <= set(BundleMeta.__annotations__), name
        assert BundleMeta.__required_keys__ <= set(meta), name
        if "index" in meta:
            assert set(meta["index"]) == set(IndexSpec.__annotations__)


def test_models_modules_import_only_those_listed_before_them() -> None:
    """The bottom-up order in geoseg/models/__init__.py's docstring is the import order."""
    import geoseg.models

    doc = str(geoseg.models.__doc__)
    block = doc.split("::", 1)[1].strip().split("\n\n")[0]
    listed = [line.split()[0] for line in block.splitlines()]
    assert sorted(listed) == sorted(p.stem for p in MODELS.glob("*.py") if p.stem != "__init__")
    for i, name in enumerate(listed):
        deps = {d.rsplit(".", 1)[1] for d in _graph()[f"geoseg.models.{name}"]}
        assert deps <= set(listed[:i]), f"{name} imports {sorted(deps - set(listed[:i]))}"
