"""What an exporter is given (:class:`ExportJob`) and what it hands back (:class:`BuiltArtifact`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.export import latent as latent_export
from pocketgan.export.latent import LatentGraph, LatentSettings
from pocketgan.export.calibration import calibration_set
from pocketgan.export.progress import StepProgress
from pocketgan.export.samples import synthetic_inputs
from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.core.coverage import DelegationCoverage
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

Runner = Callable[..., np.ndarray]
"""``run(*arrays) -> output``: one array per artifact input, in :meth:`ExportJob.inputs` order."""


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
    format_options: dict[str, object] = field(default_factory=dict)  # --option KEY=VALUE (TensorRT, CoreML)
    delegate: str = "xnnpack"  # ExecuTorch: the backend the program is lowered to (xnnpack, coreml, qnn, mediatek)
    truncation: float | None = None  # latent generators: ψ baked in (None: the model's, 1.0 = none)
    truncation_input: bool = False  # latent generators: ψ is an input ("truncation" [1]) instead
    noise_input: bool = False  # latent generators: the noise maps are inputs (noise_0...) instead of constants

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
    companions: tuple[Path, ...] = ()  # files published beside the artifact (OpenVINO's .bin, ORT's config)
    rewrites: dict[str, int] | None = None  # graph rewrites that ran (pocketgan.export.rewrites); None: none asked
    coverage: DelegationCoverage | None = None  # delegation coverage, as the runtime's inspector reports it


@dataclass
class ExportJob:
    """One export: the model, the options, the resolved input size and a scratch directory."""

    loaded: LoadedModel
    options: ExportOptions
    size: tuple[int, int]
    scratch: Path
    progress: StepProgress
    calibration_source: str = field(default="", init=False)  # set with calibration_inputs (for the sidecar)
    dynamic_size: bool = field(default=False, init=False)  # dynamic H and W axes (a TensorRT resolution range)

    @property
    def io(self) -> IOSpec:
        """The generator's I/O spec."""
        return self.loaded.model.io

    @cached_property
    def latent(self) -> LatentSettings | None:
        """How a latent-input generator is exported (ψ, extra inputs); ``None`` for an image-to-image one."""
        return latent_export.settings_for(self.io, self.options) if self.io.is_latent else None

    @cached_property
    def model(self) -> torch.nn.Module:
        """The module to trace: the generator, or its :class:`~pocketgan.export.latent.LatentGraph`."""
        return LatentGraph(self.loaded.model, self.latent) if self.latent else self.loaded.model

    @property
    def batch_dim(self) -> int | str:
        """``"batch"`` for a dynamic batch dimension, else 1."""
        return "batch" if self.options.dynamic_batch else 1

    @cached_property
    def sample_inputs(self) -> list[torch.Tensor]:
        """The parity inputs, one tensor per artifact input: ``options.samples`` deterministic image-like
        inputs in the model's value range, or standard-normal latents (and noise) for a latent generator."""
        return self._inputs(self.options.samples, self.options.seed)

    @property
    def samples(self) -> torch.Tensor:
        """The parity samples of the first input (images, or latents ``z``)."""
        return self.sample_inputs[0]

    @cached_property
    def reference(self) -> np.ndarray:
        """PyTorch's outputs on :attr:`sample_inputs` (float32, eval mode)."""
        with torch.inference_mode():
            if self.latent:
                images = latent_export.reference_images(self.loaded.model, self.latent, self.sample_inputs)
            else:
                images = self.model(self.samples)
            return images.float().numpy()

    @cached_property
    def calibration_inputs(self) -> list[torch.Tensor]:
        """int8 calibration inputs (one tensor per input): images from ``options.calibration``, else
        synthetic inputs or latents (another seed)."""
        if not self.latent:  # images: --calibration DIR, else the model's dataset, else synthetic (cached)
            found = calibration_set(self.options.calibration, self.loaded.manifest.provenance, self.io, self.size,
                                    count=self.options.calibration_samples, seed=self.options.seed)  # fmt: skip
            self.calibration_source = found.source
            return [found.inputs]
        self.calibration_source = "random latents"
        return self._inputs(self.options.calibration_samples, self.options.seed + 1)

    @property
    def calibration(self) -> torch.Tensor:
        """The calibration samples of the first input."""
        return self.calibration_inputs[0]

    def _inputs(self, count: int, seed: int) -> list[torch.Tensor]:
        if self.latent:
            return latent_export.sample_inputs(self.loaded.model, self.latent, count, seed=seed)
        return [synthetic_inputs(self.io, count, self.size, seed=seed)]

    def batched(self) -> list[bool]:
        """Which inputs have a batch axis (a latent export's ``truncation`` input has none)."""
        count = len(self.inputs())
        return latent_export.batched_inputs(self.latent, count) if self.latent else [True] * count

    def sample(self, inputs: list[torch.Tensor], index: int) -> list[np.ndarray]:
        """Sample ``index`` of ``inputs`` (each batched input sliced to a batch of one), as arrays."""
        return [(x[index : index + 1] if batched else x).numpy() for x, batched in zip(inputs, self.batched())]

    def feeds(self, inputs: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
        """One ``{input name: array}`` feed per sample of ``inputs`` (int8 calibration readers)."""
        names = self.input_names()
        return [dict(zip(names, self.sample(inputs, i))) for i in range(len(inputs[0]))]

    def example(self) -> torch.Tensor:
        """A batch-1 input for tracing (the first input)."""
        return self.samples[:1]

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Batch-1 values of every input, for tracing."""
        return tuple(torch.from_numpy(a) for a in self.sample(self.sample_inputs, 0))

    def inputs(self) -> list[TensorInfo]:
        """The artifact's inputs: the NCHW float32 image, or the latent ``z`` (+ truncation, noise)."""
        if self.latent:
            return latent_export.input_infos(self.loaded.model, self.latent, self.batch_dim)
        return [TensorInfo(INPUT_NAME, [self.batch_dim, self.io.input_channels, *self.size])]

    def input_names(self) -> list[str]:
        """The artifact's input names, in order."""
        return [info.name for info in self.inputs()]

    def dynamic_axes(self) -> dict[str, dict[int, str]] | None:
        """The ONNX exporter's ``dynamic_axes`` for a dynamic batch (every batched input and the output)."""
        if not self.options.dynamic_batch and not self.dynamic_size:
            return None
        batched = [name for name, has in zip(self.input_names(), self.batched()) if has]
        axes = {0: "batch"} if self.options.dynamic_batch else {}
        if self.dynamic_size:  # image-to-image generators only (TensorRT refuses latent ones)
            axes.update({2: "height", 3: "width"})
        return {name: dict(axes) for name in [*batched, OUTPUT_NAME]}

    def artifact_io(self) -> IOSpec:
        """The artifact's I/O spec: the generator's at the exported size (for a latent one, with the
        export's truncation and noise mode)."""
        io = self.loaded.manifest.io
        if self.latent:
            return latent_export.artifact_io(io, self.latent, self.size)
        return replace(io, fixed_size=self.size)

    def latent_extra(self) -> dict[str, object]:
        """The sidecar's ``extra["latent"]`` for a latent export, else nothing."""
        return {"latent": latent_export.latent_facts(self)} if self.latent else {}

    def outputs(self) -> list[TensorInfo]:
        """The artifact's output tensor (NCHW float32, the same spatial size as the input)."""
        return [TensorInfo(OUTPUT_NAME, [self.batch_dim, self.loaded.model.io.output_channels, *self.size])]
