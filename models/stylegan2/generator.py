"""The StyleGAN2 generator: mapping network, modulated-conv synthesis with noise inputs and toRGB skips.

Parameter names follow NVlabs' ``Generator`` (``mapping.fc0``, ``synthesis.b4.const``,
``synthesis.b8.conv0.affine``, ``synthesis.b8.torgb``) with the conv weights inside plain conv
modules (``synthesis.b8.conv0.conv.weight``), so checkpoints of NVlabs and rosinality map onto it
tensor for tensor (see :mod:`pocketgan.models.stylegan2.checkpoints`). One width-parametrized
family covers 8–1024 px, any channel base/multiplier and per-layer (pruned) widths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.contract import GeneratorSpec, IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.models.base import FeatureTap, Generator, WidthTable
from pocketgan.models.registry import register_generator
from pocketgan.models.stylegan2.configs import default_widths, num_ws, resolutions, resolve_config
from pocketgan.models.stylegan2.layers import (
    Blur,
    ConstantInput,
    Demodulation,
    EqualLinear,
    add_bias,
    conv_fan_in,
    lrelu_act,
)

NOISE_MODES = ("const", "random", "none")


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Pixel norm of the latent: ``x / sqrt(mean(x^2) + eps)`` over features."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z → w: pixel norm, then ``n_mlp`` equalized Linear + leaky ReLU layers at learning rate × ``lr_mlp``.

    In training mode each forward moves ``w_avg`` (the running mean of w, for truncation) towards
    the batch mean with decay ``w_avg_beta`` (NVlabs: 0.995).
    """

    def __init__(self, z_dim: int, w_dim: int, hidden: Sequence[int], lr_mlp: float, w_avg_beta: float = 0.995):
        super().__init__()
        self.w_avg_beta = w_avg_beta
        features = [z_dim, *hidden, w_dim]
        for i in range(len(features) - 1):
            setattr(self, f"fc{i}", EqualLinear(features[i], features[i + 1], lr_mul=lr_mlp))
        self.num_layers = len(features) - 1
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor) -> Tensor:
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = lrelu_act(getattr(self, f"fc{i}")(x))
        if self.training and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (non-fused: style-scaled input, one shared weight, demodulated output),
    noise input, bias, leaky ReLU. ``up=True``: transposed conv stride 2 + blur (NVlabs/rosinality)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool,
                 conv_clamp: float | None) -> None:  # fmt: skip
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        if up:
            self.conv: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, bias=False)
            self.blur = Blur((1, 1), gain=4.0)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        nn.init.normal_(self.conv.weight)
        self.demod = Demodulation()
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def weight_oikk(self) -> Tensor:
        """The conv weight as ``(out, in, k, k)`` whatever the conv type."""
        return self.conv.weight.transpose(0, 1) if self.up else self.conv.weight

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const", noise: Tensor | None = None) -> Tensor:
        styles = self.affine(w) * (1.0 / conv_fan_in(self.conv) ** 0.5)
        x = self.conv(x * styles.reshape(styles.shape[0], -1, 1, 1))
        if self.up:
            x = self.blur(x)
        x = x * self.demod(styles, self.weight_oikk()).reshape(x.shape[0], -1, 1, 1)
        noise = self.noise(x, noise_mode) if noise is None else noise
        if noise is not None:
            x = x + noise.reshape(-1, 1, self.resolution, self.resolution) * self.noise_strength
        return lrelu_act(x, self.bias, self.conv_clamp)

    def noise(self, x: Tensor, noise_mode: str) -> Tensor | None:
        """The noise image for ``noise_mode``: the stored buffer, a fresh draw, or none."""
        if noise_mode == "const":
            return self.noise_const
        if noise_mode == "random":
            return torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        return None


class ToRGBLayer(nn.Module):
    """Modulated 1×1 conv to RGB without demodulation, plus bias."""

    def __init__(self, in_channels: int, w_dim: int, img_channels: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = nn.Conv2d(in_channels, img_channels, 1, bias=False)
        nn.init.normal_(self.conv.weight)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * (1.0 / conv_fan_in(self.conv) ** 0.5)
        x = self.conv(x * styles.reshape(styles.shape[0], -1, 1, 1))
        return add_bias(x, self.bias, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | upsampling conv0), conv1, toRGB added to the upsampled skip image."""

    def __init__(self, res: int, in_channels: int, mid: int, out: int, w_dim: int, img_channels: int,
                 conv_clamp: float | None) -> None:  # fmt: skip
        super().__init__()
        self.resolution = res
        if res == 4:
            self.const = ConstantInput(in_channels, res)
        else:
            self.conv0 = SynthesisLayer(in_channels, mid, w_dim, res, up=True, conv_clamp=conv_clamp)
            self.upsample = Blur(up=2)
        self.conv1 = SynthesisLayer(mid, out, w_dim, res, up=False, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out, w_dim, img_channels, conv_clamp)

    def layers(self) -> list[SynthesisLayer]:
        """The block's noise-taking layers, in order."""
        return [self.conv1] if self.resolution == 4 else [self.conv0, self.conv1]

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str,
                noise: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:  # fmt: skip
        if self.resolution == 4:
            x = self.const(ws.shape[0])
        for i, layer in enumerate(self.layers()):
            x = layer(x, ws[:, i], noise_mode, noise[i])
        y = self.torgb(x, ws[:, len(self.layers())])
        return x, y if img is None else self.upsample(img) + y


class SynthesisNetwork(nn.Module):
    """w (or one w per layer) → image, block by block from 4×4 to ``size``."""

    def __init__(self, size: int, w_dim: int, widths: dict[str, int], img_channels: int, conv_clamp: float | None):
        super().__init__()
        self.size = size
        self.w_dim = w_dim
        self.num_ws = num_ws(size)
        prev = widths["synthesis.b4.const"]
        for res in resolutions(size):
            mid = widths[f"synthesis.b{res}.conv0.conv"] if res > 4 else prev
            out = widths[f"synthesis.b{res}.conv1.conv"]
            setattr(self, f"b{res}", SynthesisBlock(res, prev, mid, out, w_dim, img_channels, conv_clamp))
            prev = out

    def blocks(self) -> list[SynthesisBlock]:
        """The blocks from 4 px up."""
        return [getattr(self, f"b{res}") for res in resolutions(self.size)]

    def noise_layers(self) -> list[SynthesisLayer]:
        """Every layer that takes a noise image, in the order ``noise=`` lists them (rosinality's ``noises``)."""
        return [layer for block in self.blocks() for layer in block.layers()]

    def forward(self, ws: Tensor, noise_mode: str = "const", noise: Sequence[Tensor] | None = None) -> Tensor:
        """``ws``: ``(B, w_dim)`` (broadcast) or ``(B, num_ws, w_dim)``; ``noise``: one image per noise layer."""
        ws = self._broadcast(ws)
        if noise_mode not in NOISE_MODES:
            raise PocketganError(f"noise_mode must be one of {', '.join(NOISE_MODES)}; got {noise_mode!r}")
        layers = self.noise_layers()
        if noise is not None and len(noise) != len(layers):
            raise PocketganError(f"synthesis takes {len(layers)} noise images; got {len(noise)}")
        noise_list = list(noise) if noise is not None else [None] * len(layers)
        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks():
            n = len(block.layers())
            x, img = block(x, img, ws[:, w_idx : w_idx + n + 1], noise_mode, noise_list[n_idx : n_idx + n])
            w_idx, n_idx = w_idx + n, n_idx + n
        return img

    def _broadcast(self, ws: Tensor) -> Tensor:
        if ws.ndim == 2 and ws.shape[1] == self.w_dim:
            return ws.unsqueeze(1).expand(-1, self.num_ws, -1)
        if ws.ndim == 3 and tuple(ws.shape[1:]) == (self.num_ws, self.w_dim):
            return ws
        raise PocketganError(
            f"synthesis takes w of shape (batch, {self.w_dim}) or (batch, {self.num_ws}, {self.w_dim}); "
            f"got {tuple(ws.shape)}"
        )


class StyleGAN2Generator(Generator):
    """StyleGAN2 (config F / stylegan2-ada): ``forward(z, truncation=1.0, noise_mode="const") -> image``.

    The image is ``(B, 3, size, size)``, nominally in [-1, 1] (not clamped, as NVlabs and rosinality).
    ``noise_mode``: ``const`` uses the stored noise buffers (deterministic: what export and parity
    use), ``random`` draws new noise (training), ``none`` adds none. ``truncation`` ψ pulls w towards
    ``w_avg``: ``w_avg + ψ (w - w_avg)``.
    """

    arch = "stylegan2"

    def __init__(self, *, widths: dict[str, int] | None = None, img_channels: int = 3, **options: Any) -> None:
        super().__init__()
        cfg = resolve_config(self.arch, **options)
        self.config = cfg
        self.size, self.z_dim, self.w_dim = cfg["size"], cfg["z_dim"], cfg["w_dim"]
        self.img_channels = img_channels
        if img_channels != 3:
            self.config = {**cfg, "img_channels": img_channels}
        self.io = IOSpec.latent(self.z_dim, self.size, output_channels=img_channels)
        table = WidthTable(widths)
        resolved = {key: table(key, value) for key, value in default_widths(cfg).items()}
        table.check_all_used(self.arch)
        hidden = [resolved[f"mapping.fc{i}"] for i in range(cfg["n_mlp"] - 1)]
        self.mapping = MappingNetwork(self.z_dim, self.w_dim, hidden, cfg["lr_mlp"])
        self.synthesis = SynthesisNetwork(self.size, self.w_dim, resolved, img_channels, cfg["conv_clamp"])
        self.num_ws = self.synthesis.num_ws

    @property
    def w_avg(self) -> Tensor:
        """Running mean of w (``(w_dim,)``), the centre of truncation."""
        return self.mapping.w_avg

    def truncate(self, w: Tensor, truncation: float = 1.0) -> Tensor:
        """``w_avg + ψ (w - w_avg)`` (identity at ψ = 1)."""
        if truncation == 1:
            return w
        return self.w_avg + truncation * (w - self.w_avg)

    def forward(self, z: Tensor, truncation: float = 1.0, noise_mode: str = "const",
                noise: Sequence[Tensor] | None = None) -> Tensor:  # fmt: skip
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise PocketganError(f"{self.arch} takes z of shape (batch, {self.z_dim}); got {tuple(z.shape)}")
        w = self.truncate(self.mapping(z), truncation)
        return self.synthesis(w, noise_mode=noise_mode, noise=noise)

    def const_noise(self) -> list[Tensor]:
        """The stored noise images ``(1, 1, r, r)`` in the order ``synthesis(noise=...)`` takes them."""
        return [layer.noise_const.reshape(1, 1, layer.resolution, layer.resolution)
                for layer in self.synthesis.noise_layers()]  # fmt: skip

    def current_widths(self) -> dict[str, int]:
        """Every per-layer width key (see :mod:`~pocketgan.models.stylegan2.configs`) at its current value."""
        widths: dict[str, int] = {}
        for i in range(self.mapping.num_layers - 1):
            widths[f"mapping.fc{i}"] = getattr(self.mapping, f"fc{i}").out_features
        for block in self.synthesis.blocks():
            prefix = f"synthesis.b{block.resolution}"
            if block.resolution == 4:
                widths[f"{prefix}.const"] = int(block.const.input.shape[1])
            for name in ("conv0", "conv1")[2 - len(block.layers()):]:
                widths[f"{prefix}.{name}.conv"] = int(getattr(block, name).conv.out_channels)
        return widths

    def spec(self) -> GeneratorSpec:
        """Arch, config and, once any differs from the config's default, every per-layer width."""
        widths = self.current_widths()
        changed = widths != default_widths(self.config)
        return GeneratorSpec(arch=self.arch, config=dict(self.config), widths=widths if changed else None)

    def feature_taps(self) -> list[FeatureTap]:
        """Each block's last conv output (4 px up); ``stride`` is output pixels per feature pixel."""
        return [
            FeatureTap(f"synthesis.b{b.resolution}.conv1", int(b.conv1.conv.out_channels), self.size // b.resolution)
            for b in self.synthesis.blocks()
        ]


@register_generator("stylegan2")
def stylegan2(widths: dict[str, int] | None = None, **config: Any) -> StyleGAN2Generator:
    """StyleGAN2 generator: ``size``, ``z_dim``, ``w_dim``, ``n_mlp``, ``channel_multiplier`` or
    ``channel_base``/``channel_max``, ``lr_mlp``, ``conv_clamp``, ``config`` (paper256, paper512, stylegan2)."""
    try:
        return StyleGAN2Generator(widths=widths, **config)
    except TypeError as exc:
        raise PocketganError(f"stylegan2: {exc}") from None
