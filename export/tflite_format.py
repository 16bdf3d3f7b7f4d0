"""LiteRT (TFLite): a flatbuffer (``model.tflite``) converted by litert-torch, checked with ai-edge-litert + XNNPACK.

Needs ``pip install 'pocketgan[litert]'`` (litert-torch and ai-edge-litert; it conflicts with executorch in one
venv: see the README's "Phones"). Before tracing, the graph rewrites of :mod:`pocketgan.export.rewrites` for
``tflite`` run (``--option rewrites=default|all|none|NAME,...``): ``conv-transpose-crop`` is required, since
litert-torch cannot legalize a ``ConvTranspose2d`` with ``output_padding`` (it fails with one line naming the
rewrite), and ``reflection-pad`` keeps XNNPACK from splitting the graph at every ``MIRROR_PAD`` (which it does not
take). The sidecar records which ran.

- **fp32**: ``litert_torch.convert`` of the rewritten generator.
- **fp16**: the fp32 flatbuffer with fp16 weights (ai-edge-quantizer's ``float_casting``, weight-only: a
  ``DEQUANTIZE`` feeds each convolution). XNNPACK on x86 folds them into fp32 weights; a GPU delegate (or an
  ARMv8.2 CPU) can compute in fp16.
- **int8**: PT2E static quantization with litert-torch's ``PT2EQuantizer`` (symmetric per-channel int8 weights,
  per-tensor int8 activations), calibrated on the model's images (:mod:`pocketgan.export.calibration`), then
  converted with its ``QuantConfig``. The converter makes the input int8 (the backends quantize with its scale
  and zero point); the output stays float. The default rewrites keep InstanceNorm whole for int8
  (:data:`~pocketgan.export.rewrites.FLOAT_ONLY_REWRITES`).

``--option layout=nhwc`` wraps the generator with ``litert_torch.to_channel_last_io``, so the flatbuffer takes
and returns NHWC tensors (what an Android camera pipeline hands over); the default keeps PyTorch's NCHW. The
layout and the pocketgan metadata (:mod:`pocketgan.core.embedded`) are written into the flatbuffer's
``metadata`` table (:func:`embed_in_tflite`), so a bare ``.tflite`` translates correctly. Parity runs the file
with LiteRT's interpreter and the XNNPACK delegate, whose coverage (operators it took, islands, the rest by
op type: :mod:`pocketgan.core.litert`) is recorded in the sidecar under ``coverage``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pocketgan.core.coverage import DelegationCoverage
from pocketgan.core.embedded import EmbeddedMetadata
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.litert import LAYOUT_KEY, LAYOUTS, delegation_coverage, from_interpreter, quiet_fd, to_interpreter
from pocketgan.core.optional import require
from pocketgan.export.formats import merge_format_options
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata
from pocketgan.export.registry import register_exporter
from pocketgan.export.rewrites import DEFAULT, rewrite_for_target, rewrites_for

TARGET = "tflite"
#: ``--option`` keys of ``--format tflite`` and their defaults.
OPTION_DEFAULTS: dict[str, object] = {"layout": "nchw", "rewrites": DEFAULT}
#: The rewrite without which litert-torch cannot convert an output-padded transposed convolution.
REQUIRED_REWRITE = "conv-transpose-crop"
#: What litert-torch's MLIR legalization says about an output-padded ``ConvTranspose2d``.
DECONV_FAILURE = "failed to legalize operation 'mhlo.convolution'"
#: What quantized the weights, per precision (the sidecar's exporter line).
QUANTIZERS = {"fp16": " + ai-edge-quantizer float_casting", "int8": " + PT2E (litert-torch PT2EQuantizer)"}


@dataclass(frozen=True)
class TFLiteSettings:
    """``--option`` values of ``--format tflite``: ``layout`` (``nchw``/``nhwc`` input and output) and ``rewrites``
    (``default``, ``all``, ``none`` or names: :mod:`pocketgan.export.rewrites`)."""

    layout: str = "nchw"
    rewrites: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, values: dict[str, object] | None, precision: str = "fp32") -> TFLiteSettings:
        """Checked settings from the ``--option`` dict (one-line errors); the default rewrites of ``precision``."""
        merged = merge_format_options(TARGET, values, OPTION_DEFAULTS)
        layout = str(merged["layout"]).lower()
        if layout not in LAYOUTS:
            raise PocketganError(f"tflite layout must be {' or '.join(LAYOUTS)}; got {merged['layout']!r}")
        return cls(layout, tuple(rewrites_for(TARGET, merged["rewrites"], precision)))


@register_exporter(TARGET)
def build_tflite(job: ExportJob, dest: Path) -> BuiltArtifact:
    """LiteRT flatbuffer fp32 / fp16 weights / PT2E int8 via litert-torch; parity and coverage with XNNPACK."""
    settings = TFLiteSettings.from_options(job.options.format_options, job.options.precision)
    with quiet_fd(2):  # importing litert-torch (torchao, TensorFlow's absl) prints native lines on stderr
        litert_torch = require("litert_torch", "litert", "LiteRT (TFLite) export")
    require("ai_edge_litert", "litert", "running LiteRT models")
    if job.latent:
        raise PocketganError("--format tflite exports image-to-image generators; a latent one is not supported yet")
    model, rewrites = rewrite_for_target(job.model, TARGET, settings.rewrites)
    model = in_layout(litert_torch, model.eval(), settings.layout)
    example = to_layout(job.example(), settings.layout)
    content = convert(litert_torch, model, example, job, settings)
    if job.options.precision == "fp16":
        content = fp16_weights(content, job)
    metadata = artifact_metadata(job)
    dest.write_bytes(embed_in_tflite(content, metadata, settings.layout))
    run, coverage, dtypes = tflite_runner(dest, settings.layout)
    extra: dict[str, Any] = {TARGET: {"layout": settings.layout, "weights": _weights(job.options.precision),
                                      "delegate": "XNNPACK", "io_shape": tflite_io_shape(job, settings.layout),
                                      "io_dtypes": dtypes}}  # fmt: skip
    if job.options.precision == "int8":
        extra["int8"] = _int8_facts(job)
    quantizer = QUANTIZERS.get(job.options.precision, "")
    exporter = f"torch {torch.__version__} + litert-torch {litert_torch.__version__}{quantizer}"
    return BuiltArtifact(dest, exporter, run, extra=extra, rewrites=rewrites, coverage=coverage)


def in_layout(litert_torch: Any, model: nn.Module, layout: str) -> nn.Module:
    """``model`` taking and returning ``layout`` tensors (NHWC: litert-torch's channel-last I/O wrapper)."""
    return litert_torch.to_channel_last_io(model, args=[0], outputs=[0]).eval() if layout == "nhwc" else model


def to_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """An NCHW batch in ``layout``."""
    return x.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else x


def tflite_io_shape(job: ExportJob, layout: str) -> list[int]:
    """The flatbuffer's input (and output) shape: NCHW, or NHWC with ``--option layout=nhwc``."""
    n, c, h, w = (int(d) for d in job.example().shape)
    return [n, h, w, c] if layout == "nhwc" else [n, c, h, w]


def convert(litert_torch: Any, model: nn.Module, example: torch.Tensor, job: ExportJob,
            settings: TFLiteSettings) -> bytes:  # fmt: skip
    """The flatbuffer of ``model`` (PT2E int8-quantized first for ``--precision int8``); a legalization failure on
    an output-padded deconvolution names the rewrite that fixes it."""
    quant_config = None
    if job.options.precision == "int8":
        model, quant_config = quantize_pt2e(model, job, settings.layout)
    job.progress.step("converting with litert-torch")
    try:
        with _quiet_litert_torch(litert_torch):
            edge = litert_torch.convert(model, (example,), quant_config=quant_config)
            return bytes(edge.model_content())
    except PocketganError:
        raise
    except Exception as exc:
        message = first_line(exc)
        if DECONV_FAILURE in str(exc) and REQUIRED_REWRITE not in settings.rewrites:
            raise PocketganError(
                f"LiteRT conversion failed: litert-torch cannot convert a ConvTranspose2d with output_padding "
                f"({DECONV_FAILURE}); keep the {REQUIRED_REWRITE} rewrite (--option rewrites=default)") from None
        raise PocketganError(f"LiteRT conversion failed: {message}") from None


def quantize_pt2e(model: nn.Module, job: ExportJob, layout: str) -> tuple[nn.Module, Any]:
    """``model`` PT2E-quantized with litert-torch's quantizer, calibrated on ``job``'s images, and its
    ``QuantConfig``."""
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e import quantize_pt2e as pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))  # fmt: skip
    images = [to_layout(x[None], layout) for x in job.calibration]  # --calibration, the dataset or synthetic
    with reraise_as_user_error("PT2E int8 quantization failed"), torch.no_grad():
        prepared = pt2e.prepare_pt2e(torch.export.export(model, (images[0],)).module(), quantizer)
        for image in job.progress.track(images, "int8 calibration (PT2E)"):
            prepared(image)
        quantized = move_exported_model_to_eval(pt2e.convert_pt2e(prepared, fold_quantize=False))
        quantized.training = False  # what litert-torch checks; the graph itself was exported in eval mode
    return quantized, quant_config.QuantConfig(pt2e_quantizer=quantizer)


def fp16_weights(content: bytes, job: ExportJob) -> bytes:
    """``content`` with its convolution weights stored in fp16 (ai-edge-quantizer float casting, weight-only)."""
    quantizer = require("ai_edge_quantizer.quantizer", "litert", "LiteRT fp16 weights")
    from ai_edge_quantizer import qtyping

    job.progress.step("fp16 weights (ai-edge-quantizer)")
    with reraise_as_user_error("ai-edge-quantizer fp16 weights failed"), contextlib.redirect_stderr(io.StringIO()):
        fp16 = quantizer.Quantizer(content)
        fp16.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16, algorithm_key="float_casting")
        return bytes(fp16.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model)


def embed_in_tflite(content: bytes, metadata: EmbeddedMetadata, layout: str) -> bytes:
    """``content`` with one flatbuffer ``metadata`` entry per ``pocketgan.*`` key (and the layout) added, each
    naming a buffer that holds the JSON value; earlier ``pocketgan.*`` entries are replaced, others kept."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    props = {**metadata.to_props(), LAYOUT_KEY: json.dumps(layout)}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    model.metadata = [entry for entry in model.metadata or [] if _name(entry) not in props]
    model.buffers = model.buffers or [schema.BufferT()]
    for key, value in props.items():
        model.buffers.append(schema.BufferT(data=np.frombuffer(value.encode(), dtype=np.uint8)))
        model.metadata.append(schema.MetadataT(name=key, buffer=len(model.buffers) - 1))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode() if isinstance(name, bytes) else str(name)


def tflite_runner(
    path: Path, layout: str, threads: int | None = None
) -> tuple[Runner, DelegationCoverage, dict[str, str]]:
    """A function running the flatbuffer at ``path`` on NCHW float batches with the XNNPACK delegate (LiteRT's
    default on CPU), the delegate's coverage as the interpreter reports it, and the input and output types
    (a PT2E int8 graph takes an int8 input: the function quantizes with its scale and zero point)."""
    from ai_edge_litert.interpreter import Interpreter

    with reraise_as_user_error("LiteRT cannot load the exported model"), quiet_fd(2):
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    coverage = delegation_coverage(interpreter._get_ops_details())
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], to_interpreter(batch, source, layout))
        interpreter.invoke()
        return from_interpreter(interpreter.get_tensor(result["index"]), result, layout)

    return run, coverage, {"input": source["dtype"].__name__, "output": result["dtype"].__name__}


def _weights(precision: str) -> str:
    return {"fp32": "fp32", "fp16": "fp16 (dequantized to fp32 on CPU)", "int8": "int8 per-channel"}[precision]


def _int8_facts(job: ExportJob) -> dict[str, Any]:
    return {"scheme": "PT2E static: litert-torch PT2EQuantizer, symmetric per-channel int8 weights, per-tensor int8 "
                      "activations (histogram observer)",
            "calibration": {"source": job.calibration_source, "samples": len(job.calibration)}}  # fmt: skip


@contextlib.contextmanager
def _quiet_litert_torch(litert_torch: Any) -> Iterator[None]:
    """litert-torch without its own progress lines (ours is the step above) and without torch.export chatter."""
    shown = litert_torch.config.show_progress
    litert_torch.config.show_progress = False
    try:
        with contextlib.redirect_stdout(io.StringIO()), quiet_fd(2):
            yield
    finally:
        litert_torch.config.show_progress = shown
