"""CoreML: an ML Program (``model.mlpackage``) converted by coremltools from a TorchScript trace.

Before tracing, the graph rewrites of :mod:`pocketgan.export.rewrites` run (by default the output-padded
transposed convolutions become a full deconvolution + crop; ``--option rewrites=all`` also turns reflection
padding into slices + concat and keeps coremltools from folding it back; ``rewrites=none`` keeps the graph
as is); the sidecar records which ran. The input is a float tensor or, with
``--option input_type=image``, an image the package normalizes with the I/O spec's scale and offset;
``--option minimum_target=iOS17`` sets the deployment target (default iOS15, the first with ML Programs).
The metadata (I/O spec, MACs, provenance; author, version, description) goes into the package.

Conversion and validation run anywhere (:mod:`pocketgan.export.coreml_check` reads the saved spec:
inputs, outputs, precision, the op list, ops that may leave the Neural Engine). Prediction needs macOS,
so elsewhere the sidecar records that parity was not measured. Parity runs on the CPU compute unit
(the Neural Engine computes in fp16).
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.embedded import EmbeddedMetadata
from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.export.coreml_check import check_package
from pocketgan.export.formats import merge_format_options
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import INPUT_NAME, OUTPUT_NAME, BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata, embed_in_coreml
from pocketgan.export.registry import register_exporter
from pocketgan.export.rewrites import DEFAULT as DEFAULT_REWRITES, apply_rewrites, rewrites_for

MINIMUM_TARGET = "iOS15"  # the first target with ML Programs
TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")
INPUT_TYPES = ("tensor", "image")
#: ``--option`` keys of ``--format coreml`` and their defaults.
OPTION_DEFAULTS: dict[str, object] = {"minimum_target": MINIMUM_TARGET, "input_type": "tensor",
                                      "rewrites": DEFAULT_REWRITES}
#: coremltools' own pass folding mirrored slices + concat back into ``pad(mode="reflect")``: removed when the
#: ``reflection-pad`` rewrite is asked for, so the rewrite reaches the package (A/B it on the device).
REFLECTION_PAD_PASS = "common::use_reflection_padding"


@dataclass(frozen=True)
class CoreMLSettings:
    """``--option`` values of ``--format coreml``: ``minimum_target`` (iOS15.., macOS12..), ``input_type``
    (``tensor``: float NCHW in the model's range; ``image``: a ``CVPixelBuffer`` the package normalizes with
    the I/O spec's scale and offset) and ``rewrites`` (``default``, ``all``, ``none`` or names: :mod:`pocketgan.export.rewrites`)."""

    minimum_target: str = MINIMUM_TARGET
    input_type: str = "tensor"
    rewrites: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, values: dict[str, object] | None) -> CoreMLSettings:
        """Checked settings from the ``--option`` dict (one-line errors)."""
        merged = merge_format_options("coreml", values, OPTION_DEFAULTS)
        target, kind = str(merged["minimum_target"]), str(merged["input_type"])
        if target not in TARGETS:
            raise PocketganError(f"coreml minimum_target must be one of {', '.join(TARGETS)}; got {target!r}")
        if kind not in INPUT_TYPES:
            raise PocketganError(f"coreml input_type must be tensor or image; got {kind!r}")
        return cls(target, kind, tuple(rewrites_for("coreml", merged["rewrites"])))


@register_exporter("coreml")
def build_coreml(job: ExportJob, dest: Path) -> BuiltArtifact:
    """CoreML ML Program (.mlpackage) via coremltools, fp32 or fp16 compute; validated here, parity on macOS."""
    settings = CoreMLSettings.from_options(job.options.format_options)
    ct = import_coremltools()
    if settings.input_type == "image":
        use_pixel_samples(job)
    model, rewrites = apply_rewrites(job.model, settings.rewrites)
    job.progress.step("tracing with TorchScript")
    with reraise_as_user_error("TorchScript tracing failed"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), job.example(), check_trace=False)  # parity is the check
    job.progress.step("converting with coremltools")
    precision = ct.precision.FLOAT16 if job.options.precision == "fp16" else ct.precision.FLOAT32
    with reraise_as_user_error("CoreML conversion failed"):
        mlmodel = ct.convert(
            traced, inputs=[coreml_input(ct, job, settings)], outputs=[ct.TensorType(name=OUTPUT_NAME)],
            convert_to="mlprogram", compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, settings.minimum_target), pass_pipeline=_pipeline(ct, rewrites),
        )  # fmt: skip
        embed_in_coreml(mlmodel, artifact_metadata(job))  # user_defined_metadata: the I/O spec, MACs, provenance
        mlmodel.save(str(dest))
    job.progress.step("validating the saved package")
    report = check_package(ct, dest)
    run, reason = coreml_runner(ct, dest, settings)
    extra: dict[str, Any] = {"compute_precision": job.options.precision, "minimum_deployment_target": settings.minimum_target,
                             "input_type": settings.input_type, "coreml_check": report.to_dict()}  # fmt: skip
    if job.options.dynamic_batch:
        extra["max_batch"] = job.options.max_batch
    exporter = f"torch {torch.__version__} torch.jit.trace + coremltools {ct.__version__} (mlprogram)"
    return BuiltArtifact(dest, exporter, run, not_run_reason=reason, extra=extra, rewrites=rewrites)


def use_pixel_samples(job: ExportJob) -> None:
    """Round the parity samples to whole pixels (an image input carries uint8 pixels), so that PyTorch's
    reference and the package see the same inputs; the reference is recomputed from them."""
    io = job.io
    pixels = torch.round((job.samples - io.offset) / io.scale).clamp(0, 255)
    job.__dict__["sample_inputs"] = [pixels * io.scale + io.offset]  # ExportJob's cached properties
    job.__dict__.pop("reference", None)


def _pipeline(ct: Any, rewrites: dict[str, int]) -> Any:
    """coremltools' default passes, without the one undoing the ``reflection-pad`` rewrite when it ran."""
    pipeline = ct.PassPipeline.DEFAULT
    if "reflection-pad" in rewrites:
        pipeline.remove_passes([REFLECTION_PAD_PASS])
    return pipeline


def coreml_input(ct: Any, job: ExportJob, settings: CoreMLSettings) -> Any:
    """The converter's input: a float tensor, or an image normalized in the package by the I/O spec."""
    batch = ct.RangeDim(1, job.options.max_batch, default=1) if job.options.dynamic_batch else 1
    io = job.io
    shape = (batch, io.input_channels, *job.size)
    if settings.input_type == "tensor":
        return ct.TensorType(name=INPUT_NAME, shape=shape)
    if io.input_channels == 1:
        layout = ct.colorlayout.GRAYSCALE
    else:
        layout = ct.colorlayout.RGB if io.channel_order == "RGB" else ct.colorlayout.BGR
    return ct.ImageType(name=INPUT_NAME, shape=shape, scale=io.scale, bias=[io.offset] * io.input_channels,
                        color_layout=layout)  # fmt: skip


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


def coreml_runner(ct: Any, path: Path, settings: CoreMLSettings) -> tuple[Runner | None, str]:
    """A function predicting with the ``.mlpackage`` on the CPU, or ``None`` and why not (not macOS)."""
    if sys.platform != "darwin":
        return None, f"CoreML prediction needs macOS (this host is {sys.platform})"
    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)

    def run(batch: np.ndarray) -> np.ndarray:
        if settings.input_type == "image":  # the parity inputs are in the model's range: back to pixels
            return _predict_images(model, batch)
        return np.asarray(model.predict({INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[OUTPUT_NAME])

    return run, ""


def _predict_images(model: Any, batch: np.ndarray) -> np.ndarray:
    """Predict image inputs: each NCHW float sample mapped back to an RGB ``PIL.Image``."""
    from PIL import Image

    spec_io = EmbeddedMetadata.from_props(dict(model.user_defined_metadata), "coreml").io  # type: ignore[union-attr]
    outputs = []
    for sample in batch:
        pixels = np.clip(np.rint((sample - spec_io.offset) / spec_io.scale), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
        outputs.append(np.asarray(model.predict({INPUT_NAME: image})[OUTPUT_NAME]))
    return np.concatenate(outputs)
