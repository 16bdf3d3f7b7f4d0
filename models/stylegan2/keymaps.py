"""Tensor names of StyleGAN2 checkpoints (rosinality, NVlabs, pocketgan) mapped onto pocketgan's modules.

A :class:`TensorSource` hands out a checkpoint's tensors by name and remembers which were used,
so a conversion can prove that every tensor of the file went somewhere (:meth:`check_all_used`).
The resampling filters the files store (rosinality's ``blur.kernel``, NVlabs' ``resample_filter``)
are fixed constants here: they are checked against StyleGAN2's ``[1, 3, 3, 1]`` filter, not loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.models.stylegan2.layers import fir_kernel

Transform = Callable[[Tensor], Tensor]


class TensorSource:
    """A checkpoint's tensors (``tensors``) being converted to pocketgan names (``out``)."""

    def __init__(self, tensors: dict[str, Tensor], where: str) -> None:
        self.tensors = tensors
        self.where = where
        self.used: set[str] = set()
        self.out: dict[str, Tensor] = {}
        self.origin: dict[str, str] = {}  # pocketgan name -> checkpoint name, for messages

    def has(self, key: str) -> bool:
        """True when the checkpoint holds a tensor named ``key``."""
        return key in self.tensors

    def take(self, dst: str, src: str, transform: Transform | None = None, *, optional: bool = False) -> None:
        """``out[dst] = transform(tensors[src])``; a missing ``src`` is one line unless ``optional``."""
        if src not in self.tensors:
            if optional:
                return
            raise PocketganError(f"{self.where}: missing tensor {src} (needed for {dst})")
        tensor = self.tensors[src]
        try:
            self.out[dst] = transform(tensor) if transform else tensor
        except RuntimeError:
            raise PocketganError(f"{self.where}: {src} has an unexpected shape {tuple(tensor.shape)}") from None
        self.used.add(src)
        self.origin[dst] = src

    def filter(self, src: str) -> None:
        """Check (if present) a stored resampling filter: it must be StyleGAN2's ``[1, 3, 3, 1]`` filter."""
        if src not in self.tensors:
            return
        k = self.tensors[src].float()
        expected = fir_kernel().reshape(4, 4)
        if k.shape != (4, 4) or not torch.allclose(k / k.sum(), expected, atol=1e-6):
            raise PocketganError(f"{self.where}: {src} is not StyleGAN2's [1, 3, 3, 1] resampling filter")
        self.used.add(src)

    def count(self, pattern: str, start: int = 0) -> int:
        """How many consecutive ``pattern.format(i)`` keys exist from ``i = start``."""
        n = 0
        while pattern.format(start + n) in self.tensors:
            n += 1
        return n

    def check_all_used(self) -> None:
        """One line naming the tensors no conversion rule consumed."""
        unused = sorted(set(self.tensors) - self.used)
        if unused:
            more = f" (+{len(unused) - 3} more)" if len(unused) > 3 else ""
            raise PocketganError(
                f"{self.where}: tensors not part of a StyleGAN2 of this layout: {', '.join(unused[:3])}{more}"
            )


def _squeeze0(t: Tensor) -> Tensor:
    return t.squeeze(0)


def _up_weight(t: Tensor) -> Tensor:  # (out, in, k, k) -> ConvTranspose2d's (in, out, k, k)
    return t.transpose(0, 1).contiguous()


def _scalar(t: Tensor) -> Tensor:
    return t.reshape(())


def _flat(t: Tensor) -> Tensor:
    return t.reshape(-1)


# --------------------------------------------------------------------------------------- rosinality


def rosinality_generator(src: TensorSource) -> None:
    """rosinality/stylegan2-pytorch ``Generator`` (``style.*``, ``conv1``, ``convs.*``, ``to_rgbs.*``, ``noises.*``)."""
    n_mlp = src.count("style.{}.weight", start=1)
    for i in range(n_mlp):
        src.take(f"mapping.fc{i}.weight", f"style.{i + 1}.weight")
        src.take(f"mapping.fc{i}.bias", f"style.{i + 1}.bias")
    src.take("synthesis.b4.const.input", "input.input")
    layers = ["synthesis.b4.conv1"]
    _rosinality_styled(src, "synthesis.b4.conv1", "conv1", up=False)
    _rosinality_torgb(src, "synthesis.b4.torgb", "to_rgb1")
    for j in range(src.count("to_rgbs.{}.conv.weight")):
        res = 2 ** (j + 3)
        _rosinality_styled(src, f"synthesis.b{res}.conv0", f"convs.{2 * j}", up=True)
        _rosinality_styled(src, f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", up=False)
        _rosinality_torgb(src, f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
        src.filter(f"to_rgbs.{j}.upsample.kernel")
        layers += [f"synthesis.b{res}.conv0", f"synthesis.b{res}.conv1"]
    for i, layer in enumerate(layers):  # rosinality's stored noise, one buffer per layer
        src.take(f"{layer}.noise_const", f"noises.noise_{i}", lambda t: t.reshape(t.shape[-2:]), optional=True)


def _rosinality_styled(src: TensorSource, dst: str, prefix: str, *, up: bool) -> None:
    src.take(f"{dst}.conv.weight", f"{prefix}.conv.weight", (lambda t: _up_weight(t.squeeze(0))) if up else _squeeze0)
    src.take(f"{dst}.affine.weight", f"{prefix}.conv.modulation.weight")
    src.take(f"{dst}.affine.bias", f"{prefix}.conv.modulation.bias")
    src.take(f"{dst}.noise_strength", f"{prefix}.noise.weight", _scalar)
    src.take(f"{dst}.bias", f"{prefix}.activate.bias")
    if up:
        src.filter(f"{prefix}.conv.blur.kernel")


def _rosinality_torgb(src: TensorSource, dst: str, prefix: str) -> None:
    src.take(f"{dst}.conv.weight", f"{prefix}.conv.weight", _squeeze0)
    src.take(f"{dst}.affine.weight", f"{prefix}.conv.modulation.weight")
    src.take(f"{dst}.affine.bias", f"{prefix}.conv.modulation.bias")
    src.take(f"{dst}.bias", f"{prefix}.bias", _flat)


def rosinality_discriminator(src: TensorSource) -> None:
    """rosinality ``Discriminator`` (``convs.0`` fromRGB, ``convs.k`` ResBlocks, ``final_conv``, ``final_linear``)."""
    n = src.count("convs.{}.conv1.0.weight", start=1)
    size = 4 * 2**n
    src.take(f"b{size}.fromrgb.weight", "convs.0.0.weight")
    src.take(f"b{size}.fromrgb.bias", "convs.0.1.bias")
    for k in range(1, n + 1):
        res, p = size >> (k - 1), f"convs.{k}"
        src.take(f"b{res}.conv0.weight", f"{p}.conv1.0.weight")
        src.take(f"b{res}.conv0.bias", f"{p}.conv1.1.bias")
        src.take(f"b{res}.conv1.weight", f"{p}.conv2.1.weight")
        src.take(f"b{res}.conv1.bias", f"{p}.conv2.2.bias")
        src.take(f"b{res}.skip.weight", f"{p}.skip.1.weight")
        src.filter(f"{p}.conv2.0.kernel")
        src.filter(f"{p}.skip.0.kernel")
    src.take("b4.conv.weight", "final_conv.0.weight")
    src.take("b4.conv.bias", "final_conv.1.bias")
    for i, name in enumerate(("fc", "out")):
        src.take(f"b4.{name}.weight", f"final_linear.{i}.weight")
        src.take(f"b4.{name}.bias", f"final_linear.{i}.bias")


# --------------------------------------------------------------------------------------- NVlabs

_STYLEGAN3_LAYER = re.compile(r"synthesis\.(input\.|L\d+_)")


def nvlabs_generator(src: TensorSource) -> None:
    """NVlabs ``Generator`` state (stylegan2-ada-pytorch, stylegan3's ``networks_stylegan2``)."""
    if any(_STYLEGAN3_LAYER.match(k) for k in src.tensors):
        raise PocketganError(
            f"{src.where}: a StyleGAN3 (alias-free) generator; pocketgan imports StyleGAN2 networks "
            "(stylegan2-ada-pytorch, or stylegan3's stylegan2 configuration)"
        )
    _refuse_conditional(src, "mapping.embed.weight")
    for i in range(src.count("mapping.fc{}.weight")):
        src.take(f"mapping.fc{i}.weight", f"mapping.fc{i}.weight")
        src.take(f"mapping.fc{i}.bias", f"mapping.fc{i}.bias")
    src.take("mapping.w_avg", "mapping.w_avg", optional=True)
    for res in _resolutions(src, r"synthesis\.b(\d+)\."):
        p = f"synthesis.b{res}"
        src.filter(f"{p}.resample_filter")
        if res == 4:
            src.take(f"{p}.const.input", f"{p}.const", lambda t: t.unsqueeze(0))
        else:
            _nvlabs_layer(src, f"{p}.conv0", up=True)
        _nvlabs_layer(src, f"{p}.conv1", up=False)
        for name in ("affine.weight", "affine.bias", "bias"):
            src.take(f"{p}.torgb.{name}", f"{p}.torgb.{name}")
        src.take(f"{p}.torgb.conv.weight", f"{p}.torgb.weight")


def _nvlabs_layer(src: TensorSource, p: str, *, up: bool) -> None:
    for name in ("affine.weight", "affine.bias", "noise_const", "noise_strength", "bias"):
        src.take(f"{p}.{name}", f"{p}.{name}")
    src.take(f"{p}.conv.weight", f"{p}.weight", _up_weight if up else None)
    src.filter(f"{p}.resample_filter")


def nvlabs_discriminator(src: TensorSource) -> None:
    """NVlabs ``Discriminator`` state (resnet architecture): names as pocketgan's, filters checked."""
    _refuse_conditional(src, "mapping.fc0.weight")
    for key in list(src.tensors):
        if key.endswith("resample_filter"):
            src.filter(key)
        else:
            src.take(key, key)


def _refuse_conditional(src: TensorSource, key: str) -> None:
    if src.has(key):
        raise PocketganError(f"{src.where}: a class-conditional network ({key}); pocketgan imports unconditional ones")


def _resolutions(src: TensorSource, pattern: str) -> list[int]:
    found = {int(m.group(1)) for k in src.tensors if (m := re.match(pattern, k))}
    return sorted(found)


# --------------------------------------------------------------------------------------- detection


def native_identity(src: TensorSource) -> None:
    """A pocketgan state dict: every tensor under its own name."""
    for key in list(src.tensors):
        src.take(key, key)


#: Generator layouts by a tensor only that layout has, tried in order.
GENERATOR_LAYOUTS: tuple[tuple[str, str, Callable[[TensorSource], None]], ...] = (
    ("pocketgan", "synthesis.b4.const.input", native_identity),
    ("rosinality", "style.1.weight", rosinality_generator),
    ("nvlabs", "synthesis.b4.const", nvlabs_generator),
)
DISCRIMINATOR_LAYOUTS: tuple[tuple[str, str, Callable[[TensorSource], None]], ...] = (
    ("rosinality", "final_linear.0.weight", rosinality_discriminator),
    ("pocketgan/nvlabs", "b4.out.weight", nvlabs_discriminator),
)


def convert(tensors: dict[str, Tensor], where: str, what: str) -> TensorSource:
    """Convert a generator (``what="generator"``) or discriminator state to pocketgan names, every tensor used."""
    layouts = GENERATOR_LAYOUTS if what == "generator" else DISCRIMINATOR_LAYOUTS
    for _name, marker, rule in layouts:
        if marker in tensors:
            src = TensorSource(tensors, where)
            rule(src)
            src.check_all_used()
            return src
    sample = ", ".join(list(tensors)[:3]) or "no tensors"
    markers = " or ".join(f"{m} ({n})" for n, m, _ in layouts)
    raise PocketganError(f"{where}: not a StyleGAN2 {what} checkpoint (no {markers}; found {sample})")
