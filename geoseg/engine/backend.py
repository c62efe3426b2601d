"""Torch bundles through ONNX Runtime on CPU: the backend choice, the export cache, the predictor.

This is the engine's part (not :mod:`geoseg.models`): which runtime runs a
bundle is decided where block tasks run, and :func:`get_backend_predictor`
hands them the predictor, built once per process as
:func:`geoseg.models.predictor.get_predictor` does for each kind.

A torch bundle's model is exported to ONNX once per bundle (keyed by the
bundle's SHA-256) into the user's cache folder, ``$GEOSEG_CACHE_DIR/onnx`` or
``~/.cache/geoseg/onnx``, and run by an ONNX Runtime session with every graph
optimization (``ORT_ENABLE_ALL``: fused conv + batch norm + activation, NCHWc
blocked layouts) and as many intra-op threads as the engine gives each block
task (one per core when blocks run in parallel, so the two never oversubscribe
the machine), one inter-op thread.

A cached file is untrusted: the sidecar ``<sha>.json`` records the bundle hash
and the SHA-256 of the ONNX bytes, and a file whose bytes do not hash to it (or
that lacks a sidecar, or belongs to another bundle) is exported again, never
run. A cache that cannot be written only costs the export next time.

:func:`choose_backend` is what ``--backend auto`` means: ONNX Runtime for a
torch bundle in float32 on CPU when ``onnxruntime`` imports (measured faster:
``benchmarks/README.md``), torch otherwise (CUDA, bf16, no onnxruntime, a model
the exporter cannot take).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from geoseg.atomic import atomic_path
from geoseg.errors import BundleError, InputError, MissingDependencyError
from geoseg.models.device import Predictor
from geoseg.models.predictor import LOADS, get_predictor

if TYPE_CHECKING:
    from geoseg.models.bundle import ModelBundle

log = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
"""What ``--backend`` accepts."""

EXPORT_VERSION = 1
"""Bumped when the export changes, so older cached files are exported again."""

OPSET = 17


def check_backend(backend: str) -> Backend:
    """Validate ``--backend``; returns it.

    Raises
    ------
    InputError
        Not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    return backend


def ort_available() -> bool:
    """Whether ``onnxruntime`` imports in this process."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """What runs a bundle's forward passes, and why."""

    name: str
    reason: str


def choose_backend(
    requested: str, bundle: ModelBundle, device: str, precision: str
) -> BackendChoice:
    """The backend of a run: ``--backend`` as asked, or what ``auto`` picks, with the reason.

    Raises
    ------
    InputError
        ``onnxruntime`` asked for where it cannot run a torch bundle (a GPU, bf16).
    MissingDependencyError
        ``onnxruntime`` asked for but not installed.
    """
    check_backend(requested)
    if bundle.kind != "torch":
        own = {"onnx": "onnxruntime", "index": "numpy"}.get(bundle.kind, bundle.kind)
        return BackendChoice(own, f"a {bundle.kind} bundle always runs on {own}")
    if requested == "torch":
        return BackendChoice("torch", "--backend torch")
    cpu = not device.startswith("cuda")
    if requested == "onnxruntime":
        if not cpu or precision != "fp32":
            raise InputError(
                f"--backend onnxruntime runs torch bundles in fp32 on CPU only (asked: {device}, "
                f"{precision}); use --backend torch or auto"
            )
        if not ort_available():
            raise MissingDependencyError("--backend onnxruntime needs: pip install onnxruntime")
        return BackendChoice("onnxruntime", "--backend onnxruntime")
    if not cpu:
        return BackendChoice("torch", f"auto: torch on {device} (ONNX Runtime is used on CPU only)")
    if precision != "fp32":
        return BackendChoice("torch", f"auto: torch for --precision {precision} (ORT runs fp32)")
    if not ort_available():
        return BackendChoice("torch", "auto: torch (onnxruntime is not installed)")
    return BackendChoice(
        "onnxruntime",
        "auto: ONNX Runtime on CPU (fp32, all graph optimizations): its forward passes took "
        "0.62x torch's on the benchmark U-Net, with class rasters identical on the shipped "
        "bundles (benchmarks/README.md)",
    )


def cache_dir() -> Path:
    """Where exported models are kept: ``$GEOSEG_CACHE_DIR/onnx`` or ``~/.cache/geoseg/onnx``."""
    root = os.environ.get("GEOSEG_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "geoseg"
    return base.expanduser() / "onnx"


def _sidecar(bundle: ModelBundle, data: bytes) -> dict[str, object]:
    return {
        "bundle_sha256": bundle.sha256,
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
    }


def _read_cached(bundle: ModelBundle, folder: Path) -> bytes | None:
    """The cached export of ``bundle`` if its sidecar vouches for its bytes, else None."""
    model, meta = folder / f"{bundle.sha256}.onnx", folder / f"{bundle.sha256}.json"
    try:
        side = json.loads(meta.read_text(encoding="utf-8"))
        data = model.read_bytes()
    except (OSError, ValueError):
        return None
    if side != _sidecar(bundle, data):
        log.warning("cached ONNX export %s does not match its record; exporting again", model)
        return None
    return data


def cached_onnx(bundle: ModelBundle) -> bytes:
    """The ONNX bytes of a torch bundle: from the cache when verified, else exported (and cached).

    Raises
    ------
    BundleError
        The model cannot be exported.
    """
    from geoseg.models.onnx_export import onnx_bytes

    folder = cache_dir()
    data = _read_cached(bundle, folder)
    if data is not None:
        return data
    data = onnx_bytes(bundle, opset=OPSET)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / f"{bundle.sha256}.onnx") as tmp:
            tmp.write_bytes(data)
        with atomic_path(folder / f"{bundle.sha256}.json") as tmp:
            tmp.write_text(json.dumps(_sidecar(bundle, data)), encoding="utf-8")
    except OSError as err:  # a read-only home: the export is only redone next time
        log.warning("cannot cache the ONNX export in %s (%s); continuing without", folder, err)
    return data


def session_options(threads: int) -> object:
    """ORT session options: all graph optimizations, ``threads`` intra-op, 1 inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 1:
        # pool threads that spin between ops steal the cores of the other block tasks
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OrtTorchPredictor:
    """A torch bundle's model exported to ONNX and run with ONNX Runtime on CPU; returns logits.

    One session serves every block task of a process: ``run`` is thread-safe,
    and with one intra-op thread each call computes on its caller's thread.
    """

    logits = True
    backend = "onnxruntime"

    def __init__(self, bundle: ModelBundle, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise MissingDependencyError(
                "--backend onnxruntime needs: pip install onnxruntime"
            ) from err
        self.device = "cpu"
        self.precision = "fp32"
        self.threads = max(1, threads)
        self.n_classes = len(bundle.classes)
        self.name = bundle.name
        data = cached_onnx(bundle)
        try:
            self.session = ort.InferenceSession(
                data, sess_options=session_options(self.threads), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise BundleError(
                f"bundle '{bundle.name}': its ONNX export does not load: {err}"
            ) from err
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, chips: NDArray[np.float32]) -> NDArray[np.float32]:
        x = np.ascontiguousarray(chips, dtype=np.float32)
        try:
            (y,) = self.session.run(None, {self.input_name: x})[:1]
        except Exception as err:  # onnxruntime raises its own untyped errors
            if "failed to allocate memory" in str(err).lower():
                # as numpy's and torch's allocation failures: predict says it in one sentence
                raise MemoryError(f"ONNX Runtime: {str(err).splitlines()[0][-200:]}") from err
            raise
        out: NDArray[np.float32] = np.asarray(y, dtype=np.float32)
        return out


_ort_cache: dict[tuple[str, int], OrtTorchPredictor] = {}
_ort_lock = threading.Lock()


def get_backend_predictor(
    bundle: ModelBundle, device: str, precision: str, *, backend: str, threads: int = 1
) -> Predictor:
    """The predictor of ``bundle`` on ``backend``, built once per process.

    A torch bundle on ONNX Runtime gets one session per ``threads`` (its
    intra-op threads); everything else is :func:`~geoseg.models.predictor.get_predictor`'s.
    """
    if bundle.kind != "torch" or choose_backend(backend, bundle, device, precision).name != (
        "onnxruntime"
    ):
        return get_predictor(bundle, device, precision)
    key = (bundle.sha256, max(1, threads))
    with _ort_lock:
        pred = _ort_cache.get(key)
        if pred is None:
            pred = OrtTorchPredictor(bundle, threads=threads)
            _ort_cache[key] = pred
            LOADS.append(bundle.sha256)  # "built once per process" counts ORT sessions too
        return pred


def warm(bundle_ref: str, backend: str = "auto") -> str:
    """Build a bundle's CPU predictor on ``backend`` in this process (``client.run`` on workers)."""
    from geoseg.models.bundle import load_bundle

    bundle = load_bundle(bundle_ref)
    get_backend_predictor(bundle, "cpu", "fp32", backend=backend, threads=1)
    return bundle.sha256
