"""Export a torch bundle to ONNX, and wrap the result back into a bundle."""

from __future__ import annotations

import io
import os
from pathlib import Path

from geoseg.atomic import atomic_path
from geoseg.errors import BundleError, silenced
from geoseg.models.bundle import ModelBundle


def onnx_bytes(bundle: ModelBundle, *, opset: int = 17) -> bytes:
    """The bundle's model as ONNX bytes; input ``x`` (n, bands, rows, cols), output logits."""
    import torch

    model = bundle.build_model()
    dummy = torch.zeros(1, len(bundle.bands), bundle.chip, bundle.chip)
    buf = io.BytesIO()
    axes = {0: "n", 2: "rows", 3: "cols"}
    try:
        # the TorchScript exporter warns about its own deprecation; it is the one
        # that needs no onnxscript, so use it knowingly
        with silenced():
            torch.onnx.export(
                model,
                (dummy,),
                buf,  # type: ignore[arg-type]  # file objects work too
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": axes, "logits": axes},
                opset_version=opset,
                dynamo=False,
            )
    except Exception as err:  # exporter failures come in many types
        raise BundleError(f"cannot export bundle '{bundle.name}' to ONNX: {err}") from err
    return buf.getvalue()


def export_onnx(bundle: ModelBundle, out: str | os.PathLike[str], *, opset: int = 17) -> Path:
    """Write the bundle's model to an ONNX file atomically (its folder is made if missing).

    Raises
    ------
    BundleError
        The model cannot be exported.
    OutputError
        The file cannot be written.
    """
    from geoseg.io.writer import output_error
    from geoseg.outfile import make_parent

    path = Path(out)
    data = onnx_bytes(bundle, opset=opset)
    make_parent(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as err:
        raise output_error(path, err) from err
    return path
