"""The formats table: every export target, what it takes, what it needs, and what runs it.

One row (:class:`FormatSpec`) per ``--format``: its artifact file (and the companion files written
beside it), precisions, the format-specific options it accepts, what the host needs to *build* it
and to *run* it (a package, an NVIDIA GPU, macOS), and the :mod:`pocketgan.runtime` backend that
loads it. The table drives option validation (:func:`check_options`), ``pocketgan export --help`` and
``--list-formats``, the recipe's check of ``export.format``, ``--format F,F|all``
(:func:`parse_formats`) and the bench backend. Builders register in
:data:`~pocketgan.export.registry.EXPORTERS` under the same names; a plugin exporter without a row
gets a generic one (:func:`format_spec`). This module imports neither torch nor any exporter.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import did_you_mean

if TYPE_CHECKING:
    from pocketgan.export.job import ExportOptions

#: Options only some formats take (``ExportOptions`` field → flag); every other option applies to all.
FORMAT_OPTIONS = {
    "opset": "--opset",
    "max_batch": "--max-batch",
    "calibration": "--calibration",
    "calibration_samples": "--calibration-samples",
    "int8_range": "--int8-range",
    "format_options": "--option",  # KEY=VALUE builder options (TensorRT, CoreML: see their modules)
    "delegate": "--delegate",  # ExecuTorch: the backend it lowers to (xnnpack, coreml, qnn, mediatek)
}
_ONNX_OPTIONS = ("opset", "calibration", "calibration_samples", "int8_range")
ALL = "all"


@dataclass(frozen=True)
class HostNeeds:
    """What a host must have: Python ``packages`` (import name, pocketgan extra), an NVIDIA GPU, macOS."""

    packages: tuple[tuple[str, str], ...] = ()
    gpu: bool = False
    macos: bool = False

    def unmet(self) -> str:
        """Why this host falls short (``"needs macOS (this host is linux)"``), or ``""`` when it has everything."""
        if self.macos and sys.platform != "darwin":
            return f"needs macOS (this host is {sys.platform})"
        if self.gpu and not nvidia_gpu_present():
            return "needs an NVIDIA GPU (none found)"
        for module, extra in self.packages:
            if importlib.util.find_spec(module) is None:
                return f"needs {module}: pip install 'pocketgan[{extra}]'"
        return ""

    def describe(self) -> str:
        """``"openvino, nncf"``, ``"macOS + coremltools"``, ``"NVIDIA GPU + tensorrt"``."""
        host = [name for flag, name in ((self.gpu, "NVIDIA GPU"), (self.macos, "macOS")) if flag]
        packages = ", ".join(module for module, _ in self.packages)
        return " + ".join(part for part in (" + ".join(host), packages) if part) or "-"


@dataclass(frozen=True)
class FormatSpec:
    """One row of the formats table (see the module docstring)."""

    name: str
    artifact: str
    precisions: tuple[str, ...]
    options: tuple[str, ...]
    build: HostNeeds
    run: HostNeeds
    backend: str | None
    description: str
    companions: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """The artifact's suffix (``.onnx``, ``.xml``, ``.mlpackage``)."""
        return Path(self.artifact).suffix

    def flags(self) -> list[str]:
        """The format-specific flags this format accepts."""
        return [FORMAT_OPTIONS[option] for option in self.options]

    def cannot_run_here(self) -> str:
        """Why an artifact of this format cannot be checked on this host, or ``""``."""
        if self.backend is None and not self.run.macos and not self.run.gpu:
            return "no runtime backend for it yet"
        return self.run.unmet()


_EXPORT = (("onnx", "export"), ("onnxslim", "export"), ("onnxruntime", "export"))
_ORT = (("onnxruntime", "runtime"),)
_OPENVINO = (("openvino", "openvino"),)

#: The built-in rows, in the order they are listed.
FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec("onnx", "model.onnx", ("fp32", "fp16", "int8"), _ONNX_OPTIONS, HostNeeds(_EXPORT), HostNeeds(_ORT),
                   "ort", "ONNX, one file; fp16 keeps I/O and InstanceNorm fp32; int8 portable QDQ"),
        FormatSpec("ort", "model.ort", ("fp32", "fp16", "int8"), _ONNX_OPTIONS, HostNeeds(_EXPORT), HostNeeds(_ORT),
                   "ort", "ONNX Runtime mobile format + its required-operators config",
                   companions=("model.required_operators.config",)),
        FormatSpec("openvino", "model.xml", ("fp32", "fp16", "int8"), _ONNX_OPTIONS,
                   HostNeeds(_EXPORT + _OPENVINO + (("nncf", "openvino"),)), HostNeeds(_OPENVINO), "openvino",
                   "OpenVINO IR (.xml + .bin); fp16-compressed weights; int8 by NNCF", companions=("model.bin",)),
        FormatSpec("coreml", "model.mlpackage", ("fp32", "fp16"), ("max_batch", "format_options"), HostNeeds((("coremltools", "coreml"),)),
                   HostNeeds((("coremltools", "coreml"),), macos=True), None,
                   "CoreML ML Program (.mlpackage); spec, ops and ANE fallbacks validated on any host"),
        FormatSpec("tensorrt", "model.engine", ("fp32", "fp16", "int8"), ("opset", "max_batch", "calibration",
                   "calibration_samples", "format_options"), HostNeeds(_EXPORT + (("tensorrt", "tensorrt"),), gpu=True),
                   HostNeeds((("tensorrt", "tensorrt"), ("cuda", "tensorrt")), gpu=True), None,
                   "TensorRT engine, built on the target GPU (--check-only: readiness + trtexec line, any host)"),
        # executorch row (H10-executorch)
        FormatSpec("executorch", "model.pte", ("fp32", "int8"), ("calibration", "calibration_samples", "delegate",
                   "format_options"), HostNeeds((("executorch", "executorch"),)), HostNeeds((("executorch", "executorch"),)),
                   "executorch", "ExecuTorch program (.pte) lowered to XNNPACK (--delegate coreml|qnn|mediatek); int8 by PT2E"),
        # tflite row (H10-litert)
        FormatSpec("tflite", "model.tflite", ("fp32", "fp16", "int8"), ("calibration", "calibration_samples",
                   "format_options"), HostNeeds((("litert_torch", "litert"), ("ai_edge_litert", "litert"))),
                   HostNeeds((("ai_edge_litert", "litert"),)), "tflite",
                   "LiteRT flatbuffer (litert-torch), XNNPACK; fp16 weights; int8 by PT2E; --option layout=nhwc"),
        # ncnn row (H10-ncnn)
        FormatSpec("ncnn", "model.ncnn.param", ("fp32", "fp16"), ("format_options",), HostNeeds((("pnnx", "ncnn"),)),
                   HostNeeds((("ncnn", "ncnn"),)), "ncnn",
                   "ncnn .param + .bin by pnnx; fp16 weights + storage; every layer native (I/O spec in the sidecar)",
                   companions=("model.ncnn.bin",)),
    )
}  # fmt: skip


def merge_format_options(fmt: str, values: Mapping[str, object] | None, defaults: Mapping[str, object]) -> dict[str, object]:
    """``--option`` values of ``--format fmt`` over its ``defaults``; an unknown key is a one-line error."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise PocketganError(f"--format {fmt} has no option {unknown[0]!r}{did_you_mean(unknown[0], list(defaults))}; "
                             f"options: {', '.join(defaults)}")  # fmt: skip
    return {**defaults, **values}


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA driver exposes a device here (``/dev/nvidia0`` or a Jetson's ``/dev/nvhost-gpu``)."""
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvhost-gpu", "/proc/driver/nvidia/gpus"))


def format_spec(name: str) -> FormatSpec:
    """The row of format ``name``; a plugin exporter without one gets a generic row (needs unknown)."""
    if name in FORMATS:
        return FORMATS[name]
    from pocketgan.export.registry import get_exporter

    exporter = get_exporter(name)  # one-line error with "did you mean" for an unknown name
    return FormatSpec(exporter.name, exporter.artifact, exporter.precisions, tuple(FORMAT_OPTIONS), HostNeeds(),
                      HostNeeds(), None, "plugin exporter")  # fmt: skip


def format_names() -> list[str]:
    """Every format: the table's rows in order, then plugin exporters."""
    from pocketgan.export.registry import list_exporters

    return list(FORMATS) + [name for name in list_exporters() if name not in FORMATS]


def parse_formats(text: str) -> list[str]:
    """``"onnx"``, ``"onnx,openvino"`` or ``"all"`` → format names (each checked, duplicates dropped)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise PocketganError("--format needs a format name, a comma-separated list, or all")
    if ALL in names:
        return format_names()
    known = format_names() if any(n not in FORMATS for n in names) else list(FORMATS)
    for name in names:
        if name not in known:
            raise PocketganError(f"unknown export format {name!r}{did_you_mean(name, known)}; choose from "
                                 f"{', '.join(known)} or all")  # fmt: skip
    return list(dict.fromkeys(names))


def check_options(spec: FormatSpec, options: ExportOptions) -> None:
    """One-line error when ``options`` set a format-specific option ``spec`` does not take, or a precision it lacks."""
    if options.precision not in spec.precisions:
        raise PocketganError(
            f"--format {spec.name} supports --precision {', '.join(spec.precisions)}, not {options.precision}"
        )
    defaults = type(options)()
    for f in fields(options):
        if f.name in FORMAT_OPTIONS and f.name not in spec.options:
            if getattr(options, f.name) != getattr(defaults, f.name):
                takes = ", ".join(spec.flags()) or "no format-specific options"
                raise PocketganError(f"--format {spec.name} does not take {FORMAT_OPTIONS[f.name]} (it takes {takes})")


def check_format_options(specs: Sequence[FormatSpec], options: ExportOptions) -> None:
    """One-line error when ``--option`` is given but none of ``specs`` (the formats exported together) takes it."""
    if options.format_options and not any("format_options" in spec.options for spec in specs):
        takers = [spec.name for spec in FORMATS.values() if "format_options" in spec.options]
        raise PocketganError(f"--option is a builder option of {', '.join(takers)}; none of the formats "
                             f"{', '.join(spec.name for spec in specs)} takes it")  # fmt: skip


def options_for(spec: FormatSpec, options: ExportOptions) -> ExportOptions:
    """``options`` for ``spec`` when several formats are exported together: ``--option`` goes only to the
    formats that take it (see :func:`check_format_options`)."""
    if options.format_options and "format_options" not in spec.options:
        return replace(options, format_options={})
    return options


def help_text() -> str:
    """The ``--format`` help: every row with its precisions, and ``all``."""
    rows = "; ".join(f"{s.name} ({'/'.join(s.precisions)})" for s in FORMATS.values())
    return f"Format, comma-separated formats, or all: {rows}. See --list-formats."


def runnable_formats() -> list[str]:
    """Formats a :mod:`pocketgan.runtime` backend loads (what ``pocketgan run`` can bench)."""
    return [name for name, spec in FORMATS.items() if spec.backend is not None]
