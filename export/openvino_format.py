"""OpenVINO: IR (``model.xml`` + ``model.bin``) converted from the ONNX export, checked with the CPU plugin.

- **fp32**: ``ov.convert_model`` of the fp32 ONNX graph, weights saved in float32.
- **fp16**: the same graph with FP16-compressed weights (``save_model(compress_to_fp16=True)``); the
  CPU plugin decompresses them and computes in float32 (a GPU/NPU plugin computes in fp16).
- **int8**: NNCF post-training quantization of the IR, calibrated on the same inputs as the ONNX
  int8 (``--calibration DIR``, else the model's dataset, else synthetic). ``--int8-range reduced``
  (the default) turns on NNCF's overflow fix for every layer (7-bit weights, right on CPUs without
  VNNI); ``full`` keeps 8 bits where the target accumulates in int32.

The metadata travels in ``rt_info["pocketgan"]`` (:mod:`pocketgan.export.metadata`). Parity runs
the IR with the CPU plugin at float32 inference precision (the plugin's bf16 default on AMX/
AVX512-BF16 CPUs would be another numeric target).
"""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.optional import require
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata, embed_in_openvino
from pocketgan.export.onnx_format import onnx_opset, write_onnx
from pocketgan.export.registry import register_exporter

#: CPU plugin settings of the parity check (and the runtime backend's defaults).
CPU_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


@register_exporter("openvino")
def build_openvino(job: ExportJob, dest: Path) -> BuiltArtifact:
    """OpenVINO IR fp32 / fp16-compressed / NNCF int8, converted from the ONNX graph; parity on the CPU plugin."""
    ov = require("openvino", "openvino", "OpenVINO export")
    precision = job.options.precision
    source = job.scratch / "openvino-source.onnx"
    onnx_exporter, extra = write_onnx(job, source, "fp32")
    job.progress.step("converting with OpenVINO")
    with reraise_as_user_error("OpenVINO conversion failed"):
        model = ov.convert_model(str(source))
    exporter = f"{onnx_exporter} + openvino {ov.get_version()} convert_model"
    if precision == "int8":
        model, extra["int8"] = quantize_nncf(model, job)
        exporter += " + nncf.quantize"
    embed_in_openvino(model, artifact_metadata(job, precision))
    with reraise_as_user_error("saving the OpenVINO IR failed"):
        ov.save_model(model, str(dest), compress_to_fp16=precision == "fp16")
    extra["openvino"] = {"version": ov.get_version(), "weights": "fp16-compressed" if precision == "fp16" else
                         "int8" if precision == "int8" else "fp32", "parity_config": CPU_CONFIG}  # fmt: skip
    return BuiltArtifact(dest, exporter, openvino_runner(ov, dest), opset=onnx_opset(source), extra=extra,
                         companions=(dest.with_suffix(".bin"),))  # fmt: skip


def quantize_nncf(model: Any, job: ExportJob) -> tuple[Any, dict[str, Any]]:
    """NNCF post-training int8 quantization of an ``openvino.Model`` on ``job.calibration_inputs``; returns it and facts."""
    nncf = require("nncf", "openvino", "OpenVINO int8 quantization")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    reduced = job.options.int8_range == "reduced"
    overflow = OverflowFix.ENABLE if reduced else OverflowFix.DISABLE
    items = list(job.progress.track(job.feeds(job.calibration_inputs), "int8 calibration (NNCF)"))
    logging.getLogger("nncf").setLevel(logging.ERROR)
    quiet = io.StringIO()  # NNCF draws its own progress bars; ours is the calibration step above
    with reraise_as_user_error("NNCF quantization failed"), redirect_stdout(quiet), redirect_stderr(quiet):
        quantized = nncf.quantize(
            model, nncf.Dataset(items), subset_size=len(items), preset=nncf.QuantizationPreset.MIXED,
            advanced_parameters=AdvancedQuantizationParameters(overflow_fix=overflow),
        )  # fmt: skip
    facts = {
        "scheme": f"NNCF {nncf.__version__} post-training quantization (mixed preset: symmetric weights, "
        f"asymmetric activations); overflow fix {'on every layer (7-bit weights)' if reduced else 'off (8-bit)'}",
        "int8_range": job.options.int8_range,
        "calibration": {"source": job.calibration_source, "samples": len(items)},
    }
    return quantized, facts


def openvino_runner(ov: Any, path: Path, threads: int | None = None) -> Runner:
    """A function running the IR at ``path`` with the CPU plugin (float32 inference precision, latency hint)."""
    config: dict[str, Any] = dict(CPU_CONFIG)
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    with reraise_as_user_error("OpenVINO cannot load the exported model"):
        compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def run(*arrays: np.ndarray) -> np.ndarray:
        request.infer({i: np.ascontiguousarray(a, dtype=np.float32) for i, a in enumerate(arrays)})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    return run
