"""CoreML: an ML Program (``model.mlpackage``) converted by coremltools from a TorchScript trace.

Conversion runs anywhere; prediction needs macOS, so elsewhere the sidecar records that parity
was not measured. Parity runs on the CPU compute unit (the Neural Engine computes in fp16).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.optional import require
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import INPUT_NAME, OUTPUT_NAME, BuiltArtifact, ExportJob, Runner
from pocketgan.export.registry import register_exporter

MINIMUM_TARGET = "iOS15"  # the first target with ML Programs


@register_exporter("coreml", artifact="model.mlpackage", precisions=("fp32", "fp16"))
def build_coreml(job: ExportJob, dest: Path) -> BuiltArtifact:
    """CoreML ML Program (.mlpackage) via coremltools, fp32 or fp16 compute; parity on macOS only."""
    ct = import_coremltools()
    job.progress.step("tracing with TorchScript")
    with reraise_as_user_error("TorchScript tracing failed"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(job.model, job.example(), check_trace=False)  # parity is the check
    job.progress.step("converting with coremltools")
    channels = job.loaded.model.io.input_channels
    batch = ct.RangeDim(1, job.options.max_batch, default=1) if job.options.dynamic_batch else 1
    precision = ct.precision.FLOAT16 if job.options.precision == "fp16" else ct.precision.FLOAT32
    with reraise_as_user_error("CoreML conversion failed"):
        mlmodel = ct.convert(
            traced, inputs=[ct.TensorType(name=INPUT_NAME, shape=(batch, channels, *job.size))],
            outputs=[ct.TensorType(name=OUTPUT_NAME)], convert_to="mlprogram", compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, MINIMUM_TARGET),
        )  # fmt: skip
        mlmodel.save(str(dest))
    run, reason = coreml_runner(ct, dest)
    extra: dict[str, Any] = {"compute_precision": job.options.precision, "minimum_deployment_target": MINIMUM_TARGET}
    if job.options.dynamic_batch:
        extra["max_batch"] = job.options.max_batch
    exporter = f"torch {torch.__version__} torch.jit.trace + coremltools {ct.__version__} (mlprogram)"
    return BuiltArtifact(dest, exporter, run, not_run_reason=reason, extra=extra)


def import_coremltools() -> Any:
    """coremltools, without its import-time warnings (its native proxies are absent off macOS, and
    it names torch versions newer than it was tested with); the sidecar records both versions."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return require("coremltools", "coreml", "CoreML export")
    finally:
        logger.setLevel(level)


def coreml_runner(ct: Any, path: Path) -> tuple[Runner | None, str]:
    """A function predicting with the ``.mlpackage`` on the CPU, or ``None`` and why not (not macOS)."""
    if sys.platform != "darwin":
        return None, f"CoreML prediction needs macOS (this host is {sys.platform})"
    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict({INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[OUTPUT_NAME])

    return run, ""
