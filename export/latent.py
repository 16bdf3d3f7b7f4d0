"""Exporting latent-input generators (StyleGAN2): mapping + synthesis as one graph from ``z``.

The artifact has **one input by default, the latent** ``z`` ``[batch, z_dim]``: the generator's
constant noise buffers and the export's truncation ψ (``w_avg + ψ (w − w_avg)``) are baked into
the graph. Two options expose more inputs, in this order after ``z``:

- ``truncation_input``: ``truncation`` ``[1]``, ψ chosen at run time (the export's ψ is the default
  the sidecar records);
- ``noise_input``: ``noise_0`` … ``noise_{k-1}`` ``[batch, 1, r, r]``, the synthesis layers' noise
  (the runtime draws it from a standard normal: noise mode ``random``).

A latent generator with ``mapping``/``synthesis``/``w_avg`` (StyleGAN2) is traced as
``synthesis(truncate(mapping(z)), noise)``; any other latent-input generator (a wrapped module whose
forward takes ``z``) as its forward, without truncation or noise. Parity compares with the
generator's own ``forward(z, truncation=ψ, noise_mode="const")`` on the same latents.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.core.errors import PocketganError
from pocketgan.models import Generator

if TYPE_CHECKING:
    from pocketgan.export.job import ExportJob, ExportOptions

LATENT_INPUT = "z"
TRUNCATION_INPUT = "truncation"
NOISE_INPUT_PREFIX = "noise_"
#: Formats whose builders take one image input only (their latent support comes with a later issue).
IMAGE_ONLY_FORMATS = {"tensorrt": "TensorRT", "coreml": "CoreML", "ncnn": "ncnn"}


@dataclass(frozen=True)
class LatentSettings:
    """How a latent generator is exported: the truncation ψ and which extra inputs the graph takes."""

    truncation: float = 1.0
    truncation_input: bool = False
    noise_input: bool = False

    @property
    def noise_mode(self) -> str:
        """The artifact's noise mode: ``random`` when noise is an input (the runtime draws it), else ``const``."""
        return "random" if self.noise_input else "const"


def settings_for(io: IOSpec, options: ExportOptions) -> LatentSettings:
    """The latent settings of an export: ``options.truncation`` (default: the model's ψ) and the input flags."""
    truncation = io.truncation if options.truncation is None else float(options.truncation)
    return LatentSettings(truncation, options.truncation_input, options.noise_input)


def has_style_api(model: nn.Module) -> bool:
    """Whether ``model`` splits into ``mapping`` + ``synthesis`` with a ``w_avg`` (what truncation needs)."""
    return all(hasattr(model, name) for name in ("mapping", "synthesis", "w_avg"))


def check_latent_export(model: Generator, fmt: str, options: ExportOptions) -> None:
    """One line for a latent option on an image model, or a latent export this format or model cannot do."""
    latent_flags = [flag for flag, on in (("--truncation", options.truncation is not None),
                                           ("--truncation-input", options.truncation_input),
                                           ("--noise-input", options.noise_input)) if on]  # fmt: skip
    if not model.io.is_latent:
        if latent_flags:
            verb = "applies" if len(latent_flags) == 1 else "apply"
            raise PocketganError(f"{', '.join(latent_flags)} only {verb} to latent-input generators ({model.arch} "
                                 "takes an image)")  # fmt: skip
        return
    if fmt in IMAGE_ONLY_FORMATS:
        raise PocketganError(f"--format {fmt}: {IMAGE_ONLY_FORMATS[fmt]} export of latent-input generators "
                             f"({model.arch}) is not supported yet; export --format onnx")  # fmt: skip
    if options.truncation is not None and not math.isfinite(options.truncation):
        raise PocketganError(f"--truncation must be a finite number; got {options.truncation}")
    if options.calibration is not None:
        raise PocketganError("--calibration takes images; a latent-input generator is calibrated on random latents")
    settings = settings_for(model.io, options)
    if (settings.truncation != 1.0 or settings.truncation_input) and not has_style_api(model):
        raise PocketganError(f"{model.arch} has no truncation (it needs mapping, synthesis and w_avg); "
                             "export it with --truncation 1")  # fmt: skip
    if settings.noise_input and not callable(getattr(model, "const_noise", None)):
        raise PocketganError(f"--noise-input: {model.arch} has no noise inputs (no const_noise())")


def latent_output_size(model: Generator, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The height and width of the images ``model`` makes (``io.fixed_size``, else found by running one
    latent); ``size``, when given, must be it (one line otherwise)."""
    if model.io.fixed_size:
        made = (int(model.io.fixed_size[0]), int(model.io.fixed_size[1]))
    else:
        with torch.inference_mode():
            height, width = model(torch.zeros(1, int(model.io.z_dim or 0))).shape[-2:]
        made = (int(height), int(width))
    if size is not None and tuple(size) != made:
        raise PocketganError(f"{model.arch} makes {made[0]}x{made[1]} images from a latent; "
                             f"--size {size[0]}x{size[1]} does not fit")  # fmt: skip
    return made


class LatentGraph(nn.Module):
    """What is traced: ``(z[, truncation][, noise_0, …]) -> image`` with the rest baked in."""

    def __init__(self, generator: Generator, settings: LatentSettings) -> None:
        super().__init__()
        self.generator = generator
        self.settings = settings
        self.eval()  # exporters restore this module's mode after tracing: train mode would move w_avg

    @property
    def io(self) -> IOSpec:
        """The generator's I/O spec (so the graph profiles like the generator: on a ``(1, z_dim)`` latent)."""
        return self.generator.io

    @property
    def arch(self) -> str:
        return self.generator.arch

    def forward(self, z: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        extra_inputs = list(extra)
        psi: float | torch.Tensor = extra_inputs.pop(0) if self.settings.truncation_input else self.settings.truncation
        return synthesize(self.generator, z, psi, extra_inputs or None)


def synthesize(generator: Generator, z: torch.Tensor, psi: float | torch.Tensor, noise: list[torch.Tensor] | None
               ) -> torch.Tensor:  # fmt: skip
    """``synthesis(w_avg + ψ (mapping(z) − w_avg), noise)`` (const noise when ``noise`` is None), else
    ``forward(z)`` for a latent generator without mapping/synthesis."""
    if not has_style_api(generator):
        return generator(z)
    w = generator.mapping(z)
    if isinstance(psi, torch.Tensor) or psi != 1.0:
        w_avg = generator.w_avg
        w = w_avg + psi * (w - w_avg)
    return generator.synthesis(w, noise_mode="const", noise=noise)


def reference_images(generator: Generator, settings: LatentSettings, inputs: list[torch.Tensor]) -> torch.Tensor:
    """PyTorch's images for the parity inputs: the generator's own forward where it can say the same thing."""
    z = inputs[0]
    if settings.noise_input or not has_style_api(generator):
        return LatentGraph(generator, settings)(*inputs)
    psi = float(inputs[1].item()) if settings.truncation_input else settings.truncation
    if "truncation" in inspect.signature(generator.forward).parameters:
        return generator(z, truncation=psi, noise_mode="const")
    return synthesize(generator, z, psi, None)


def noise_shapes(generator: Generator) -> list[tuple[int, ...]]:
    """Per-sample shapes of the generator's noise inputs (its constant buffers without their batch axis)."""
    return [tuple(int(d) for d in buffer.shape[1:]) for buffer in generator.const_noise()]


def sample_inputs(generator: Generator, settings: LatentSettings, count: int, *, seed: int) -> list[torch.Tensor]:
    """Deterministic inputs for ``count`` images: standard-normal ``z`` (and noise), the export's ψ."""
    rng = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(count, int(generator.io.z_dim or 0), generator=rng)]
    if settings.truncation_input:
        inputs.append(torch.tensor([settings.truncation], dtype=torch.float32))
    if settings.noise_input:
        inputs += [torch.randn(count, *shape, generator=rng) for shape in noise_shapes(generator)]
    return inputs


def batched_inputs(settings: LatentSettings, count: int) -> list[bool]:
    """Which of the ``count`` inputs have a batch axis (all but ``truncation``)."""
    return [not (settings.truncation_input and index == 1) for index in range(count)]


def input_infos(generator: Generator, settings: LatentSettings, batch: int | str) -> list[TensorInfo]:
    """The artifact's inputs: ``z`` [batch, z_dim], then ``truncation`` [1] and ``noise_i`` [batch, 1, r, r]."""
    infos = [TensorInfo(LATENT_INPUT, [batch, int(generator.io.z_dim or 0)])]
    if settings.truncation_input:
        infos.append(TensorInfo(TRUNCATION_INPUT, [1]))
    if settings.noise_input:
        infos += [TensorInfo(f"{NOISE_INPUT_PREFIX}{i}", [batch, *shape])
                  for i, shape in enumerate(noise_shapes(generator))]  # fmt: skip
    return infos


def artifact_io(io: IOSpec, settings: LatentSettings, size: tuple[int, int]) -> IOSpec:
    """The artifact's I/O spec: the model's, with the image size, the export's ψ and noise mode."""
    return replace(io, fixed_size=size, truncation=settings.truncation, noise_mode=settings.noise_mode)


def latent_facts(job: ExportJob) -> dict[str, Any]:
    """What the sidecar's ``extra["latent"]`` records about the latent input (the embedded metadata's
    ``pocketgan.io`` carries z_dim, truncation and noise mode too: :func:`artifact_io`)."""
    settings = job.latent
    assert settings is not None
    names = [info.name for info in job.inputs()]
    return {
        "z_dim": int(job.io.z_dim or 0),
        "num_classes": job.io.num_classes,
        "truncation": settings.truncation,
        "truncation_input": settings.truncation_input,
        "noise_mode": settings.noise_mode,
        "noise_inputs": [n for n in names if n.startswith(NOISE_INPUT_PREFIX)],
        "latent_distribution": "standard normal",
    }

