"""ExecuTorch: a ``.pte`` program, ``torch.export`` → ``to_edge_transform_and_lower`` → ``to_executorch``.

- **Delegates** (``--delegate``): ``xnnpack`` (default: the CPU path of every Android and iOS phone, and of
  this host, so parity is measured here), ``coreml`` (iOS; coremltools converts anywhere, the program runs
  only where the runtime has the CoreML backend), ``qnn`` (Qualcomm; needs ExecuTorch built with the QNN
  SDK) and ``mediatek`` (NeuroPilot; needs ``mtk_converter``). A program whose delegate this host's
  ExecuTorch runtime lacks is written with parity "not measured" (❎ in the summary table) and the reason.
- **fp32** lowers the float graph; **int8** is PT2E post-training quantization (``prepare_pt2e`` /
  ``convert_pt2e``) with the XNNPACK quantizer (symmetric int8, per-channel weights, per-tensor
  activations), calibrated on the same images as the ONNX/OpenVINO int8 (:mod:`pocketgan.export.calibration`),
  then lowered; it passes the int8 PSNR gate (:mod:`pocketgan.export.parity`).
- **Rewrites** (``--option rewrites=default|all|none|NAMES``): the module rewrites of
  :mod:`pocketgan.export.rewrites` (this target's default: ``instance-norm-decomposed``, ``reflection-pad``:
  XNNPACK has neither an instance norm nor a reflect pad, so both would otherwise split the graph into
  islands run between portable kernels), plus one lowering rewrite, ``reflection-pad-kept``: keep
  ``aten.reflection_pad2d`` whole instead of letting ``to_edge`` decompose it into ~5 index ops per pad
  (one portable kernel instead of five; for a runtime that keeps the pad out of the delegate anyway).
  The sidecar records which ran (``extra.rewrites``: ``{name: count}``).
- **Coverage**: ExecuTorch's own inspector (``executorch.devtools.backend_debug.get_delegation_info``) on the
  lowered edge program: operators inside the delegate vs left to the portable kernels, the number of
  delegate islands, the fallback ops by type (sidecar ``extra.coverage``; ``getitem`` nodes, which only
  unpack a delegate's outputs, are not counted).
- **Metadata**: the pocketgan I/O spec travels inside the program as a constant method
  (:data:`~pocketgan.core.embedded.EXECUTORCH_METADATA_METHOD`, returning the JSON string map), so a bare
  ``model.pte`` translates right (:mod:`pocketgan.runtime.executorch_backend`).
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.coverage import DelegationCoverage
from pocketgan.core.embedded import EXECUTORCH_METADATA_METHOD
from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.registry import did_you_mean
from pocketgan.export.formats import merge_format_options
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata
from pocketgan.export.registry import register_exporter
from pocketgan.export.rewrites import DEFAULT as DEFAULT_REWRITES, apply_rewrites, rewrites_for

TARGET = "executorch"
#: The lowering rewrite: ``aten.reflection_pad2d`` kept whole through ``to_edge`` (not a module swap).
KEEP_REFLECTION_PAD = "reflection-pad-kept"
#: ``--option`` keys of ``--format executorch`` and their defaults.
OPTION_DEFAULTS: dict[str, object] = {"rewrites": DEFAULT_REWRITES}
#: How the inspector names a kept reflection pad.
REFLECTION_PAD_OP = "aten_reflection_pad2d_default"
#: Nodes the inspector lists that are no operators: a delegate's outputs unpacked.
NOT_OPERATORS = frozenset({"getitem"})


@dataclass(frozen=True)
class Delegate:
    """A backend ExecuTorch lowers to: its partitioner, the runtime backend that runs it, and what it needs."""

    name: str
    label: str  # as the coverage record names it
    runtime_backend: str  # ExecuTorch's runtime name (``Runtime.backend_registry``)
    needs: str  # what to install when the partitioner cannot be built


DELEGATES = {
    d.name: d
    for d in (
        Delegate("xnnpack", "XNNPACK", "XnnpackBackend", "pip install 'pocketgan[executorch]'"),
        Delegate("coreml", "CoreML", "CoreMLBackend", "pip install coremltools (the CoreML delegate's converter)"),
        Delegate("qnn", "QNN", "QnnBackend", "ExecuTorch built with the Qualcomm AI Engine Direct SDK "
                 "(QNN_SDK_ROOT; see ExecuTorch's Qualcomm backend docs)"),
        Delegate("mediatek", "MediaTek", "NeuropilotBackend", "MediaTek's NeuroPilot Express SDK (mtk_converter, "
                 "mtk_neuron wheels; see ExecuTorch's MediaTek backend docs)"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class ExecuTorchSettings:
    """``--delegate`` and the ``--option`` values of ``--format executorch``: the module ``rewrites`` to run and
    whether ``aten.reflection_pad2d`` is kept whole (``keep_reflection_pad``)."""

    delegate: Delegate
    rewrites: tuple[str, ...] = ()
    keep_reflection_pad: bool = False

    @classmethod
    def from_job(cls, job: ExportJob) -> ExecuTorchSettings:
        """Checked settings of ``job`` (one-line errors)."""
        values = merge_format_options(TARGET, job.options.format_options, OPTION_DEFAULTS)
        name = job.options.delegate
        if name not in DELEGATES:
            raise PocketganError(f"--delegate must be one of {', '.join(DELEGATES)}; got {name!r}{did_you_mean(name, list(DELEGATES))}")
        if job.options.precision == "int8" and name != "xnnpack":
            raise PocketganError(f"--precision int8 is quantized for XNNPACK; --delegate {name} exports fp32 only")
        value = values.get("rewrites", DEFAULT_REWRITES)
        rewrites, keep = resolve_executorch_rewrites(value, job.options.precision)
        return cls(DELEGATES[name], tuple(rewrites), keep)


def resolve_executorch_rewrites(value: object, precision: str = "fp32") -> tuple[list[str], bool]:
    """``(module rewrites, keep reflection_pad2d whole)`` of a ``rewrites=`` value: ``default`` (this target's
    row of ``TARGET_REWRITES``), ``all`` (every module rewrite and the lowering one), ``none`` or names
    (module rewrites and/or :data:`KEEP_REFLECTION_PAD`)."""
    if value in (DEFAULT_REWRITES, "none", "all", None):
        return rewrites_for(TARGET, value, precision), value == "all"
    names = list(value) if isinstance(value, (list, tuple)) else [p.strip() for p in str(value).split(",") if p.strip()]
    modules = [str(n) for n in names if n != KEEP_REFLECTION_PAD]
    return (rewrites_for(TARGET, modules) if modules else []), KEEP_REFLECTION_PAD in names


@register_exporter(TARGET)
def build_executorch(job: ExportJob, dest: Path) -> BuiltArtifact:
    """A ``.pte`` lowered to ``--delegate`` (fp32, or int8 by PT2E for XNNPACK); parity with ExecuTorch's runtime."""
    require("executorch", "executorch", "ExecuTorch export")
    settings = ExecuTorchSettings.from_job(job)
    model, rewrites = apply_rewrites(job.model, settings.rewrites)
    model = model.eval()
    example = job.example_inputs()
    extra: dict[str, Any] = {"delegate": settings.delegate.name}
    with quiet_executorch():
        if job.options.precision == "int8":
            model, extra["int8"] = quantize_pt2e(model, example, job)
        job.progress.step("torch.export")
        with reraise_as_user_error("torch.export failed"), torch.no_grad():
            program = torch.export.export(model, example)
        job.progress.step(f"lowering to {settings.delegate.label}")
        edge = lower(program, settings, json.dumps(artifact_metadata(job).to_props(), sort_keys=True))
        coverage = delegation_coverage(edge, settings.delegate.label)
        if settings.keep_reflection_pad:
            rewrites[KEEP_REFLECTION_PAD] = coverage.by_op.get(REFLECTION_PAD_OP, 0)
        with reraise_as_user_error("writing the ExecuTorch program failed"):
            dest.write_bytes(edge.to_executorch().buffer)
    run, reason = executorch_runner(dest, settings.delegate)
    import executorch.version as et_version  # the wheel's version module

    exporter = f"torch {torch.__version__} torch.export + executorch {et_version.__version__} {settings.delegate.label}"
    return BuiltArtifact(dest, exporter, run, not_run_reason=reason, extra=extra,
                         rewrites={k: v for k, v in rewrites.items() if v}, coverage=coverage)  # fmt: skip


def lower(program: Any, settings: ExecuTorchSettings, metadata: str) -> Any:
    """``to_edge_transform_and_lower`` with the delegate's partitioner and the metadata as a constant method."""
    from executorch.exir import to_edge_transform_and_lower

    partitioner = make_partitioner(settings.delegate, keep_reflection_pad=settings.keep_reflection_pad)
    with reraise_as_user_error(f"lowering to {settings.delegate.label} failed"):
        return to_edge_transform_and_lower(program, partitioner=[partitioner],
                                           constant_methods={EXECUTORCH_METADATA_METHOD: metadata})  # fmt: skip


def make_partitioner(delegate: Delegate, *, keep_reflection_pad: bool = False) -> Any:
    """The partitioner of ``delegate``; a one-line error naming what to install when it cannot be built here."""
    try:
        if delegate.name == "xnnpack":
            return _xnnpack_partitioner(keep_reflection_pad)
        if delegate.name == "coreml":
            from executorch.backends.apple.coreml.partition import CoreMLPartitioner

            return CoreMLPartitioner()
        if delegate.name == "qnn":
            return _qnn_partitioner()
        from executorch.backends.mediatek import NeuropilotPartitioner

        return NeuropilotPartitioner(compile_spec=[])
    except ImportError as exc:
        raise PocketganError(f"--delegate {delegate.name} needs {delegate.needs} ({exc})") from None


def _xnnpack_partitioner(keep_reflection_pad: bool) -> Any:
    """XNNPACK's partitioner; with ``keep_reflection_pad`` it also asks ``to_edge`` not to decompose
    ``aten.reflection_pad2d`` (it stays out of the delegate, as one portable kernel)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    if not keep_reflection_pad:
        return XnnpackPartitioner()
    keep = torch.ops.aten.reflection_pad2d.default

    class KeepReflectionPad(XnnpackPartitioner):  # type: ignore[misc, valid-type]
        def ops_to_not_decompose(self, ep: Any) -> tuple[list[Any], Callable[[Any], bool]]:
            ops, check = super().ops_to_not_decompose(ep)
            return [*ops, keep], lambda node: node.target == keep or bool(check and check(node))

    return KeepReflectionPad()


def _qnn_partitioner() -> Any:
    """Qualcomm's partitioner for an HTP (fp16) target (SM8650); needs the QNN SDK (``QNN_SDK_ROOT``)."""
    import os

    if not os.environ.get("QNN_SDK_ROOT"):  # the partitioner imports without it, then fails to lower
        raise ImportError("QNN_SDK_ROOT is not set")
    from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
    from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
    from executorch.backends.qualcomm.utils.utils import (
        generate_htp_compiler_spec,
        generate_qnn_executorch_compiler_spec,
    )

    specs = generate_qnn_executorch_compiler_spec(QcomChipset.SM8650, generate_htp_compiler_spec(use_fp16=True))
    return QnnPartitioner(specs)


def quantize_pt2e(model: torch.nn.Module, example: tuple[torch.Tensor, ...], job: ExportJob) -> tuple[Any, dict[str, Any]]:
    """PT2E int8 of ``model`` with the XNNPACK quantizer (symmetric, per-channel weights), calibrated on
    ``job.calibration_inputs``; returns the quantized module and the sidecar facts."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    job.progress.step("torch.export for PT2E")
    with reraise_as_user_error("PT2E quantization failed"), torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
        inputs = job.calibration_inputs
        for i in job.progress.track(range(len(inputs[0])), "int8 calibration (PT2E)"):
            prepared(*(torch.from_numpy(a) for a in job.sample(inputs, i)))
        converted = convert_pt2e(prepared)
    facts = {
        "scheme": "PT2E post-training quantization, XNNPACKQuantizer symmetric int8 (per-channel weights, "
        "per-tensor activations)",
        "calibration": {"source": job.calibration_source, "samples": len(inputs[0])},
    }
    return converted, facts


def delegation_coverage(edge: Any, label: str) -> DelegationCoverage:
    """What ExecuTorch's inspector says of the lowered edge program: operators inside the delegate vs left
    to the portable kernels, the number of delegate islands and the fallback ops by type."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    counted = {op: row for op, row in info.delegation_by_operator.items() if op not in NOT_OPERATORS}
    by_op = {op: row.non_delegated for op, row in counted.items() if row.non_delegated}
    return DelegationCoverage(
        backend=label, delegated=sum(row.delegated for row in counted.values()), fallback=sum(by_op.values()),
        unit="ops", islands=info.num_delegated_subgraphs, by_op=by_op,
        source="executorch.devtools.backend_debug.get_delegation_info (edge program)",
    )  # fmt: skip


def executorch_runner(path: Path, delegate: Delegate) -> tuple[Runner | None, str]:
    """A function running the program at ``path`` with ExecuTorch's runtime here, or ``None`` and why not
    (this host's runtime lacks the delegate's backend)."""
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    if not runtime.backend_registry.is_available(delegate.runtime_backend):
        return None, (f"this host's ExecuTorch runtime has no {delegate.runtime_backend} (the {delegate.label} "
                      "delegate runs on its device)")  # fmt: skip
    with reraise_as_user_error("ExecuTorch cannot load the exported program"):
        program = runtime.load_program(path.read_bytes())
        method = program.load_method("forward")

    def run(*arrays: np.ndarray, _program: Any = program) -> np.ndarray:  # the method lives as long as its program
        outputs = method.execute([torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays])
        return outputs[0].numpy().copy()

    return run, ""


@contextmanager
def quiet_executorch() -> Iterator[None]:
    """Silence the exporters' chatter (torch.export / torchao / coremltools warnings and log lines); errors
    still surface as one line through :func:`~pocketgan.export.failures.reraise_as_user_error`."""
    loggers = [logging.getLogger(name) for name in ("torchao", "executorch", "coremltools", "torch._export", "root")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)

