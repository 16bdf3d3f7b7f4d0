"""The pix2pix U-Net generator (``unet256``: 8 downsamplings, ``unet128``: 7, ``unet64``: 6).

Built recursively like junyanz/pytorch-CycleGAN-and-pix2pix ``UnetSkipConnectionBlock``
so parameter names and shapes match their ``latest_net_G.pth``. Widths are overridable per conv;
``num_downs`` is a config option of every variant (``unet128:num_downs=6``), and
``upsample=resize`` swaps the transposed convs for resize-convs (no checkerboard), and
``output=residual`` makes the image ``clip(input + last conv, -1, 1)`` instead of ``tanh(last conv)``.
``block=separable`` builds every down- and upsampling conv depthwise-separably (a depthwise strided
conv and a 1×1 conv; the 1×1 conv carries the layer's width), a U-Net student with several times
the channels of a plain one at the same MACs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import IOSpec
from pocketgan.models.base import (
    FeatureTap,
    Generator,
    WidthTable,
    apply_output_head,
    check_output_head,
    later_options,
    norm_layer,
    output_activation,
)
from pocketgan.models.registry import register_generator
from pocketgan.models.upsample import (
    check_upsample,
    separable_downsampling_conv,
    separable_upsampling_conv,
    upsampling_conv,
)

BLOCKS = ("plain", "separable")


class UnetBlock(nn.Module):
    """One level: ``x → [down → submodule → up]``, concatenated with ``x`` unless outermost."""

    def __init__(
        self,
        x_nc: int,
        inner_nc: int,
        out_nc: int,
        submodule: UnetBlock | None,
        *,
        outermost: bool,
        norm: str,
        dropout: bool,
        upsample: str = "deconv",
        output: str = "tanh",
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        # The outermost downconv reads the image itself (3 channels): it stays plain, and cheap.
        down = separable_downsampling_conv if separable and not outermost else _plain_downsampling_conv
        up = separable_upsampling_conv if separable else upsampling_conv
        downconv = down(x_nc, inner_nc, bias=bias)
        up_in = inner_nc if submodule is None else submodule.out_channels
        if outermost:
            upconv = up(upsample, up_in, out_nc, kernel=4, bias=True)
            layers = [downconv, submodule, nn.ReLU(), upconv, output_activation(output)]
        elif submodule is None:  # innermost
            upconv = up(upsample, up_in, out_nc, kernel=4, bias=bias)
            layers = [nn.LeakyReLU(0.2), downconv, nn.ReLU(), upconv, norm_layer(norm, out_nc)]
        else:
            upconv = up(upsample, up_in, out_nc, kernel=4, bias=bias)
            layers = [nn.LeakyReLU(0.2), downconv, norm_layer(norm, inner_nc), submodule,
                      nn.ReLU(), upconv, norm_layer(norm, out_nc)]  # fmt: skip
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)
        self.out_channels = out_nc if outermost else x_nc + out_nc

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def _plain_downsampling_conv(in_channels: int, out_channels: int, *, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)


def _first_conv(layer: nn.Module) -> nn.Module:
    return layer[0] if isinstance(layer, nn.Sequential) else layer


def _last_conv(layer: nn.Module) -> nn.Module:
    return layer[-1] if isinstance(layer, nn.Sequential) else layer


class UnetGenerator(Generator):
    """``num_downs`` levels; level widths ngf, 2ngf, 4ngf, then 8ngf."""

    def __init__(
        self,
        arch: str,
        *,
        num_downs: int = 8,
        ngf: int = 64,
        input_nc: int = 3,
        output_nc: int = 3,
        norm: str = "batch",
        dropout: bool = False,
        upsample: str = "deconv",
        output: str = "tanh",
        block: str = "plain",
        widths: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if num_downs < 5 or ngf < 1:
            raise PocketganError(f"{arch}: num_downs must be >= 5 and ngf >= 1")
        if block not in BLOCKS:
            raise PocketganError(f"{arch}: block must be {' or '.join(BLOCKS)}; got {block!r}")
        check_upsample(arch, upsample)
        check_output_head(arch, output, input_nc, output_nc)
        self.output = output
        self.arch = arch
        self.config = dict(num_downs=num_downs, ngf=ngf, input_nc=input_nc, output_nc=output_nc, norm=norm,
                           dropout=bool(dropout))  # fmt: skip
        self.config |= later_options(upsample=(upsample, "deconv"), output=(output, "tanh"), block=(block, "plain"))
        self.io = IOSpec(input_channels=input_nc, output_channels=output_nc, size_multiple=2**num_downs)
        w = WidthTable(widths)
        self.model = self._build_levels(w, ngf, dict(norm=norm, upsample=upsample, output=output,
                                                     separable=block == "separable"), bool(dropout))  # fmt: skip
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w.used.add(name)
        w.check_all_used(arch)

    def _build_levels(self, w: WidthTable, ngf: int, options: dict[str, Any], dropout: bool) -> UnetBlock:
        """The nested blocks, innermost first; widths from ``w`` (defaults: junyanz's per-level widths)."""
        num_downs, input_nc, output_nc = self.config["num_downs"], self.config["input_nc"], self.config["output_nc"]
        # Level 0 is outermost. Default (outer, inner) widths per level as in junyanz's UnetGenerator.
        levels = [(output_nc, ngf), (ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
        levels += [(ngf * 8, ngf * 8)] * (num_downs - 4)
        down_suffix, up_suffix = (".1", ".0") if options["separable"] else ("", "")  # the conv carrying the width
        prefixes = ["model"]
        for level in range(1, num_downs):
            prefixes.append(prefixes[-1] + (".model.1" if level == 1 else ".model.3"))
        down_name = [self._down_name(p, level) + (down_suffix if level else "") for level, p in enumerate(prefixes)]
        # Input channels of each level's downconv: the previous level's downconv output.
        x_nc = [input_nc]
        for level in range(num_downs - 1):
            x_nc.append(w(down_name[level], levels[level][1]))
        node: UnetBlock | None = None
        self._tap_levels: list[tuple[str, int, int]] = []
        for level in reversed(range(num_downs)):
            outer, inner = levels[level]
            inner = w(down_name[level], inner)
            innermost = level == num_downs - 1
            up_name = prefixes[level] + (".model.3" if level == 0 or innermost else ".model.5")
            out = output_nc if level == 0 else w(up_name + up_suffix, outer)
            node = UnetBlock(x_nc[level], inner, out, node, outermost=level == 0, **options,
                             dropout=dropout and not innermost and level >= 4 and level < num_downs - 1)  # fmt: skip
            if 1 <= level <= 3:
                self._tap_levels.append((prefixes[level], node.out_channels, 2**level))
        assert node is not None
        return node

    @staticmethod
    def _down_name(prefix: str, level: int) -> str:
        return prefix + (".model.0" if level == 0 else ".model.1")

    def forward(self, x: Tensor) -> Tensor:
        return apply_output_head(self.output, x, self.model(x))

    def feature_taps(self) -> list[FeatureTap]:
        """Decoder outputs (skip-concatenated) of levels 3, 2, 1: deep to shallow strides 8, 4, 2."""
        modules = dict(self.named_modules())
        taps = []
        for name, _, stride in self._tap_levels:
            block = modules[name].model  # channels now, not at construction: pruning in place changes them
            channels = _first_conv(block[1]).in_channels + _last_conv(block[5]).out_channels
            taps.append(FeatureTap(name, channels, stride))
        return taps


def _factory(arch: str, num_downs: int):
    def build(widths: dict[str, int] | None = None, **config: Any) -> UnetGenerator:
        try:
            return UnetGenerator(arch, widths=widths, **{"num_downs": num_downs, **config})
        except TypeError as exc:
            raise PocketganError(f"{arch}: {exc}") from None

    build.__doc__ = f"{arch}: the pix2pix U-Net with {num_downs} downsamplings."
    return register_generator(arch)(build)


unet256 = _factory("unet256", 8)
unet128 = _factory("unet128", 7)
unet64 = _factory("unet64", 6)
