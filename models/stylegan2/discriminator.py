"""The StyleGAN2 discriminator (residual architecture, minibatch standard deviation, NVlabs names).

``b{size}.fromrgb``, then one residual block per resolution (``b{r}.conv0``, ``b{r}.conv1``
(downsampling), ``b{r}.skip``), then the epilogue ``b4`` (``mbstd``, ``conv``, ``fc``, ``out``):
the layout of NVlabs' ``Discriminator`` and of rosinality's, so both checkpoints map onto it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.models.base import FeatureTap, WidthTable
from pocketgan.models.registry import register_discriminator
from pocketgan.models.stylegan2.configs import channels_at, resolutions, resolve_config
from pocketgan.models.stylegan2.layers import EqualConv2d, EqualLinear, lrelu_act


class DiscriminatorBlock(nn.Module):
    """``r → r/2``: two 3×3 convs (the second downsampling) plus a 1×1 downsampling skip, summed / √2."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int | None, clamp: float | None) -> None:
        super().__init__()
        self.clamp = clamp
        if img_channels is not None:
            self.fromrgb = EqualConv2d(img_channels, in_channels, 1)
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=2)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self, "fromrgb"):
            x = lrelu_act(self.fromrgb(x), clamp=self.clamp)
        y = self.skip(x)
        x = lrelu_act(self.conv1(lrelu_act(self.conv0(x), clamp=self.clamp)), clamp=self.clamp)
        return (x + y) * (1.0 / math.sqrt(2.0))


class MinibatchStd(nn.Module):
    """Appends the standard deviation over groups of ``group_size`` samples as ``num_channels`` extra channels."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise PocketganError(f"the StyleGAN2 discriminator needs a batch divisible by {g}; got {n}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 head: minibatch std, 3×3 conv, fully connected, one logit."""

    def __init__(self, channels: int, mbstd_group: int, clamp: float | None) -> None:
        super().__init__()
        self.clamp = clamp
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(channels + 1, channels, 3)
        self.fc = EqualLinear(channels * 16, channels)
        self.out = EqualLinear(channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = lrelu_act(self.conv(self.mbstd(x)), clamp=self.clamp)
        return self.out(lrelu_act(self.fc(x.flatten(1))))


class StyleGAN2Discriminator(nn.Module):
    """``forward(img (B, 3, size, size)) -> logits (B, 1)``; widths as the generator's config.

    ``widths`` overrides the channels at a resolution by block name (``{"b32": 8, "b4": 16}``:
    ``b{r}`` takes r-px features of that width; ``b4`` is the epilogue).
    """

    def __init__(self, *, img_channels: int = 3, mbstd_group: int = 4, widths: dict[str, int] | None = None,
                 **options: Any) -> None:  # fmt: skip
        super().__init__()
        cfg = resolve_config("stylegan2 discriminator", **options)
        self.size = cfg["size"]
        kept = ("size", "channel_base", "channel_max", "conv_clamp")
        self.config = {**{k: cfg[k] for k in kept}, "img_channels": img_channels, "mbstd_group": mbstd_group}
        table = WidthTable(widths)
        base, cmax = cfg["channel_base"], cfg["channel_max"]
        ch = {r: table(f"b{r}", channels_at(r, base, cmax)) for r in resolutions(self.size)}
        table.check_all_used("stylegan2 discriminator")
        if widths:
            self.config["widths"] = {f"b{r}": w for r, w in ch.items()}
        for res in reversed(resolutions(self.size)[1:]):
            first = img_channels if res == self.size else None
            setattr(self, f"b{res}", DiscriminatorBlock(ch[res], ch[res // 2], first, cfg["conv_clamp"]))
        self.b4 = DiscriminatorEpilogue(ch[4], mbstd_group, cfg["conv_clamp"])

    def blocks(self) -> list[DiscriminatorBlock]:
        """The residual blocks from ``size`` down to 8 px."""
        return [getattr(self, f"b{res}") for res in reversed(resolutions(self.size)[1:])]

    def forward(self, img: Tensor) -> Tensor:
        if img.ndim != 4 or tuple(img.shape[2:]) != (self.size, self.size):
            raise PocketganError(
                f"the StyleGAN2 discriminator takes (batch, 3, {self.size}, {self.size}) images; got {tuple(img.shape)}"
            )
        x = img
        for block in self.blocks():
            x = block(x)
        return self.b4(x)

    def feature_taps(self) -> list[FeatureTap]:
        """Each residual block's output (``b{r}`` makes r/2 px features; ``stride`` relative to the image)."""
        size = self.size
        return [
            FeatureTap(f"b{res}", int(getattr(self, f"b{res}").conv1.out_channels), size // (res // 2))
            for res in reversed(resolutions(size)[1:])
        ]


@register_discriminator("stylegan2")
def stylegan2_discriminator(**config: Any) -> StyleGAN2Discriminator:
    """StyleGAN2 discriminator: ``size``, ``channel_multiplier`` or ``channel_base``/``channel_max``,
    ``config``, ``conv_clamp``, ``mbstd_group`` (4), ``img_channels`` (3), ``widths`` (per block). Generator-only keys
    (``z_dim``, ``w_dim``, ``n_mlp``, ``lr_mlp``) are accepted and ignored, so one config builds both."""
    try:
        return StyleGAN2Discriminator(**config)
    except TypeError as exc:
        raise PocketganError(f"stylegan2 discriminator: {exc}") from None
