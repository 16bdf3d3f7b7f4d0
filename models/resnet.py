"""The pix2pix/CycleGAN ResNet generator family, plain and depthwise-separable ("Mobile ResNet").

Module names and parameter shapes match junyanz/pytorch-CycleGAN-and-pix2pix
``ResnetGenerator`` (``block="plain"``) and mit-han-lab/gan-compression
``MobileResnetGenerator`` (``block="separable"``), so their published state dicts load as is.
Every conv width can be overridden (``widths``), which is how pruned models rebuild;
``upsample=resize`` swaps the two transposed convs for resize-convs (no checkerboard), and
``output=residual`` makes the image ``clip(input + last conv, -1, 1)`` instead of ``tanh(last conv)``.
"""

from __future__ import annotations

from typing import Any

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
from pocketgan.models.upsample import check_upsample, upsampling_conv


class SeparableConv2d(nn.Module):
    """Depthwise k×k conv, norm, pointwise 1×1 conv (parameter names as in GAN Compression)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, bias: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, groups=in_channels, bias=bias),
            norm_layer(norm, in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``; ``inner`` is the width between the block's two convs."""

    def __init__(self, dim: int, inner: int, block: str, norm: str, dropout: float, bias: bool) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Module:
            if block == "separable":
                return SeparableConv2d(cin, cout, norm, bias)
            return nn.Conv2d(cin, cout, 3, bias=bias)

        layers: list[nn.Module] = [nn.ReflectionPad2d(1), conv(dim, inner), norm_layer(norm, inner), nn.ReLU()]
        # GAN Compression always keeps the Dropout slot; pix2pix only when dropout is on.
        if block == "separable" or dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), conv(inner, dim), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(Generator):
    """c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings, c7s1-3, tanh."""

    def __init__(
        self,
        arch: str,
        *,
        ngf: int = 64,
        n_blocks: int = 9,
        block: str = "plain",
        input_nc: int = 3,
        output_nc: int = 3,
        norm: str = "instance",
        dropout: float = 0.0,
        upsample: str = "deconv",
        output: str = "tanh",
        widths: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise PocketganError(f"{arch}: ngf must be >= 1 and n_blocks >= 0")
        if block not in ("plain", "separable"):
            raise PocketganError(f"{arch}: block must be plain or separable")
        check_upsample(arch, upsample)
        check_output_head(arch, output, input_nc, output_nc)
        self.output = output
        dropout = float(0.5 if dropout is True else dropout or 0.0)
        self.arch = arch
        self.config = dict(
            ngf=ngf, n_blocks=n_blocks, block=block, input_nc=input_nc, output_nc=output_nc, norm=norm, dropout=dropout
        )
        self.config |= later_options(upsample=(upsample, "deconv"), output=(output, "tanh"))
        self.io = IOSpec(input_channels=input_nc, output_channels=output_nc, size_multiple=4)
        w = WidthTable(widths)
        bias = norm == "instance"

        stem = w("model.1", ngf)
        down1 = w("model.4", ngf * 2)
        trunk = w("model.7", ngf * 4)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, stem, 7, bias=bias), norm_layer(norm, stem), nn.ReLU(),
            nn.Conv2d(stem, down1, 3, stride=2, padding=1, bias=bias), norm_layer(norm, down1), nn.ReLU(),
            nn.Conv2d(down1, trunk, 3, stride=2, padding=1, bias=bias), norm_layer(norm, trunk), nn.ReLU(),
        ]  # fmt: skip
        inner_conv = "conv_block.1.conv.2" if block == "separable" else "conv_block.1"
        for i in range(n_blocks):
            inner = w(f"model.{len(layers)}.{inner_conv}", trunk)
            layers.append(ResnetBlock(trunk, inner, block, norm, dropout, bias))
        up1 = w(f"model.{len(layers)}", ngf * 2)
        layers += [upsampling_conv(upsample, trunk, up1, kernel=3, bias=bias), norm_layer(norm, up1), nn.ReLU()]
        up2 = w(f"model.{len(layers)}", ngf)
        layers += [upsampling_conv(upsample, up1, up2, kernel=3, bias=bias), norm_layer(norm, up2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(up2, output_nc, 7), output_activation(output)]
        self.model = nn.Sequential(*layers)
        self._record_fixed_widths(w)
        w.check_all_used(arch)

    def _record_fixed_widths(self, w: WidthTable) -> None:
        # Widths tied to another layer (residual outputs, depthwise convs, the output conv) are
        # implied by the spec; mark them known so a recorded spec that lists them is accepted.
        for name, module in self.named_modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w.used.add(name)

    def forward(self, x: Tensor) -> Tensor:
        return apply_output_head(self.output, x, self.model(x))

    def feature_taps(self) -> list[FeatureTap]:
        """The trunk's entry and the ends of its thirds (GAN Compression's ``model.9/12/15/18`` for 9 blocks)."""
        n = self.config["n_blocks"]
        trunk = self.model[7].out_channels
        ends = sorted({max(1, round(n * k / 3)) for k in (1, 2, 3)}) if n else []
        return [FeatureTap("model.9", trunk, 4)] + [FeatureTap(f"model.{9 + e}", trunk, 4) for e in ends]


def _factory(arch: str, defaults: dict[str, Any]):
    def build(widths: dict[str, int] | None = None, **config: Any) -> ResnetGenerator:
        merged = {**defaults, **config}
        try:
            return ResnetGenerator(arch, widths=widths, **merged)
        except TypeError as exc:
            raise PocketganError(f"{arch}: {exc}") from None

    build.__doc__ = f"{arch}: ResnetGenerator with defaults {defaults}."
    return register_generator(arch)(build)


resnet9 = _factory("resnet9", {"ngf": 64, "n_blocks": 9})
resnet6 = _factory("resnet6", {"ngf": 64, "n_blocks": 6})
mobile_resnet = _factory("mobile-resnet", {"ngf": 16, "n_blocks": 9, "block": "separable"})
