"""TensorRT: a serialized engine built on the target GPU from the ONNX export.

fp16 builds from the fp32 ONNX graph with the FP16 builder flag; int8 uses explicit
quantization: the QDQ graph of the ONNX int8 export (symmetric int8 activations, as TensorRT
requires), with FP16 allowed for the layers left unquantized. Needs ``pocketgan[tensorrt]``
and an NVIDIA GPU; parity runs the engine through torch CUDA tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import INPUT_NAME, OUTPUT_NAME, PRECISIONS, BuiltArtifact, ExportJob, Runner
from pocketgan.export.onnx_format import onnx_opset, write_onnx
from pocketgan.export.registry import register_exporter

WORKSPACE_BYTES = 1 << 30


@register_exporter("tensorrt", artifact="model.engine", precisions=PRECISIONS)
def build_tensorrt(job: ExportJob, dest: Path) -> BuiltArtifact:
    """TensorRT engine (fp32/fp16/int8) built from the ONNX export; needs an NVIDIA GPU."""
    trt = require("tensorrt", "tensorrt", "building TensorRT engines")
    if not torch.cuda.is_available():
        raise PocketganError("TensorRT engines are built on the NVIDIA GPU that runs them; no CUDA device found")
    precision = job.options.precision
    onnx_path = job.scratch / "model.onnx"
    onnx_exporter, extra = write_onnx(job, onnx_path, "int8" if precision == "int8" else "fp32", symmetric_int8=True)
    logger = trt.Logger(trt.Logger.WARNING)
    job.progress.step(f"building the TensorRT {precision} engine")
    with reraise_as_user_error("TensorRT engine build failed"):
        engine = build_engine(trt, logger, onnx_path, job)
    dest.write_bytes(engine)
    extra["tensorrt"] = {"version": trt.__version__, "device": torch.cuda.get_device_name(),
                         "max_batch": job.options.max_batch if job.options.dynamic_batch else 1}  # fmt: skip
    return BuiltArtifact(
        dest, f"{onnx_exporter} + TensorRT {trt.__version__}", tensorrt_runner(trt, logger, engine),
        opset=onnx_opset(onnx_path), extra=extra,
    )  # fmt: skip


def build_engine(trt: Any, logger: Any, onnx_path: Path, job: ExportJob) -> bytes:
    """Parse the ONNX file and build a serialized engine with ``job``'s precision and batch range."""
    builder = trt.Builder(logger)
    explicit_batch = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(
        trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH
    )
    network = builder.create_network(explicit_batch)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise PocketganError(f"TensorRT cannot parse the ONNX model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if job.options.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if job.options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if job.options.dynamic_batch:
        shape = (job.loaded.model.io.input_channels, *job.size)
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, (1, *shape), (1, *shape), (job.options.max_batch, *shape))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise PocketganError("TensorRT could not build an engine (see its log above)")
    return bytes(serialized)


def tensorrt_runner(trt: Any, logger: Any, engine_bytes: bytes) -> Runner:
    """A function running a serialized engine on the current CUDA device (buffers are torch tensors)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
    context = engine.create_execution_context()

    def run(batch: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).cuda()
        context.set_input_shape(INPUT_NAME, tuple(inputs.shape))
        outputs = torch.empty(tuple(context.get_tensor_shape(OUTPUT_NAME)), dtype=torch.float32, device="cuda")
        context.set_tensor_address(INPUT_NAME, inputs.data_ptr())
        context.set_tensor_address(OUTPUT_NAME, outputs.data_ptr())
        stream = torch.cuda.current_stream()
        if not context.execute_async_v3(stream.cuda_stream):
            raise PocketganError("TensorRT inference failed")
        stream.synchronize()
        return outputs.cpu().numpy()

    return run
