"""The ONNX Runtime backend (``ort``): TensorRT > CUDA > CoreML > CPU, whichever this host has."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.contract import ArtifactManifest, IOSpec, TensorInfo
from pocketgan.core.fsio import sha256_file
from pocketgan.runtime.registry import register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

#: Preferred execution providers, fastest first; CPU is always the fallback.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
ONNX_FILE = "model.onnx"


def choose_providers(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """``requested`` (aliases like ``cuda`` allowed) checked against ``available``, else the preferred ones present."""
    if not requested:
        return [p for p in PROVIDER_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    chosen = [PROVIDER_ALIASES.get(p.lower(), p) for p in requested]
    missing = [p for p in chosen if p not in available]
    if missing:
        raise PocketganError(
            f"execution provider {', '.join(missing)} is not available here (available: {', '.join(available)})"
        )
    return chosen


def resolve_onnx_path(artifact: str | os.PathLike[str]) -> Path:
    """``artifact`` itself, or ``artifact/model.onnx`` for an export directory; one-line error if absent."""
    path = Path(artifact)
    if path.is_dir():
        path = path / ONNX_FILE
    if not path.is_file():
        raise PocketganError(f"{artifact}: no such ONNX file")
    return path


class OrtRunner(Runner):
    """An ``onnxruntime.InferenceSession`` for one generator artifact."""

    def __init__(self, session: Any, info: RunnerInfo) -> None:
        super().__init__(info)
        self.session = session
        self._input_dtype = _ORT_DTYPES.get(session.get_inputs()[0].type)
        if self._input_dtype is None:
            raise PocketganError(f"{info.name}: unsupported input type {session.get_inputs()[0].type}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW batch (cast to the session's input type) and return the first output as float32."""
        feed = {self.input_name: np.ascontiguousarray(batch, dtype=self._input_dtype)}
        try:
            out = self.session.run([self.output_name], feed)[0]
        except Exception as exc:  # onnxruntime raises its own types for shape/type mismatches
            raise PocketganError(
                f"{self.name}: onnxruntime failed on input {tuple(batch.shape)}: {_first_line(exc)}"
            ) from None
        return np.asarray(out, dtype=np.float32)


@register_backend("ort")
def load_ort(
    artifact: str | os.PathLike[str],
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> OrtRunner:
    """Open an ONNX file (or an export directory holding ``model.onnx``) with onnxruntime."""
    ort = require("onnxruntime", "runtime", "running ONNX models")
    path = resolve_onnx_path(artifact)
    manifest = ArtifactManifest.for_artifact(path)
    chosen = choose_providers(ort.get_available_providers(), providers)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: failures become one PocketganError line
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as exc:  # truncated, corrupt or not an ONNX model at all
        raise PocketganError(f"{path}: cannot load ONNX model ({_first_line(exc)})") from None
    info = RunnerInfo(
        name=str(artifact),
        backend="ort",
        inputs=_tensor_infos(session.get_inputs(), manifest.inputs if manifest else []),
        outputs=_tensor_infos(session.get_outputs(), manifest.outputs if manifest else []),
        providers=list(session.get_providers()),
        io=manifest.io if manifest else _default_io(session),
        manifest=manifest,
        threads=threads,
        versions={"onnxruntime": ort.__version__, "numpy": np.__version__},
        warnings=_sidecar_warnings(path, manifest),
    )
    return OrtRunner(session, info)


def _tensor_infos(args: Sequence[Any], declared: Sequence[TensorInfo]) -> list[TensorInfo]:
    """Session tensors with the sidecar's names for dims the session leaves unnamed."""
    by_name = {t.name: t for t in declared}
    infos = []
    for arg in args:
        sidecar = by_name.get(arg.name)
        shape: list[int | str] = []
        for i, dim in enumerate(arg.shape):
            if isinstance(dim, int) and dim > 0 or isinstance(dim, str) and dim:
                shape.append(dim)
            elif sidecar is not None and i < len(sidecar.shape):
                shape.append(sidecar.shape[i])
            else:
                shape.append(f"dim{i}")
        dtype = arg.type.removeprefix("tensor(").removesuffix(")")
        infos.append(TensorInfo(arg.name, shape, "float32" if dtype == "float" else dtype))
    return infos


def _default_io(session: Any) -> IOSpec:
    """Without a sidecar: the pocketgan convention ([-1, 1]) and no size constraint beyond the graph's."""
    return IOSpec(
        input_channels=_channels(session.get_inputs()),
        output_channels=_channels(session.get_outputs()),
        size_multiple=1,
    )


def _channels(args: Sequence[Any]) -> int:
    shape = args[0].shape if args else []
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3


def _sidecar_warnings(path: Path, manifest: ArtifactManifest | None) -> list[str]:
    if manifest is None:
        return [f"{path}: no sidecar {path.name}.json; assuming values in [-1, 1]"]
    if manifest.sha256 and manifest.sha256 != sha256_file(path):
        return [f"{path}: sidecar sha256 does not match the file; it may describe another export"]
    return []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
