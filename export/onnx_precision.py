"""Reduced-precision ONNX: fp16 conversion and int8 static QDQ quantization (onnxruntime's tools).

int8 follows onnxruntime's static quantization: QuantizeLinear/DequantizeLinear pairs around
every quantizable op, int8 weights per output channel, activation ranges from MinMax
calibration over sample inputs (images from ``--calibration DIR``, else the model's dataset, else
synthetic inputs: :mod:`pocketgan.export.calibration`).

Weights use the reduced 7-bit range ([-64, 64], onnxruntime's ``reduce_range``) by default:
x86 CPUs without VNNI add pairs of uint8 × int8 products in saturating int16, which full-range
weights overflow (see :mod:`pocketgan.core.hostinfo`). ``--int8-range full`` keeps 8 bits for
targets with VNNI, AMX, ARM dot product or a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.optional import require
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import ExportJob

# Norm layers' scales are 1-D (one value per channel): quantize them per channel along axis 0.
NORM_SCALE_AXES = {"InstanceNormalization": 0, "BatchNormalization": 0}


#: Ops kept in float32 under fp16: normalizations (their variance sums squares over a whole feature
#: map, which overflows or loses the mean in float16) and reductions / exponentials of the same kind.
FP16_KEEP_FP32_OPS = ("InstanceNormalization", "LayerNormalization", "GroupNormalization", "ReduceMean",
                      "ReduceSumSquare", "Pow", "Softmax", "Exp")  # fmt: skip


def to_fp16(model: Any) -> Any:
    """Convert weights and activations to float16, keeping float32 inputs and outputs and the
    precision-losing ops of :data:`FP16_KEEP_FP32_OPS` (plus onnxruntime's own block list) in float32."""
    float16 = require("onnxruntime.transformers.float16", "export", "fp16 ONNX export")
    block = [*float16.DEFAULT_OP_BLOCK_LIST, *FP16_KEEP_FP32_OPS]
    with reraise_as_user_error("fp16 conversion failed"):
        return float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)


def fp32_ops(model: Any) -> list[str]:
    """The op types of an fp16 graph that still compute in float32 (their inputs are cast back to float)."""
    kept = {node.op_type for node in model.graph.node if node.op_type in FP16_KEEP_FP32_OPS}
    return sorted(kept)


def quantize_int8(model: Any, dest: Path, job: ExportJob, *, symmetric: bool = False) -> dict[str, Any]:
    """Write ``model`` quantized to int8 (QDQ) at ``dest``, calibrated on ``job.calibration``.

    ``symmetric`` uses int8 activations with zero point 0 (TensorRT's requirement) instead of
    uint8 ones. Returns the facts for the sidecar.
    """
    onnx = require("onnx", "export", "ONNX export")
    quantization = require("onnxruntime.quantization", "export", "int8 ONNX export")
    from onnxruntime.quantization.shape_inference import quant_pre_process
    feeds = job.feeds(job.calibration_inputs)
    source = job.calibration_source  # set by calibration_inputs (pocketgan.export.calibration)
    reduced = job.options.int8_range == "reduced"
    activations = quantization.QuantType.QInt8 if symmetric else quantization.QuantType.QUInt8
    reader = _calibration_reader(quantization.CalibrationDataReader, feeds, job)
    fp32, prepared = job.scratch / "quant-input.onnx", job.scratch / "quant-prepared.onnx"
    onnx.save_model(model, str(fp32))
    with reraise_as_user_error("int8 quantization failed"):
        job.progress.step("preparing for quantization")
        quant_pre_process(fp32, prepared, skip_symbolic_shape=True)  # shape inference + graph fusions
        quantization.quantize_static(
            prepared, dest, reader, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            reduce_range=reduced, activation_type=activations, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                           "QDQOpTypePerChannelSupportToAxis": NORM_SCALE_AXES},
            nodes_to_exclude=scalar_bias_nodes(onnx.load(str(prepared))),
        )  # fmt: skip
    weights = "7-bit int8 weights [-64, 64]" if reduced else "8-bit int8 weights [-127, 127]"
    return {
        "scheme": f"static QDQ; {weights} per channel (symmetric); "
        f"{'int8 symmetric' if symmetric else 'uint8 asymmetric'} activations; MinMax calibration",
        "int8_range": job.options.int8_range,
        "calibration": {"source": source, "samples": len(feeds)},
    }


def scalar_bias_nodes(model: Any) -> list[str]:
    """Gemm/Conv nodes whose bias is a scalar initializer (StyleGAN2's demodulation, ``linear(s², ΣW²) + eps``):
    onnxruntime cannot quantize a scalar bias per channel, so they stay float (they are a tiny part of the work)."""
    scalars = {t.name for t in model.graph.initializer if len(t.dims) == 0}
    return [node.name for node in model.graph.node
            if node.op_type in ("Gemm", "Conv") and len(node.input) > 2 and node.input[2] in scalars]  # fmt: skip


def _calibration_reader(base: type, feeds: list[dict[str, np.ndarray]], job: ExportJob) -> Any:
    """An onnxruntime ``CalibrationDataReader`` feeding one sample at a time, advancing the progress bar."""
    batches = job.progress.track(feeds, "int8 calibration")

    class Reader(base):  # type: ignore[misc, valid-type]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    return Reader()

