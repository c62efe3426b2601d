"""Static (QDQ, calibrated) int8 with ONNX Runtime vs its fp32, on the shipped bundles' real chips.

Not part of ``run.py``: a one-off measurement behind the int8 decision (issue 19).
Chips are the ones ``geoseg.predict`` feeds the model (the bundle's own
normalization), recorded on real scenes of ``data/``; every other chip calibrates
(``quantize_static``, QDQ, per-channel int8 weights, uint8 activations), the
rest are the test set. Prints one JSON line per bundle and calibration method:
forward-pass speed-up of int8 over fp32 (one intra-op thread, interleaved per
chip) and the share of test pixels whose argmax agrees.

    python benchmarks/int8_probe.py [bundle ...]   # results-int8.json holds the last run
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from run import SHIPPED_CASES as CASES  # noqa: E402 - the same cases as the ort section


def real_chips(name: str, scene: str, opts: dict) -> list[np.ndarray]:
    """The normalized chips geoseg feeds the model for this scene (overlap 0: no repeats)."""
    import geoseg
    from geoseg.engine import backend as ort_backend

    seen: list[np.ndarray] = []
    real = ort_backend.OrtTorchPredictor.predict

    def record(self, chips):  # type: ignore[no-untyped-def]
        seen.extend(c[None].copy() for c in chips)
        return real(self, chips)

    ort_backend.OrtTorchPredictor.predict = record  # type: ignore[method-assign]
    try:
        geoseg.predict(
            str(HERE.parent / scene),
            name,
            tempfile.mkdtemp(),
            vector=False,
            backend="onnxruntime",
            overlap=0,
            threads=1,
            **opts,
        )
    finally:
        ort_backend.OrtTorchPredictor.predict = real  # type: ignore[method-assign]
    return [c for c in seen if np.any(c)]


def main() -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import geoseg
    from geoseg.engine.backend import cached_onnx, session_options

    only = sys.argv[1:]
    for name, scene, opts in CASES:
        if only and name not in only:
            continue
        chips = real_chips(name, scene, opts)
        calib, test = chips[::2], chips[1::2]
        d = Path(tempfile.mkdtemp())
        (d / "f.onnx").write_bytes(cached_onnx(geoseg.load_bundle(name)))
        quant_pre_process(str(d / "f.onnx"), str(d / "p.onnx"))

        class Reader(CalibrationDataReader):
            def __init__(self, chips: list[np.ndarray]) -> None:
                self.it = iter(chips[:32])

            def get_next(self):  # type: ignore[no-untyped-def]
                x = next(self.it, None)
                return None if x is None else {"x": x}

        for method in (CalibrationMethod.MinMax, CalibrationMethod.Percentile):
            quantize_static(
                str(d / "p.onnx"),
                str(d / "q.onnx"),
                Reader(calib),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
            )
            fp = ort.InferenceSession(str(d / "f.onnx"), session_options(1))
            q8 = ort.InferenceSession(str(d / "q.onnx"), session_options(1))
            tf = tq = 0.0
            same = total = 0
            for x in test:
                t = time.perf_counter()
                a = fp.run(None, {"x": x})[0]
                tf += time.perf_counter() - t
                t = time.perf_counter()
                b = q8.run(None, {"x": x})[0]
                tq += time.perf_counter() - t
                same += int((a.argmax(1) == b.argmax(1)).sum())
                total += a.shape[0] * a.shape[2] * a.shape[3]
            print(
                json.dumps(
                    {
                        "bundle": name,
                        "calibration": method.name,
                        "calibration_chips": min(32, len(calib)),
                        "test_chips": len(test),
                        "speedup_int8_over_fp32": round(tf / tq, 2),
                        "pixel_agreement": round(same / total, 5),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    os.environ.setdefault("GEOSEG_CACHE_DIR", str(HERE / "_work" / "cache"))
    main()
