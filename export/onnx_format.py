"""ONNX: the TorchScript-based exporter, onnxslim, one self-contained file; checked with onnxruntime.

The legacy exporter (``torch.onnx.export(..., dynamo=False)``) gives a clean opset-17 graph
with the weights embedded; the dynamo exporter (torch's default) writes opset 18+ and an
external ``.onnx.data`` file. fp16 and int8 variants are derived from the simplified fp32 graph
(:mod:`pocketgan.export.onnx_precision`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.export.failures import first_line, reraise_as_user_error
from pocketgan.export.job import OUTPUT_NAME, BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata, embed_in_onnx
from pocketgan.export.onnx_precision import fp32_ops, quantize_int8, to_fp16
from pocketgan.export.registry import register_exporter

MAX_SINGLE_FILE_BYTES = 2**31 - 1  # protobuf's limit for a model with embedded weights


@register_exporter("onnx")
def build_onnx(job: ExportJob, dest: Path) -> BuiltArtifact:
    """ONNX (one file, weights embedded), fp32/fp16/int8, parity measured with onnxruntime on CPU."""
    exporter, extra = write_onnx(job, dest)
    # int8: also run the graph unfused (Dequantize → float op → Quantize), the math the QDQ graph
    # specifies, so that a host whose fused int8 kernels disagree with it shows up at export time.
    reference = onnxruntime_runner(dest, reference_math=True) if job.options.precision == "int8" else None
    return BuiltArtifact(dest, exporter, onnxruntime_runner(dest), opset=onnx_opset(dest), extra=extra,
                         reference_run=reference)  # fmt: skip


def write_onnx(
    job: ExportJob, dest: Path, precision: str | None = None, *, symmetric_int8: bool = False
) -> tuple[str, dict[str, Any]]:
    """Write ``job``'s model to ``dest`` as simplified single-file ONNX at ``precision``
    (default ``job.options.precision``).

    Returns the exporter description and facts for the sidecar's ``extra``. ``symmetric_int8``
    quantizes activations symmetrically to int8 (what TensorRT's explicit quantization needs).
    """
    onnxslim = require("onnxslim", "export", "ONNX export")
    traced = trace_to_onnx(job)
    job.progress.step("simplifying with onnxslim")
    model, extra = simplify(traced)
    exporter = f"torch {torch.__version__} torch.onnx.export(dynamo=False) + onnxslim {onnxslim.__version__}"
    precision = precision or job.options.precision
    if precision == "fp16":
        job.progress.step("converting to fp16")
        model = to_fp16(model)
        exporter += " + onnxruntime.transformers.float16 (keep_io_types)"
        kept = fp32_ops(model)
        extra["fp16"] = ("weights and activations float16; inputs and outputs stay float32"
                         + (f"; kept in float32: {', '.join(kept)}" if kept else ""))  # fmt: skip
    if precision == "int8":
        extra["int8"] = quantize_int8(model, dest, job, symmetric=symmetric_int8)
        exporter += " + onnxruntime.quantization.quantize_static (QDQ)"
    else:
        save_single_file(model, dest)
    embed_in_onnx(dest, artifact_metadata(job, precision))  # the I/O spec travels inside the file
    return exporter, extra


def trace_to_onnx(job: ExportJob) -> Any:
    """Export the model with the TorchScript-based exporter and return the ``onnx.ModelProto``."""
    onnx = require("onnx", "export", "ONNX export")
    job.progress.step(f"exporting to ONNX (opset {job.options.opset})")
    path = job.scratch / "traced.onnx"
    with reraise_as_user_error(f"ONNX export failed at opset {job.options.opset}"), warnings.catch_warnings(), \
            torch.no_grad():  # fmt: skip
        warnings.simplefilter("ignore")  # the exporter's notes on InstanceNorm and shape inference
        torch.onnx.export(
            job.model, job.example_inputs(), str(path), dynamo=False, opset_version=job.options.opset,
            input_names=job.input_names(), output_names=[OUTPUT_NAME], dynamic_axes=job.dynamic_axes(),
            do_constant_folding=True,
        )  # fmt: skip
    return onnx.load(str(path))


def simplify(model: Any) -> tuple[Any, dict[str, Any]]:
    """Simplify with onnxslim (constant folding, dead code, shape inference) and validate the graph.

    If onnxslim itself fails, the traced graph is kept and the reason recorded.
    """
    onnx = require("onnx", "export", "ONNX export")
    onnxslim = require("onnxslim", "export", "ONNX export")
    before = len(model.graph.node)
    extra: dict[str, Any] = {}
    try:
        model = onnxslim.slim(model)
    except Exception as exc:  # keep the exporter's graph: parity still guards correctness
        extra["onnxslim"] = f"skipped: {first_line(exc)}"
    with reraise_as_user_error("the exported ONNX graph is invalid"):
        onnx.checker.check_model(model)
    extra["onnx_nodes"] = {"exported": before, "simplified": len(model.graph.node)}
    extra["onnx_ops"] = sorted({node.op_type for node in model.graph.node})
    return model, extra


def save_single_file(model: Any, dest: Path) -> None:
    """Save ``model`` as one file with its weights embedded (no external ``.onnx.data``)."""
    onnx = require("onnx", "export", "ONNX export")
    if model.ByteSize() > MAX_SINGLE_FILE_BYTES:
        raise PocketganError("the model is over 2 GB, too large for a single-file ONNX")
    onnx.save_model(model, str(dest), save_as_external_data=False)


def onnx_opset(path: Path) -> int:
    """The default-domain opset a saved ONNX file declares."""
    onnx = require("onnx", "export", "ONNX export")
    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def onnxruntime_runner(path: Path, *, reference_math: bool = False) -> Runner:
    """A function running the ONNX file at ``path`` with onnxruntime's CPU provider.

    By default with onnxruntime's graph optimizations, as a deployment runs it (for a QDQ graph:
    the host's fused int8 kernels); ``reference_math`` disables them all, so every QuantizeLinear,
    DequantizeLinear and float op runs as written (the fake-quant math, the same on every CPU).
    """
    ort = require("onnxruntime", "export", "checking ONNX parity")
    options = ort.SessionOptions()
    if reference_math:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with reraise_as_user_error("onnxruntime cannot load the exported model"):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    names = [arg.name for arg in session.get_inputs()]

    def run(*arrays: np.ndarray) -> np.ndarray:  # one array per input, in the session's order
        feed = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in zip(names, arrays, strict=True)}
        return session.run([OUTPUT_NAME], feed)[0]

    return run
