"""What every pocketgan generator shares: its spec, I/O constraints and feature taps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import GeneratorSpec, IOSpec


@dataclass(frozen=True)
class FeatureTap:
    """An intermediate activation distillers can read: module ``name``, its ``channels`` and ``stride``."""

    name: str
    channels: int
    stride: int


class WidthTable:
    """Per-layer output widths: the architecture's default unless ``overrides`` names the layer."""

    def __init__(self, overrides: Mapping[str, int] | None) -> None:
        self.overrides = dict(overrides or {})
        self.used: set[str] = set()

    def __call__(self, name: str, default: int) -> int:
        self.used.add(name)
        return int(self.overrides.get(name, default))

    def check_all_used(self, arch: str) -> None:
        unknown = sorted(set(self.overrides) - self.used)
        if unknown:
            raise PocketganError(f"{arch} has no prunable layer named {', '.join(unknown[:5])}")


def conv_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every Conv2d / ConvTranspose2d with its qualified name."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            yield name, module


PRUNABLE_TYPES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
)  # fmt: skip


def prunable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every layer whose output width channel pruning changes (convolutions and Linear), with its name."""
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            yield name, module


def layer_width(module: nn.Module) -> int:
    """Output channels of a convolution, output features of a Linear."""
    return int(module.out_features if isinstance(module, nn.Linear) else module.out_channels)


def prunable_widths(model: nn.Module) -> dict[str, int]:
    """``{layer name: output width}`` for every prunable layer (what a pruned spec records)."""
    return {name: layer_width(m) for name, m in prunable_layers(model)}


WRAP_HINT = "wrap it first: pocketgan.models.wrap(module, io=IOSpec(...))"


def as_generator(model: object, what: str) -> Generator:
    """``model`` if it is a pocketgan generator, else one line saying to wrap it (never an AttributeError)."""
    if isinstance(model, Generator):
        return model
    inner = getattr(model, "model", None)  # a LoadedModel passed where its .model was meant
    if isinstance(inner, Generator) and hasattr(model, "manifest"):
        return inner
    if isinstance(model, nn.Module):
        raise PocketganError(
            f"{what} needs a pocketgan generator; {type(model).__name__} is a plain torch module: {WRAP_HINT}"
        )
    raise PocketganError(
        f"{what} needs a pocketgan generator (a wrapped nn.Module or load_model(...)); got {type(model).__name__}"
    )


class Generator(nn.Module):
    """Base class: subclasses set ``arch``, ``config`` and ``io`` and implement ``feature_taps``."""

    arch: str
    config: dict[str, Any]
    io: IOSpec

    def feature_taps(self) -> list[FeatureTap]:
        """Intermediate features for distillation, shallow to deep."""
        raise NotImplementedError

    def spec(self) -> GeneratorSpec:
        """The spec that rebuilds this generator, current (possibly pruned) widths included (``None``: defaults)."""
        from pocketgan.models.registry import create_generator

        widths = {name: _out_channels(m) for name, m in conv_layers(self)}
        default = {name: _out_channels(m) for name, m in conv_layers(create_generator(self.arch, **self.config))}
        changed = widths != default
        return GeneratorSpec(arch=self.arch, config=dict(self.config), widths=widths if changed else None)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a one-line error when this architecture cannot take an ``height``×``width`` input
        (a latent-input generator: cannot make ``height``×``width`` images)."""
        if self.io.is_latent:
            fixed = self.io.fixed_size
            if fixed is not None and (height, width) != tuple(fixed):
                raise PocketganError(f"{self.arch} makes {fixed[0]}x{fixed[1]} images from a latent; "
                                     f"--size {height}x{width} does not fit")  # fmt: skip
            return
        m = self.io.size_multiple
        if height <= 0 or width <= 0 or height % m or width % m:
            raise PocketganError(
                f"{self.arch} needs height and width that are positive multiples of {m}; got {height}x{width}"
            )

    def example_input(self, height: int | None = None, width: int | None = None, batch: int = 1) -> torch.Tensor:
        """Zeros of the input's shape: ``(batch, input_channels, height, width)`` (default 256 px, the size
        checked first), or ``(batch, z_dim)`` for a latent-input generator."""
        height = height or (self.io.fixed_size[0] if self.io.fixed_size else 256)
        width = width or (self.io.fixed_size[1] if self.io.fixed_size else height)
        self.check_input_size(height, width)
        return torch.zeros(self.io.input_shape(batch, (height, width)))


def _out_channels(module: nn.Module) -> int:
    return int(module.out_channels)


@contextmanager
def capture_features(model: nn.Module, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named submodules during forward passes inside the block."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise PocketganError(f"no module named {', '.join(missing)} in {type(model).__name__}")
    store: dict[str, torch.Tensor] = {}
    handles = [
        modules[n].register_forward_hook(lambda _m, _i, out, n=n: store.__setitem__(n, out)) for n in names
    ]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


OUTPUT_HEADS = ("tanh", "residual")
"""``tanh``: the image is ``tanh(last conv)`` (pix2pix). ``residual``: it is ``clip(input + last conv, -1, 1)``,
so the network learns only the change to its input (near-identity tasks such as stylization)."""


def check_output_head(arch: str, output: str, input_nc: int, output_nc: int) -> None:
    """One line for an unknown head, or a residual head whose input and output channels differ."""
    if output not in OUTPUT_HEADS:
        raise PocketganError(f"{arch}: output must be {' or '.join(OUTPUT_HEADS)}; got {output!r}")
    if output == "residual" and input_nc != output_nc:
        raise PocketganError(f"{arch}: output=residual needs input_nc == output_nc; got {input_nc} and {output_nc}")


def output_activation(output: str) -> nn.Module:
    """The last layer of the generator: ``Tanh`` or, for the residual head, nothing (an Identity)."""
    return nn.Tanh() if output == "tanh" else nn.Identity()


def apply_output_head(output: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The generator's image from its input ``x`` and its last layer's output ``y``."""
    return torch.clamp(x + y, -1.0, 1.0) if output == "residual" else y


def later_options(**values: tuple[Any, Any]) -> dict[str, Any]:
    """The options added after the first manifests, ``name=(value, default)``, that differ from their default.

    A generator records only these in its config, so a model directory written before an option existed
    keeps the same config (and cache keys) when rebuilt.
    """
    return {name: value for name, (value, default) in values.items() if value != default}


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``instance`` (affine=False, as pix2pix/CycleGAN ResNets) or ``batch``."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise PocketganError(f"unknown norm {kind!r}; choose instance or batch")
