"""ORT: ONNX Runtime's mobile format (``model.ort``) with the required-operators config beside it.

The ONNX export (any precision, metadata embedded) is converted by
``onnxruntime.tools.convert_onnx_models_to_ort`` with the *Fixed* optimization style (the graph
optimizations are applied once, at conversion, for the CPU execution provider). The conversion
also writes ``model.required_operators.config``: the operator list to build a reduced
onnxruntime for the phone (``build.sh --minimal_build --include_ops_by_config``). Parity loads
the ``.ort`` file itself with onnxruntime here.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from pocketgan.core.optional import require
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import BuiltArtifact, ExportJob
from pocketgan.export.onnx_format import onnx_opset, onnxruntime_runner, write_onnx
from pocketgan.export.registry import register_exporter

OPTIMIZATION_STYLE = "Fixed"
CONFIG_SUFFIX = ".required_operators.config"


@register_exporter("ort")
def build_ort(job: ExportJob, dest: Path) -> BuiltArtifact:
    """ORT mobile format (fp32/fp16/int8) and its required-operators config; parity by loading the ``.ort``."""
    ort = require("onnxruntime", "export", "ORT format conversion")
    source = job.scratch / "ort-source" / dest.with_suffix(".onnx").name
    source.parent.mkdir()
    onnx_exporter, extra = write_onnx(job, source)
    converted = convert_to_ort(source, dest.parent / "ort-converted", job)
    converted.replace(dest)
    config = dest.with_name(dest.stem + CONFIG_SUFFIX)
    (converted.parent / config.name).replace(config)
    extra["ort"] = {"optimization_style": OPTIMIZATION_STYLE, "required_operators": config.name,
                    "operators": required_operators(config)}  # fmt: skip
    reference = onnxruntime_runner(dest, reference_math=True) if job.options.precision == "int8" else None
    return BuiltArtifact(
        dest, f"{onnx_exporter} + onnxruntime {ort.__version__} convert_onnx_models_to_ort ({OPTIMIZATION_STYLE})",
        onnxruntime_runner(dest), opset=onnx_opset(source), extra=extra, reference_run=reference,
        companions=(config,),
    )  # fmt: skip


def convert_to_ort(source: Path, out_dir: Path, job: ExportJob) -> Path:
    """Convert the ONNX file ``source`` into ``out_dir`` (quietly); returns the ``.ort`` path."""
    tools = require("onnxruntime.tools.convert_onnx_models_to_ort", "export", "ORT format conversion")
    job.progress.step("converting to the ORT format")
    logger = logging.getLogger("ort_format_model.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with reraise_as_user_error("ORT format conversion failed"), contextlib.redirect_stdout(io.StringIO()):
            tools.convert_onnx_models_to_ort(
                source, output_dir=out_dir, optimization_styles=[getattr(tools.OptimizationStyle, OPTIMIZATION_STYLE)]
            )
    finally:
        logger.setLevel(level)
    return out_dir / source.with_suffix(".ort").name


def required_operators(config: Path) -> list[str]:
    """``domain;opset;Op1,Op2`` lines of the config, flattened to ``["ai.onnx:Conv", ...]``."""
    ops = []
    for line in config.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            domain, _, names = line.split(";", 2)
            ops.extend(f"{domain}:{name}" for name in names.split(",") if name)
    return sorted(ops)
