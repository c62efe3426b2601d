"""Run records (``<stem>_run.json`` of predict, ``run.json`` of a workflow) as short facts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geoseg.errors import InputError

Facts = list[tuple[str, str]]


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run record (``*_run.json``) as a dict.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a JSON object.
    """
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read run record {path}: {err}; pass a *_run.json") from err
    if not isinstance(record, dict):
        raise InputError(f"{path} is not a run record: it holds no JSON object")
    return record


def record_facts(record: Mapping[str, Any]) -> Facts:
    """Short facts of a run record: what ran on what, with which model, how long, what came out.

    Knows the records of ``geoseg predict`` (scene, bundle, parameters, chips,
    timings) and of workflows (kind, inputs, model, engine, steps, outputs);
    top-level plain values of any other record are listed as they are.

    Examples
    --------
    >>> record_facts({"kind": "flood", "state": "done", "seconds": 12.5,
    ...               "inputs": {"pre": "/d/a.tif", "post": "/d/b.tif"},
    ...               "steps": [{"name": "predict", "seconds": 10.0}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    [('kind', 'flood'), ('state', 'done'), ('input', 'pre: /d/a.tif; post: /d/b.tif'),
     ('timings', 'total 12.5 s; predict 10.0 s')]
    """
    facts: Facts = []
    for part in _PARTS:
        part(record, facts)
    if len(facts) < 2:
        shown = {k for k, _ in facts}
        facts += [
            (str(k), str(v))
            for k, v in record.items()
            if isinstance(v, str | int | float | bool) and str(k) not in shown
        ]
    return facts


def _plain(record: Mapping[str, Any], facts: Facts) -> None:
    for key in ("created", "started", "workflow", "kind", "title", "state", "error"):
        value = record.get(key)
        if value not in (None, ""):
            facts.append((key, str(value)))


def _inputs(record: Mapping[str, Any], facts: Facts) -> None:
    scene = record.get("scene")
    if isinstance(scene, Mapping):  # predict
        shape = scene.get("shape") or ["?", "?"]
        names = ", ".join(map(str, scene.get("band_names") or []))
        facts.append(("input", str(scene.get("path", "?"))))
        facts.append(("grid", f"{shape[0]:,} × {shape[1]:,} px, {scene.get('crs')}, bands {names}"))
    inputs = record.get("inputs")
    if isinstance(inputs, Mapping) and inputs:
        facts.append(("input", "; ".join(f"{k}: {_short(v)}" for k, v in inputs.items())))
    elif isinstance(inputs, list) and inputs:
        facts.append(("input", "; ".join(_short(v) for v in inputs[:10])))


def _model(record: Mapping[str, Any], facts: Facts) -> None:
    for key in ("bundle", "model"):
        info = record.get(key)
        if not isinstance(info, Mapping):
            continue
        arch = " / ".join(str(info[k]) for k in ("architecture", "encoder") if info.get(k))
        kind = arch or info.get("kind")
        sha = str(info.get("sha256") or "")[:12]
        text = str(info.get("name")) + (f" ({kind})" if kind else "")
        facts.append((key, text + (f", sha256 {sha}…" if sha else "")))


def _run_on(record: Mapping[str, Any], facts: Facts) -> None:
    p = record.get("parameters")
    if isinstance(p, Mapping):
        facts.append(("run on", f"{p.get('device')}, engine {p.get('engine')}, "
                      f"chip {p.get('chip')} / overlap {p.get('overlap')}, "
                      f"block {p.get('block')}, batch {p.get('batch_size')}"))  # fmt: skip
    elif isinstance(record.get("engine"), str):
        facts.append(("engine", record["engine"]))
    if "chips_total" in record:
        facts.append(("chips", f"{record.get('chips_inferred', 0):,} inferred of "
                      f"{record['chips_total']:,} ({record.get('chips_skipped_nodata', 0):,} "
                      "all-nodata skipped)"))  # fmt: skip


def _timings(record: Mapping[str, Any], facts: Facts) -> None:
    timings = record.get("timings_s")
    steps = record.get("steps")
    total = record.get("seconds")
    if isinstance(timings, Mapping) and timings:
        total = timings.get("total", total)
        parts = [f"{k} {v:,.1f} s" for k, v in timings.items() if k != "total"]
    elif isinstance(steps, list) and steps:
        parts = [
            f"{s.get('name')} {s.get('seconds', 0):,.1f} s" for s in steps if isinstance(s, Mapping)
        ]
    else:
        parts = []
    if parts or isinstance(total, int | float):
        head = f"total {total:,.1f} s" if isinstance(total, int | float) else ""
        facts.append(("timings", "; ".join(p for p in (head, ", ".join(parts)) if p)))
    if "peak_rss_mb" in record:
        facts.append(("peak memory", f"{record['peak_rss_mb']:,.0f} MB"))


def _outputs(record: Mapping[str, Any], facts: Facts) -> None:
    outputs = record.get("outputs")
    if isinstance(outputs, Mapping) and outputs:
        names = [Path(v).name if isinstance(v, str) else str(v) for v in outputs.values()]
        facts.append(("outputs", ", ".join(names)))
    versions = record.get("versions")
    if isinstance(versions, Mapping):
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))


def _short(value: Any) -> str:
    if isinstance(value, str) and ("/" in value or os.sep in value):
        return Path(value).name if len(value) > 60 else value
    return str(value)


_PARTS: tuple[Callable[[Mapping[str, Any], Facts], None], ...] = (
    _plain,
    _inputs,
    _model,
    _run_on,
    _timings,
    _outputs,
)
