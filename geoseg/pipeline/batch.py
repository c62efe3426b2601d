"""Batches of scenes: a manifest of per-scene state, resumable, one failure fails alone.

When ``predict`` gets several scenes it keeps ``manifest.json`` in the output
folder: for every scene its state (``pending``, ``done``, ``failed`` with the
error), the key its outputs were made with, and its outputs. A re-run skips a
scene whose key is unchanged and whose outputs are all there, retries failed
ones, and runs the rest. The key is a SHA-256 over the input's content (a full
hash of local files; size and mtime let an unchanged file reuse its recorded
hash), the bundle's hash, and every option that can change the bytes written
(precision included). Block size and thread count are not in it: they never
change the bytes.

A scene that cannot be read, or fails during its run, is marked ``failed`` and
the batch goes on; the call then raises :class:`BatchError` (which carries every
scene's result) so a failure is never silent. Outputs are published atomically
per scene, so a finished output is never replaced by a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from geoseg.atomic import output_locks
from geoseg.engine.base import Engine
from geoseg.errors import (
    BatchError as BatchError,  # re-exported: defined in errors since 0.2
)
from geoseg.errors import (
    GeosegError,
    OutputError,
)
from geoseg.io.bandstack import vrt_sources as vrt_sources  # re-exported: old path
from geoseg.io.scene import Scene, gdal_env
from geoseg.models.bundle import ModelBundle
from geoseg.pipeline.check import open_for_predict
from geoseg.pipeline.options import PredictOptions
from geoseg.pipeline.outputs import check_out_dir, existing_outputs, locked_subject, output_paths
from geoseg.pipeline.plan import check_one_crs, check_resources, check_unique_stems
from geoseg.pipeline.run import PredictResult, predict_scene
from geoseg.pipeline.scenes import scene_stem
from geoseg.records import write_record

MANIFEST = "manifest.json"
_NOT_IN_KEY = ("block", "threads", "device", "overwrite", "allow_mixed_crs")
"""Options that never change the bytes written (``device`` enters the key as cpu/cuda).

Every other option of :class:`~geoseg.pipeline.options.PredictOptions` is in the key, so
an option added later counts until it is shown not to change the outputs.
"""


def file_fingerprint(path: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Size, mtime and SHA-256 of a local file (remote paths: the path itself).

    The hash is reused from ``previous`` when size and mtime are unchanged, so
    re-running a large archive does not re-read every finished scene. A VRT
    (what ``predict-stac`` reads) also gets the fingerprints of the files it
    points to under ``sources``: the pixels are theirs, not the XML's.
    """
    if "://" in path or path.startswith("/vsi"):
        return {"remote": path}
    st = os.stat(path)
    prev = previous or {}
    if prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
        out = {k: prev[k] for k in ("size", "mtime_ns", "sha256")}
    else:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        out = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}
    if path.lower().endswith(".vrt"):
        known = prev.get("sources") or {}
        out["sources"] = {
            src: file_fingerprint(src, known.get(src)) for src in sorted(vrt_sources(path))
        }
    return out


def scene_key(
    fingerprint: dict[str, Any], bundle_sha256: str, options: dict[str, Any], device: str
) -> str:
    """The key that says whether existing outputs were made from the same things."""
    content = fingerprint.get("sha256") or fingerprint.get("remote")
    sources = fingerprint.get("sources") or {}
    body = {
        "input": content,
        "sources": {k: v.get("sha256") or v.get("remote") for k, v in sorted(sources.items())},
        "bundle": bundle_sha256,
        "device": device.split(":")[0],
        "options": {k: v for k, v in sorted(options.items()) if k not in _NOT_IN_KEY},
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Manifest:
    """Per-scene state of a batch, saved atomically after every change."""

    path: Path
    scenes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The folder's manifest, or an empty one."""
        path = folder / MANIFEST
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            scenes = doc["scenes"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise OutputError(
                f"{path} is not a geoseg manifest ({err}); move it away or choose another --out"
            ) from err
        return cls(path, dict(scenes))

    def get(self, stem: str) -> dict[str, Any]:
        """The entry of a scene (empty if unknown)."""
        return dict(self.scenes.get(stem, {}))

    def update(self, stem: str, **entry: Any) -> None:
        """Change a scene's entry and save the manifest."""
        self.scenes[stem] = {
            **self.scenes.get(stem, {}),
            **entry,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.save()

    def save(self) -> None:
        """Write atomically."""
        doc = {"geoseg_manifest": 1, "scenes": self.scenes}
        write_record(self.path, doc)

    def counts(self) -> dict[str, int]:
        """Scenes per state."""
        out: dict[str, int] = {}
        for entry in self.scenes.values():
            out[entry.get("state", "?")] = out.get(entry.get("state", "?"), 0) + 1
        return out


def run_batch(
    paths: list[str],
    bundle: ModelBundle,
    out: Path,
    *,
    opts: PredictOptions,
    device: str,
    engine: Engine,
    progress: Callable[[int, int], None] | None = None,
) -> list[PredictResult]:
    """Predict several scenes with a manifest (see the module docstring).

    Raises
    ------
    BatchError
        After the whole batch, if any scene failed.
    GeosegError
        Before anything runs, for problems of the whole call (output folder,
        scenes sharing a name, mixed CRSs without ``allow_mixed_crs``).
    """
    check_out_dir(out)
    check_unique_stems([scene_stem(p) for p in paths])
    opened: dict[str, Scene | GeosegError] = {}
    for path in paths:
        try:
            scene = open_for_predict(path, bundle, opts)
            check_resources(scene, bundle, opts, device, engine)
            opened[path] = scene
        except GeosegError as err:
            opened[path] = err
    check_one_crs(
        [s for s in opened.values() if isinstance(s, Scene)],
        allow_mixed_crs=opts.allow_mixed_crs,
    )
    # one batch per folder at a time (the manifest), and no other run on these scenes
    with (
        output_locks(out, [MANIFEST], f"the batch manifest {out / MANIFEST}"),
        output_locks(out, [scene_stem(p) for p in paths], locked_subject(out)),
    ):
        manifest = Manifest.load(out)
        plan = [
            _plan_scene(path, opened[path], bundle, out, opts, device, manifest) for path in paths
        ]
        results = []
        with gdal_env(reads_chips=engine.reads_chips):
            for path, subject, key, verdict in plan:
                results.append(
                    _run_one(
                        path,
                        subject,
                        key,
                        verdict,
                        bundle,
                        out,
                        opts,
                        device,
                        engine,
                        progress,
                        manifest,
                    )
                )
    failed = [r for r in results if r.state == "failed"]
    if failed:
        first = failed[0]
        raise BatchError(
            f"{len(failed)} of {len(results)} scenes failed ({os.path.basename(first.scene)}: "
            f"{first.error}); the others finished — see {manifest.path}",
            results,
        )
    return results


Verdict = Literal["run", "skip", "fail"]
"""What a batch does with a scene: run it, skip it (done with the same key), or fail it."""


def _plan_scene(
    path: str,
    scene: Scene | GeosegError,
    bundle: ModelBundle,
    out: Path,
    opts: PredictOptions,
    device: str,
    manifest: Manifest,
) -> tuple[str, Scene | GeosegError, str | None, Verdict]:
    """Decide ``run``, ``skip`` or ``fail`` for one scene and mark it in the manifest."""
    stem = scene_stem(path)
    entry = manifest.get(stem)
    if isinstance(scene, GeosegError):
        manifest.update(stem, path=path, state="failed", error=str(scene), key=None)
        return path, scene, None, "fail"
    fingerprint = file_fingerprint(path, entry.get("fingerprint"))
    key = scene_key(fingerprint, bundle.sha256, asdict(opts), device)
    outputs = output_paths(out, stem, opts)
    have = [q for q in outputs.values() if q.exists()]
    if entry.get("state") == "done" and entry.get("key") == key and len(have) == len(outputs):
        return path, scene, key, "skip"
    have = existing_outputs(out, stem)  # a user's own style, or one this run would not make
    if have and not opts.overwrite:
        err = OutputError(
            f"{have[0]} exists and was not made with these inputs and options; "
            "pass --overwrite to replace it"
        )
        manifest.update(
            stem, path=path, state="failed", error=str(err), key=key, fingerprint=fingerprint
        )
        return path, err, key, "fail"
    manifest.update(stem, path=path, state="pending", error=None, key=key, fingerprint=fingerprint)
    return path, scene, key, "run"


def _run_one(
    path: str,
    scene: Scene | GeosegError,
    key: str | None,
    verdict: Verdict,
    bundle: ModelBundle,
    out: Path,
    opts: PredictOptions,
    device: str,
    engine: Engine,
    progress: Callable[[int, int], None] | None,
    manifest: Manifest,
) -> PredictResult:
    stem = scene_stem(path)
    if verdict == "fail" or isinstance(scene, GeosegError):  # "fail" is what holds an error
        return PredictResult(scene=path, outputs={}, record={}, state="failed", error=str(scene))
    outputs = {k: str(v) for k, v in output_paths(out, stem, opts).items()}
    if verdict == "skip":
        record = json.loads(Path(outputs["run"]).read_text(encoding="utf-8"))
        return PredictResult(scene=path, outputs=outputs, record=record, state="skipped")
    try:
        res = predict_scene(
            scene, bundle, out, opts=opts, device=device, engine=engine, progress=progress
        )
    except GeosegError as err:
        manifest.update(stem, state="failed", error=str(err))
        return PredictResult(scene=path, outputs={}, record={}, state="failed", error=str(err))
    manifest.update(stem, state="done", error=None, outputs=res.outputs)
    return res
