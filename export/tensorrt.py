"""TensorRT: a serialized engine built on the target GPU from the ONNX export.

The engine is built from the fp32 ONNX graph with the TensorRT Python API: ``fp16`` sets the FP16
builder flag, ``int8`` the INT8 flag with an ``IInt8EntropyCalibrator2`` fed by the same calibration
images as the ONNX int8 export (:mod:`pocketgan.export.calibration`), its cache kept for the next
build. Under fp16/int8 the ops that lose precision in FP16 (InstanceNorm and the other reductions of
:data:`~pocketgan.export.trt_readiness.FP16_SENSITIVE_OPS`) are pinned to FP32 with layer precision
constraints. One optimization profile covers the batch range (``--dynamic-batch``, ``--max-batch``,
``--option opt_batch=``) and the resolution range (``--option min_size=128 --option max_size=512``;
the exported ``--size`` is the optimum). A timing cache and a workspace limit are set.

(Implicit quantization with a calibrator is deprecated in TensorRT 10 but still built; the explicit-QDQ
alternative is ``--format onnx -p int8``'s graph.) The exact equivalent ``trtexec`` command line (:meth:`TensorRTSettings.trtexec_command`) is printed
and stored in the sidecar: users build on the Jetson itself. Building needs ``pocketgan[tensorrt]``
and an NVIDIA GPU; everything else here (settings, profiles, the command line, calibration batches)
runs anywhere. ``pocketgan export --format tensorrt --check-only`` checks the graph without a GPU
(:mod:`pocketgan.export.trt_readiness`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path
from pocketgan.core.keys import fingerprint
from pocketgan.core.optional import require
from pocketgan.core.options import parse_value
from pocketgan.core.registry import did_you_mean
from pocketgan.export.calibration import cache_dir
from pocketgan.export.failures import reraise_as_user_error
from pocketgan.export.job import INPUT_NAME, OUTPUT_NAME, BuiltArtifact, ExportJob, Runner
from pocketgan.export.onnx_format import onnx_opset, write_onnx
from pocketgan.export.registry import register_exporter
from pocketgan.export.trt_readiness import check_graph

OPTIMIZATION_LEVELS = range(0, 6)
NEEDS_GPU = "TensorRT engines are built and run on an NVIDIA GPU with TensorRT: install pocketgan[tensorrt]"


@dataclass(frozen=True)
class TensorRTSettings:
    """Everything a TensorRT build is given; from ``pocketgan export`` flags and ``--option KEY=VALUE``.

    Options: ``workspace_mb`` (workspace memory pool, default 1024), ``min_batch``/``opt_batch``
    (default 1; ``max_batch`` is ``--max-batch`` with ``--dynamic-batch``), ``min_size``/``max_size``
    (``H`` or ``HxW``: a dynamic resolution range around ``--size``), ``optimization_level`` (0-5,
    default 3), ``timing_cache`` and ``calibration_cache`` (paths; default under the pocketgan cache).
    """

    precision: str = "fp32"
    channels: int = 3
    size: tuple[int, int] = (256, 256)
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 1
    min_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None
    workspace_mb: int = 1024
    optimization_level: int = 3
    timing_cache: Path | None = None
    calibration_cache: Path | None = None
    fp32_layers: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls, options: Any, size: tuple[int, int], channels: int, extra: Mapping[str, object] | None = None
    ) -> TensorRTSettings:
        """Settings from :class:`~pocketgan.export.job.ExportOptions` and the ``--option`` values ``extra``."""
        values: dict[str, Any] = {"precision": options.precision, "channels": channels, "size": tuple(size),
                                  "max_batch": options.max_batch if options.dynamic_batch else 1}  # fmt: skip
        settable = {f.name for f in fields(cls)} - {"precision", "channels", "size", "fp32_layers", "max_batch"}
        for key, value in (extra or {}).items():
            if key not in settable:
                raise PocketganError(f"--format tensorrt has no option {key!r}{did_you_mean(key, sorted(settable))}; "
                                     f"options: {', '.join(sorted(settable))}")  # fmt: skip
            values[key] = _coerce(key, value)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """One-line errors for batch and size ranges that do not hold the optimum, and bad values."""
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise PocketganError(f"tensorrt batch range must satisfy 1 <= min_batch <= opt_batch <= max_batch; got "
                                 f"{self.min_batch}, {self.opt_batch}, {self.max_batch} (use --dynamic-batch "
                                 "--max-batch N for a batch range)")  # fmt: skip
        low, high = self.min_size or self.size, self.max_size or self.size
        if not all(a <= b <= c for a, b, c in zip(low, self.size, high)):
            raise PocketganError(f"tensorrt size range must hold --size: min_size {_hw(low)} <= {_hw(self.size)} "
                                 f"<= max_size {_hw(high)}")  # fmt: skip
        if self.workspace_mb < 1:
            raise PocketganError(f"tensorrt workspace_mb must be at least 1; got {self.workspace_mb}")
        if self.optimization_level not in OPTIMIZATION_LEVELS:
            raise PocketganError(f"tensorrt optimization_level must be 0-5; got {self.optimization_level}")

    @property
    def dynamic_size(self) -> bool:
        """Whether the profile spans several resolutions (the ONNX graph then has dynamic H and W)."""
        return (self.min_size or self.size) != self.size or (self.max_size or self.size) != self.size

    @property
    def dynamic(self) -> bool:
        """Whether the engine needs an optimization profile (a batch or a resolution range)."""
        return self.dynamic_size or self.min_batch != self.max_batch

    def profile_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The optimization profile's (min, opt, max) input shapes, NCHW."""
        low, high = self.min_size or self.size, self.max_size or self.size
        return ((self.min_batch, self.channels, *low), (self.opt_batch, self.channels, *self.size),
                (self.max_batch, self.channels, *high))  # fmt: skip

    def trtexec_command(self, onnx: str = "model.onnx", engine: str = "model.engine") -> list[str]:
        """The ``trtexec`` command building the same engine from ``onnx`` (TensorRT 10.x flags)."""
        command = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
                   f"--memPoolSize=workspace:{self.workspace_mb}M", f"--builderOptimizationLevel={self.optimization_level}"]  # fmt: skip
        if self.dynamic:
            for flag, shape in zip(("min", "opt", "max"), self.profile_shapes()):
                command.append(f"--{flag}Shapes={INPUT_NAME}:{'x'.join(map(str, shape))}")
        else:
            command.append(f"--shapes={INPUT_NAME}:{'x'.join(map(str, self.profile_shapes()[1]))}")
        if self.precision in ("fp16", "int8"):
            command.append("--fp16")
        if self.precision == "int8":  # the calibration cache a pocketgan int8 build (IInt8EntropyCalibrator2) wrote
            command += ["--int8", f"--calib={self.calibration_cache.name if self.calibration_cache else 'calibration.cache'}"]
        if self.precision != "fp32" and self.fp32_layers:
            command += ["--precisionConstraints=obey",
                        "--layerPrecisions=" + ",".join(f"{name}:fp32" for name in self.fp32_layers)]  # fmt: skip
        if self.timing_cache is not None:
            command.append(f"--timingCacheFile={self.timing_cache.name}")
        return command

    def trtexec_line(self, onnx: str = "model.onnx", engine: str = "model.engine") -> str:
        """:meth:`trtexec_command` as one shell line."""
        return shlex.join(self.trtexec_command(onnx, engine))

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's record of the build settings."""
        low, opt, high = self.profile_shapes()
        return {"precision": self.precision, "profile": {"min": list(low), "opt": list(opt), "max": list(high)},
                "workspace_mb": self.workspace_mb, "optimization_level": self.optimization_level,
                "fp32_layers": list(self.fp32_layers), "trtexec": self.trtexec_line()}  # fmt: skip


def _coerce(key: str, value: object) -> Any:
    from pocketgan.core.options import parse_size

    text = str(value)
    if key in ("min_size", "max_size"):
        return parse_size(text)
    if key in ("timing_cache", "calibration_cache"):
        return Path(text).expanduser()
    number = parse_value(text) if isinstance(value, str) else value
    if not isinstance(number, int) or isinstance(number, bool):
        raise PocketganError(f"tensorrt option {key} must be an integer; got {value!r}")
    return number


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def calibration_batches(images: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """``images`` (N, C, H, W) as contiguous float32 batches of exactly ``batch`` (TensorRT's calibrator
    takes a fixed batch; the remainder is dropped). One-line error when there is not one full batch."""
    if batch < 1 or len(images) < batch:
        raise PocketganError(f"int8 calibration needs at least {batch} images for batch {batch}; got {len(images)} "
                             "(raise --calibration-samples)")  # fmt: skip
    for start in range(0, len(images) - batch + 1, batch):
        yield np.ascontiguousarray(images[start : start + batch], dtype=np.float32)


def default_cache(kind: str, *parts: object) -> Path:
    """A cache file under ``$POCKETGAN_CACHE/tensorrt`` (``timing`` is shared; ``calibration`` is keyed)."""
    root = cache_dir().parent / "tensorrt"
    return root / ("timing.cache" if kind == "timing" else f"calibration-{fingerprint(*parts)}.cache")


def job_settings(job: ExportJob) -> TensorRTSettings:
    """The settings of ``job`` (options validated, caches resolved, FP16-sensitive layers named later)."""
    settings = TensorRTSettings.from_options(job.options, job.size, job.io.input_channels,
                                             getattr(job.options, "format_options", None))  # fmt: skip
    timing = settings.timing_cache or default_cache("timing")
    return replace(settings, timing_cache=timing)


@register_exporter("tensorrt")
def build_tensorrt(job: ExportJob, dest: Path) -> BuiltArtifact:
    """TensorRT engine (fp32/fp16/int8) built from the fp32 ONNX export; needs an NVIDIA GPU."""
    settings = job_settings(job)  # option errors first, on any host
    trt = require("tensorrt", "tensorrt", "building TensorRT engines")
    if not torch.cuda.is_available():
        raise PocketganError(f"{NEEDS_GPU}; no CUDA device found")
    onnx_path = job.scratch / "model.onnx"
    job.dynamic_size = settings.dynamic_size  # type: ignore[attr-defined]  (dynamic H/W axes in the trace)
    onnx_exporter, extra = write_onnx(job, onnx_path, "fp32")
    report = check_graph(onnx_path, precision=settings.precision, profiles=True)
    settings = replace(settings, fp32_layers=tuple(report.fp32_layers))
    if settings.precision == "int8":
        settings = replace(settings, calibration_cache=settings.calibration_cache or default_cache(
            "calibration", job.calibration.numpy().tobytes(), settings.profile_shapes()))  # fmt: skip
    logger = trt.Logger(trt.Logger.WARNING)
    job.progress.step(f"building the TensorRT {settings.precision} engine")
    with reraise_as_user_error("TensorRT engine build failed"):
        engine = build_engine(trt, logger, onnx_path, settings, job)
    dest.write_bytes(engine)
    extra["tensorrt"] = {**settings.to_dict(), "version": trt.__version__, "device": torch.cuda.get_device_name(),
                         "readiness": report.verdict(), "max_batch": settings.max_batch}  # fmt: skip
    return BuiltArtifact(dest, f"{onnx_exporter} + TensorRT {trt.__version__}", tensorrt_runner(trt, logger, engine),
                         opset=onnx_opset(onnx_path), extra=extra)  # fmt: skip


def build_engine(trt: Any, logger: Any, onnx_path: Path, settings: TensorRTSettings, job: ExportJob) -> bytes:
    """Parse the ONNX file and build a serialized engine with ``settings``."""
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
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.builder_optimization_level = settings.optimization_level
    if settings.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
        pin_fp32(trt, network, config, settings.fp32_layers)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *settings.profile_shapes())
    config.add_optimization_profile(profile)
    if settings.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_calibration_profile(profile)
        config.int8_calibrator = entropy_calibrator(trt, job.calibration.numpy(), settings)
    timing = load_timing_cache(config, settings.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise PocketganError("TensorRT could not build an engine (see its log above)")
    save_bytes(settings.timing_cache, memoryview(timing.serialize()).tobytes())
    return bytes(serialized)


def pin_fp32(trt: Any, network: Any, config: Any, names: tuple[str, ...]) -> list[str]:
    """Pin the layers made from the ONNX nodes ``names`` (and every normalization layer) to FP32."""
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        is_norm = layer.type == trt.LayerType.NORMALIZATION
        if is_norm or any(layer.name == n or layer.name.startswith(f"{n}_") for n in names):
            layer.precision = trt.float32
            for output in range(layer.num_outputs):
                layer.set_output_type(output, trt.float32)
            if is_norm:
                layer.compute_precision = trt.float32
            pinned.append(layer.name)
    return pinned


def load_timing_cache(config: Any, path: Path | None) -> Any:
    """Create the builder's timing cache from ``path`` (empty when absent) and set it on ``config``."""
    data = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def save_bytes(path: Path | None, data: bytes) -> None:
    """Write a cache file atomically (its directory created)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def entropy_calibrator(trt: Any, images: np.ndarray, settings: TensorRTSettings) -> Any:
    """An ``IInt8EntropyCalibrator2`` over ``images`` in batches of the profile's opt batch, with its cache."""
    batches = list(calibration_batches(images, settings.opt_batch))
    cache_path = settings.calibration_cache

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.pending = iter(batches)
            self.device: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return settings.opt_batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.pending, None)
            if batch is None:
                return None
            self.device = torch.from_numpy(batch).cuda()  # kept alive until the next call
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            save_bytes(cache_path, memoryview(cache).tobytes())

    return EntropyCalibrator()


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


@dataclass(frozen=True)
class ReadinessResult:
    """:func:`check_readiness`'s answer: the report, the settings a build would use, the ONNX it checked."""

    report: Any  # pocketgan.export.trt_readiness.ReadinessReport
    settings: TensorRTSettings

    def to_dict(self) -> dict[str, Any]:
        """The report with the build settings and the ``trtexec`` line (``--check-only``'s JSON)."""
        return {**self.report.to_dict(), "tensorrt": self.settings.to_dict()}


def check_readiness(loaded: Any, options: Any, *, keep_onnx: Path | None = None, progress: Any = None) -> ReadinessResult:
    """Export ``loaded`` to ONNX as a TensorRT build would and check it on this host.

    Needs no GPU and no TensorRT: the ``--check-only`` of ``pocketgan export --format tensorrt``.
    ``keep_onnx``: also publish the checked graph there (atomically), the file the ``trtexec`` line builds.
    """
    import tempfile

    from pocketgan.export.api import resolve_size
    from pocketgan.export.latent import check_latent_export
    from pocketgan.export.progress import StepProgress
    from pocketgan.models import as_loaded

    from pocketgan.export.formats import check_options, format_spec
    from pocketgan.export.registry import get_exporter

    loaded = as_loaded(loaded, "check_readiness")
    options.validate(get_exporter("tensorrt"))
    check_options(format_spec("tensorrt"), options)
    check_latent_export(loaded.model, "tensorrt", options)
    size = resolve_size(loaded.model, options.size)
    with tempfile.TemporaryDirectory(prefix="pocketgan-trt-check-") as scratch, StepProgress(progress) as steps:
        job = ExportJob(loaded, options, size, Path(scratch), steps)
        settings = job_settings(job)
        job.dynamic_size = settings.dynamic_size
        onnx_path = Path(scratch) / "model.onnx"
        write_onnx(job, onnx_path, "fp32")
        steps.step("checking the graph against TensorRT 10.x")
        report = check_graph(onnx_path, precision=settings.precision, profiles=True)
        if keep_onnx is not None:
            with atomic_path(keep_onnx) as tmp:
                Path(tmp).write_bytes(onnx_path.read_bytes())
    return ReadinessResult(report, replace(settings, fp32_layers=tuple(report.fp32_layers)))
