"""The ONNX Runtime backend (``ort``): TensorRT > CUDA > CoreML > CPU, whichever this host has."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.optional import require
from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.runtime.artifact_meta import describe_artifact, read_sidecar
from pocketgan.runtime.placement import Placement, from_ort_profile
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
ORT_FILE = "model.ort"  # ONNX Runtime's mobile format: loaded by the same session
#: Runs of the profiled session that records which provider ran each node.
PROFILED_RUNS = 3


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
    """``artifact`` itself, or ``artifact/model.onnx`` (else ``model.ort``) for an export directory; one-line
    error if absent."""
    path = Path(artifact)
    if path.is_dir():
        path = path / ONNX_FILE if (path / ONNX_FILE).is_file() or not (path / ORT_FILE).is_file() else path / ORT_FILE
    if not path.is_file():
        raise PocketganError(f"{artifact}: no such ONNX file")
    return path


class OrtRunner(Runner):
    """An ``onnxruntime.InferenceSession`` for one generator artifact."""

    def __init__(self, session: Any, info: RunnerInfo, path: Path | None = None) -> None:
        super().__init__(info)
        self.session = session
        self.path = path  # the file the session was opened from: a profiled twin reopens it
        self._input_types = {arg.name: _ORT_DTYPES.get(arg.type) for arg in session.get_inputs()}
        unsupported = [arg.type for arg in session.get_inputs() if self._input_types[arg.name] is None]
        if unsupported:
            raise PocketganError(f"{info.name}: unsupported input type {unsupported[0]}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch of the first input (cast to the session's input type); the first output as float32."""
        return self.run_feed({self.input_name: batch})

    def run_feed(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run with a value for every input by name (each cast to the session's type); the first output as float32."""
        cast = self._cast(feed)
        try:
            out = self.session.run([self.output_name], cast)[0]
        except Exception as exc:  # onnxruntime raises its own types for shape/type mismatches
            shapes = ", ".join(f"{name} {tuple(a.shape)}" for name, a in cast.items())
            raise PocketganError(f"{self.name}: onnxruntime failed on input {shapes}: {first_line(exc)}") from None
        return np.asarray(out, dtype=np.float32)

    def placement(self, feed: Mapping[str, np.ndarray], runs: int = PROFILED_RUNS) -> Placement | None:
        """Run ``feed`` ``runs`` times in a separate profiled session (same file, options and providers, so
        the timed session is never slowed by profiling); its profile, read then deleted, names the provider
        of every node ORT ran (after its graph optimizations and partitioning)."""
        if self.path is None:
            return None
        ort = require("onnxruntime", "runtime", "running ONNX models")
        cast = self._cast(feed)
        providers = self.session.get_providers()
        with tempfile.TemporaryDirectory(prefix="pocketgan-profile-") as tmp:
            options = session_options(ort, self.info.threads)
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "ort-profile")
            try:
                session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
                for _ in range(runs):
                    session.run([self.output_name], cast)
                profile = Path(session.end_profiling())
                events = json.loads(profile.read_text())
            except Exception as exc:  # onnxruntime's own error types, an unreadable profile
                raise PocketganError(f"{self.name}: the profiled onnxruntime run failed: {first_line(exc)}") from None
            profile.unlink()
        return from_ort_profile(events, providers[0], runs)

    def _cast(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A value for every input, each as the session's dtype (one-line error naming a missing one)."""
        missing = [name for name in self._input_types if name not in feed]
        if missing:
            raise PocketganError(f"{self.name}: no value for input {', '.join(missing)}")
        return {name: np.ascontiguousarray(feed[name], dtype=dtype) for name, dtype in self._input_types.items()}


@register_backend("ort")
def load_ort(
    artifact: str | os.PathLike[str],
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> OrtRunner:
    """Open an ONNX or ``.ort`` file (or an export directory holding one) with onnxruntime.

    The I/O spec is the one embedded in the file, else the sidecar's (:mod:`pocketgan.runtime.artifact_meta`).
    """
    ort = require("onnxruntime", "runtime", "running ONNX models")
    path = resolve_onnx_path(artifact)
    sidecar = read_sidecar(path)
    chosen = choose_providers(ort.get_available_providers(), providers)
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(ort, threads), providers=chosen)
    except Exception as exc:  # truncated, corrupt or not an ONNX model at all
        raise PocketganError(f"{path}: cannot load ONNX model ({first_line(exc)})") from None
    described = describe_artifact(path, session.get_modelmeta().custom_metadata_map, sidecar)
    manifest = described.manifest
    info = RunnerInfo(
        name=str(artifact),
        backend="ort",
        inputs=_tensor_infos(session.get_inputs(), described.inputs),
        outputs=_tensor_infos(session.get_outputs(), described.outputs),
        providers=list(session.get_providers()),
        io=described.io or _default_io(session),
        manifest=manifest,
        threads=threads,
        versions={"onnxruntime": ort.__version__, "numpy": np.__version__},
        warnings=described.warnings,
        profile=described.profile,
        precision=described.precision,
    )
    return OrtRunner(session, info, path)


def session_options(ort: Any, threads: int | None) -> Any:
    """The ``SessionOptions`` of every pocketgan session: errors-only logging (failures become one
    PocketganError line), all graph optimizations, sequential execution, ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


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
    """Without a sidecar: the pocketgan convention ([-1, 1]) and no size constraint beyond the graph's;
    a 2-D first input ``[batch, z_dim]`` is a latent (ψ and noise as exported, unknown here: 1 and const)."""
    first = session.get_inputs()[0].shape
    if len(first) == 2 and isinstance(first[1], int) and first[1] > 0:
        out = session.get_outputs()[0].shape
        size = tuple(out[2:]) if len(out) == 4 and all(isinstance(d, int) and d > 0 for d in out[2:]) else None
        return IOSpec.latent(first[1], size, output_channels=_channels(session.get_outputs()))
    return IOSpec(
        input_channels=_channels(session.get_inputs()),
        output_channels=_channels(session.get_outputs()),
        size_multiple=1,
    )


def _channels(args: Sequence[Any]) -> int:
    shape = args[0].shape if args else []
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
