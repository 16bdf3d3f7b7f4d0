"""The pix2pix U-Net generator (``unet256``: 8 downsamplings, ``unet128``: 7, ``unet64``: 6).

Built recursively like junyanz/pytorch-CycleGAN-and-pix2pix ``UnetSkipConnectionBlock``
so parameter names and shapes match their ``latest_net_G.pth``. Widths are overridable per conv;
``num_downs`` is a config option of every variant (``unet128:num_downs=6``), and
``upsample=resize`` swaps the transposed convs for resize-convs (no checkerboard).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import IOSpec
from pocketgan.models.base import FeatureTap, Generator, WidthTable, norm_layer
from pocketgan.models.registry import register_generator
from pocketgan.models.upsample import check_upsample, upsampling_conv


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
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        downconv = nn.Conv2d(x_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        up_in = inner_nc if submodule is None else submodule.out_channels
        if outermost:
            upconv = upsampling_conv(upsample, up_in, out_nc, kernel=4, bias=True)
            layers = [downconv, submodule, nn.ReLU(), upconv, nn.Tanh()]
        elif submodule is None:  # innermost
            upconv = upsampling_conv(upsample, up_in, out_nc, kernel=4, bias=bias)
            layers = [nn.LeakyReLU(0.2), downconv, nn.ReLU(), upconv, norm_layer(norm, out_nc)]
        else:
            upconv = upsampling_conv(upsample, up_in, out_nc, kernel=4, bias=bias)
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
        widths: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if num_downs < 5 or ngf < 1:
            raise PocketganError(f"{arch}: num_downs must be >= 5 and ngf >= 1")
        check_upsample(arch, upsample)
        self.arch = arch
        self.config = dict(num_downs=num_downs, ngf=ngf, input_nc=input_nc, output_nc=output_nc, norm=norm,
                           dropout=bool(dropout))  # fmt: skip
        if upsample != "deconv":  # the default stays out of the recorded config (older manifests)
            self.config["upsample"] = upsample
        self.io = IOSpec(input_channels=input_nc, output_channels=output_nc, size_multiple=2**num_downs)
        w = WidthTable(widths)
        # Level 0 is outermost. Default (outer, inner) widths per level as in junyanz's UnetGenerator.
        levels = [(output_nc, ngf), (ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
        levels += [(ngf * 8, ngf * 8)] * (num_downs - 4)
        prefixes = ["model"]
        for level in range(1, num_downs):
            prefixes.append(prefixes[-1] + (".model.1" if level == 1 else ".model.3"))
        # Input channels of each level's downconv: the previous level's downconv output.
        x_nc = [input_nc]
        for level in range(num_downs - 1):
            x_nc.append(w(self._down_name(prefixes[level], level), levels[level][1]))
        block: UnetBlock | None = None
        self._tap_levels: list[tuple[str, int, int]] = []
        for level in reversed(range(num_downs)):
            outer, inner = levels[level]
            inner = w(self._down_name(prefixes[level], level), inner)
            innermost = level == num_downs - 1
            up_name = prefixes[level] + (".model.3" if level == 0 or innermost else ".model.5")
            out = output_nc if level == 0 else w(up_name, outer)
            block = UnetBlock(x_nc[level], inner, out, block, outermost=level == 0, norm=norm,
                              upsample=upsample,
                              dropout=bool(dropout) and not innermost and level >= 4 and level < num_downs - 1)  # fmt: skip
            if 1 <= level <= 3:
                self._tap_levels.append((prefixes[level], block.out_channels, 2**level))
        self.model = block
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w.used.add(name)
        w.check_all_used(arch)

    @staticmethod
    def _down_name(prefix: str, level: int) -> str:
        return prefix + (".model.0" if level == 0 else ".model.1")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def feature_taps(self) -> list[FeatureTap]:
        """Decoder outputs (skip-concatenated) of levels 3, 2, 1: deep to shallow strides 8, 4, 2."""
        modules = dict(self.named_modules())
        taps = []
        for name, _, stride in self._tap_levels:
            block = modules[name].model  # channels now, not at construction: pruning in place changes them
            taps.append(FeatureTap(name, block[1].in_channels + block[5].out_channels, stride))
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
