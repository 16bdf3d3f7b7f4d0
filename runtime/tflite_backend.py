"""The LiteRT backend (``tflite``): a ``.tflite`` flatbuffer with ai-edge-litert's interpreter and XNNPACK.

Needs ``ai-edge-litert`` (``pip install 'pocketgan[litert]'``; the runtime alone installs beside onnxruntime,
OpenVINO and ExecuTorch, litert-torch's converter does not). XNNPACK is LiteRT's default delegate on CPU and is
applied when the model is loaded; ``threads`` is the interpreter's thread count (XNNPACK's too). The I/O spec
and the tensor layout come from the flatbuffer's own ``metadata`` entries (``pocketgan.*``, written by
``pocketgan export --format tflite``), else the sidecar; an NHWC artifact (``--option layout=nhwc``) is fed and
read back through the same NCHW :meth:`run` as every backend. :meth:`TFLiteRunner.placement` reports which
operators XNNPACK took and which ran on LiteRT's own kernels, as the interpreter lists them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.core.coverage import DelegationCoverage
from pocketgan.core.embedded import PREFIX
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.litert import (DELEGATE_OP, delegation_coverage, from_interpreter, layout_of, quiet_fd,
                                   to_interpreter)
from pocketgan.core.optional import require
from pocketgan.runtime.artifact_meta import describe_artifact, read_sidecar
from pocketgan.runtime.placement import Placement
from pocketgan.runtime.registry import artifact_path, register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

SUFFIX = ".tflite"
EXPORT_FILE = "model.tflite"
DELEGATE = "XNNPACK"
FALLBACK = "CPU"  # LiteRT's own (non-delegated) kernels


class TFLiteRunner(Runner):
    """A LiteRT interpreter with XNNPACK applied, its tensors allocated, and the artifact's layout."""

    def __init__(self, interpreter: Any, info: RunnerInfo, layout: str) -> None:
        super().__init__(info)
        self.interpreter = interpreter
        self.layout = layout
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch (as NHWC for an NHWC artifact, quantized for an int8 input); the output as
        NCHW float32 (a copy)."""
        x = to_interpreter(np.asarray(batch, dtype=np.float32), self._input, self.layout)
        try:
            self.interpreter.set_tensor(self._input["index"], x)
            self.interpreter.invoke()
        except Exception as exc:  # a shape or type mismatch: one line
            raise PocketganError(f"{self.name}: LiteRT failed on input {tuple(x.shape)}: {first_line(exc)}") from None
        return from_interpreter(self.interpreter.get_tensor(self._output["index"]), self._output, self.layout)

    def coverage(self) -> DelegationCoverage:
        """How many of the model's operators the XNNPACK delegate took (the interpreter's op list)."""
        return delegation_coverage(self.interpreter._get_ops_details(), DELEGATE)

    def placement(self, feed: Mapping[str, np.ndarray]) -> Placement | None:
        """XNNPACK's operators and LiteRT's CPU fallbacks (by op type), from the loaded interpreter's op list
        (the delegate is applied at load, so nothing needs to run)."""
        ops = self.interpreter._get_ops_details()
        coverage = delegation_coverage(ops, DELEGATE)
        by_provider = {DELEGATE: coverage.delegated, **({FALLBACK: coverage.fallback} if coverage.fallback else {})}
        op_types = Counter(str(op["op_name"]) for op in ops if op["op_name"] != DELEGATE_OP)
        return Placement(coverage.source, DELEGATE, by_provider, dict(op_types.most_common()),
                         fallback_ops=dict(coverage.by_op))  # fmt: skip


@register_backend("tflite")
def load_tflite(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> TFLiteRunner:
    """Open a ``.tflite`` file (or an export directory holding ``model.tflite``) with LiteRT and XNNPACK."""
    litert = require("ai_edge_litert.interpreter", "litert", "running LiteRT (TFLite) models")
    if providers and [p.upper() for p in providers] != [DELEGATE]:
        raise PocketganError(f"the tflite backend runs LiteRT with {DELEGATE}; got providers {', '.join(providers)}")
    path = resolve_path(artifact)
    sidecar = read_sidecar(path)
    try:
        with quiet_fd(2):  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except Exception as exc:  # a truncated file, not a flatbuffer, an op LiteRT lacks
        raise PocketganError(f"{path}: LiteRT cannot load the model ({first_line(exc)})") from None
    props = embedded_props(path.read_bytes())
    described = describe_artifact(path, props, sidecar)
    layout = layout_of(props, str(path)) if props else _sidecar_layout(sidecar)
    info = RunnerInfo(
        name=str(artifact), backend="tflite",
        inputs=_tensor_infos(interpreter.get_input_details(), described.inputs, layout),
        outputs=_tensor_infos(interpreter.get_output_details(), described.outputs, layout),
        providers=[DELEGATE], io=described.io or IOSpec(size_multiple=1), manifest=described.manifest,
        threads=threads, versions={"ai_edge_litert": _version(), "numpy": np.__version__}, warnings=described.warnings,
        profile=described.profile, precision=described.precision,
    )  # fmt: skip
    return TFLiteRunner(interpreter, info, layout)


def resolve_path(artifact: str | os.PathLike[str]) -> Path:
    """``artifact`` (a ``.tflite`` file), or ``model.tflite`` in an export directory; one-line error otherwise."""
    return artifact_path(artifact, backend="tflite", export_file=EXPORT_FILE, what="LiteRT (.tflite) file")


def embedded_props(content: bytes) -> dict[str, str]:
    """The ``pocketgan.*`` entries of a flatbuffer's ``metadata`` table (each names a buffer holding a JSON value)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    props = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = (entry.Name() or b"").decode()
        if name.startswith(PREFIX):
            buffer = model.Buffers(entry.Buffer())
            data = content[buffer.Offset() : buffer.Offset() + buffer.Size()] if buffer.Offset() else \
                buffer.DataAsNumpy().tobytes()  # fmt: skip
            props[name] = bytes(data).decode()
    return props


def _sidecar_layout(sidecar: Any) -> str:
    """The layout a sidecar records (``extra.tflite.layout``), NCHW without one."""
    extra = getattr(sidecar, "extra", None) or {}
    return str((extra.get("tflite") or {}).get("layout", "nchw"))


def _tensor_infos(
    details: Sequence[Mapping[str, Any]], declared: Sequence[TensorInfo], layout: str
) -> list[TensorInfo]:
    """The interpreter's tensors as the NCHW tensors :meth:`TFLiteRunner.run` takes, with the declared names."""
    infos = []
    for index, detail in enumerate(details):
        shape = [int(d) for d in detail["shape"]]
        if layout == "nhwc" and len(shape) == 4:
            shape = [shape[0], shape[3], shape[1], shape[2]]
        name = declared[index].name if index < len(declared) else str(detail["name"])
        infos.append(TensorInfo(name, list(shape), "float32"))
    return infos


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"
