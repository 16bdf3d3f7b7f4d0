"""What an exporter is given (:class:`ExportJob`) and what it hands back (:class:`BuiltArtifact`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.export.progress import StepProgress
from pocketgan.export.samples import read_calibration_images, synthetic_inputs
from pocketgan.core.contract import TensorInfo
from pocketgan.models import LoadedModel

if TYPE_CHECKING:
    from pocketgan.export.registry import Exporter

PRECISIONS = ("fp32", "fp16", "int8")
INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_SIZE = (256, 256)
OPSET_RANGE = (11, 20)  # what torch's TorchScript-based ONNX exporter supports for these generators
INT8_MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (the ``axis`` attribute)
#: int8 weight ranges: ``reduced`` (7-bit, runs right on every CPU) or ``full`` (8-bit: only for targets
#: whose int8 kernels accumulate without saturating: VNNI, AMX, ARM dot product, GPUs). See
#: :mod:`pocketgan.core.hostinfo`.
INT8_RANGES = ("reduced", "full")

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class ExportOptions:
    """Settings shared by every format (``pocketgan export`` flags)."""

    size: tuple[int, int] | None = None  # (height, width); None: the model's fixed size or 256x256
    precision: str = "fp32"
    opset: int = 17
    dynamic_batch: bool = False
    max_batch: int = 8  # upper bound of a dynamic batch where the format needs one (TensorRT, CoreML)
    atol: float | None = None  # None: the precision's default (see pocketgan.export.parity)
    min_psnr_db: float | None = None  # None: the precision's default (int8 only)
    samples: int = 4  # parity inputs
    calibration: Path | None = None  # int8: a directory of images; None: synthetic inputs
    calibration_samples: int = 16
    int8_range: str = "reduced"  # int8 weights: "reduced" (7-bit, portable) or "full" (VNNI/ARM dot-product targets)
    seed: int = 0

    def validate(self, exporter: Exporter) -> None:
        """Raise a one-line error for options this exporter (or any) cannot honour."""
        if self.precision not in exporter.precisions:
            raise PocketganError(
                f"--format {exporter.name} supports --precision {', '.join(exporter.precisions)}, not {self.precision}"
            )
        low, high = OPSET_RANGE
        if not low <= self.opset <= high:
            raise PocketganError(f"--opset must be between {low} and {high}; got {self.opset}")
        if self.precision == "int8" and self.opset < INT8_MIN_OPSET:
            raise PocketganError(f"--precision int8 needs --opset {INT8_MIN_OPSET} or newer (per-channel QDQ)")
        for flag, value in (("--samples", self.samples), ("--calibration-samples", self.calibration_samples),
                            ("--max-batch", self.max_batch)):  # fmt: skip
            if value < 1:
                raise PocketganError(f"{flag} must be at least 1; got {value}")
        if self.atol is not None and not self.atol >= 0:
            raise PocketganError(f"--atol must be >= 0; got {self.atol}")
        if self.calibration is not None and self.precision != "int8":
            raise PocketganError("--calibration only applies to --precision int8")
        if self.int8_range not in INT8_RANGES:
            raise PocketganError(f"--int8-range must be {' or '.join(INT8_RANGES)}; got {self.int8_range!r}")


@dataclass
class BuiltArtifact:
    """An artifact written to its staging path, with the way to run it for the parity check.

    ``run`` maps an NCHW float32 batch to the artifact's output as a deployment runs it (the
    host's kernels); ``None`` when the artifact cannot run on this host, with ``not_run_reason``
    saying why (recorded in the sidecar). ``reference_run``, where a format has one, runs the same
    artifact with reference math (e.g. an int8 QDQ graph unfused): parity is measured with both, so
    a host whose kernels disagree with the graph's math is named (see :mod:`pocketgan.export.api`).
    """

    path: Path
    exporter: str
    run: Runner | None
    opset: int | None = None
    not_run_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    reference_run: Runner | None = None


@dataclass
class ExportJob:
    """One export: the model, the options, the resolved input size and a scratch directory."""

    loaded: LoadedModel
    options: ExportOptions
    size: tuple[int, int]
    scratch: Path
    progress: StepProgress

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @property
    def batch_dim(self) -> int | str:
        """``"batch"`` for a dynamic batch dimension, else 1."""
        return "batch" if self.options.dynamic_batch else 1

    @cached_property
    def samples(self) -> torch.Tensor:
        """The parity inputs: ``options.samples`` deterministic image-like inputs in the model's value range."""
        return synthetic_inputs(self.loaded.model.io, self.options.samples, self.size, seed=self.options.seed)

    @cached_property
    def reference(self) -> np.ndarray:
        """PyTorch's outputs on :attr:`samples` (float32, eval mode)."""
        with torch.inference_mode():
            return self.model(self.samples).float().numpy()

    @cached_property
    def calibration(self) -> torch.Tensor:
        """int8 calibration inputs: images from ``options.calibration``, else synthetic ones (another seed)."""
        io, count = self.loaded.model.io, self.options.calibration_samples
        if self.options.calibration is not None:
            return read_calibration_images(self.options.calibration, io, self.size, limit=count)
        return synthetic_inputs(io, count, self.size, seed=self.options.seed + 1)

    def example(self) -> torch.Tensor:
        """A batch-1 input for tracing."""
        return self.samples[:1]

    def inputs(self) -> list[TensorInfo]:
        """The artifact's input tensor (NCHW float32)."""
        return [TensorInfo(INPUT_NAME, [self.batch_dim, self.loaded.model.io.input_channels, *self.size])]

    def outputs(self) -> list[TensorInfo]:
        """The artifact's output tensor (NCHW float32, the same spatial size as the input)."""
        return [TensorInfo(OUTPUT_NAME, [self.batch_dim, self.loaded.model.io.output_channels, *self.size])]
