"""The ``tensorrt`` backend: a serialized TensorRT engine (``model.engine``) on an NVIDIA GPU, without torch.

Uses the TensorRT Python API and cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before
cuda-python 12.6) for device buffers and the stream. The I/O spec comes from the engine's sidecar
(an engine carries no string metadata). Both packages are imported when an engine is loaded; without
them (or a GPU) the error is one line.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import TensorInfo
from pocketgan.runtime.artifact_meta import describe_artifact
from pocketgan.runtime.registry import register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

NEEDS = "the tensorrt backend needs an NVIDIA GPU and TensorRT: pip install 'pocketgan[tensorrt]' (tensorrt, cuda-python)"


def import_gpu_stack() -> tuple[Any, Any]:
    """``(tensorrt, cudart)``, or the one-line error saying what is missing."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        raise PocketganError(f"{NEEDS}; tensorrt is not installed") from None
    for module in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return trt, importlib.import_module(module)
        except ImportError:
            continue
    raise PocketganError(f"{NEEDS}; cuda-python is not installed") from None


def check(result: Any, what: str) -> Any:
    """Unwrap a cuda-python ``(err, *values)`` tuple, raising a one-line error on failure."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise PocketganError(f"CUDA {what} failed (error {int(err)})")
    return values[0] if len(values) == 1 else values


class TensorRTRunner(Runner):
    """One engine and its execution context; inputs and outputs copied through device buffers per call."""

    def __init__(self, trt: Any, cudart: Any, engine: Any, info: RunnerInfo) -> None:
        super().__init__(info)
        self.trt, self.cudart, self.engine = trt, cudart, engine
        self.context = engine.create_execution_context()
        self.stream = check(cudart.cudaStreamCreate(), "stream creation")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch (its shape within the engine's optimization profile)."""
        cudart = self.cudart
        host_in = np.ascontiguousarray(batch, dtype=np.float32)
        self.context.set_input_shape(self.input_name, tuple(host_in.shape))
        host_out = np.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=np.float32)
        buffers = [check(cudart.cudaMalloc(a.nbytes), "allocation") for a in (host_in, host_out)]
        try:
            kind = cudart.cudaMemcpyKind
            check(cudart.cudaMemcpyAsync(buffers[0], host_in.ctypes.data, host_in.nbytes,
                                         kind.cudaMemcpyHostToDevice, self.stream), "copy to the device")  # fmt: skip
            self.context.set_tensor_address(self.input_name, int(buffers[0]))
            self.context.set_tensor_address(self.output_name, int(buffers[1]))
            if not self.context.execute_async_v3(self.stream):
                raise PocketganError(f"{self.name}: TensorRT inference failed")
            check(cudart.cudaMemcpyAsync(host_out.ctypes.data, buffers[1], host_out.nbytes,
                                         kind.cudaMemcpyDeviceToHost, self.stream), "copy to the host")  # fmt: skip
            check(cudart.cudaStreamSynchronize(self.stream), "synchronize")
        finally:
            for buffer in buffers:
                cudart.cudaFree(buffer)
        return host_out


@register_backend("tensorrt")
def load_tensorrt(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> TensorRTRunner:
    """Deserialize ``artifact`` (a ``.engine`` built for this GPU and TensorRT version) and return its runner.

    ``threads`` and ``providers`` do not apply (the engine runs on the current CUDA device).
    """
    trt, cudart = import_gpu_stack()
    path = Path(artifact)
    if path.is_dir():
        path = path / "model.engine"
    if not path.is_file():
        raise PocketganError(f"{path}: no such TensorRT engine")
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise PocketganError(f"{path}: TensorRT cannot deserialize it (built for another GPU or TensorRT version?)")
    described = describe_artifact(path, {})
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    mode = trt.TensorIOMode.INPUT
    tensors = {n: TensorInfo(n, [d if d >= 0 else "dynamic" for d in engine.get_tensor_shape(n)]) for n in names}
    info = RunnerInfo(
        name=str(path), backend="tensorrt",
        inputs=[tensors[n] for n in names if engine.get_tensor_mode(n) == mode],
        outputs=[tensors[n] for n in names if engine.get_tensor_mode(n) != mode],
        providers=["TensorRT"], manifest=described.manifest, versions={"tensorrt": trt.__version__},
        warnings=described.warnings, **({"io": described.io} if described.io else {}),
        profile=described.profile, precision=described.precision,
    )  # fmt: skip
    return TensorRTRunner(trt, cudart, engine, info)
