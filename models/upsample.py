"""The 2× upsampling layer of the generators: transposed conv (the papers') or resize-conv.

``upsample="deconv"`` is junyanz's ``ConvTranspose2d`` (state-dict compatible with their
checkpoints). ``upsample="resize"`` is nearest-neighbour 2× upsampling followed by a 3×3
conv (Odena et al., "Deconvolution and Checkerboard Artifacts"): every output pixel sees
the same number of weights, so there is no checkerboard. :class:`ResizeConv2d` *is* a
``Conv2d`` (same parameter names and layout), so pruning, profiling and export treat it as one.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.core.errors import PocketganError

UPSAMPLING = ("deconv", "resize")


class ResizeConv2d(nn.Conv2d):
    """Nearest 2× upsampling, then a 3×3 stride-1 conv with zero padding 1 (``groups``: depthwise)."""

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1, bias=bias, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def check_upsample(arch: str, upsample: str) -> None:
    """One-line error unless ``upsample`` is one of :data:`UPSAMPLING`."""
    if upsample not in UPSAMPLING:
        raise PocketganError(f"{arch}: upsample must be one of {', '.join(UPSAMPLING)}; got {upsample!r}")


def upsampling_conv(
    upsample: str, in_channels: int, out_channels: int, *, kernel: int, bias: bool, groups: int = 1
) -> nn.Module:
    """A 2× upsampling conv: ``ConvTranspose2d(kernel, stride 2)`` (``deconv``) or :class:`ResizeConv2d`."""
    if upsample == "resize":
        return ResizeConv2d(in_channels, out_channels, bias=bias, groups=groups)
    padding, output_padding = (1, 0) if kernel == 4 else (1, 1)
    return nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=2, padding=padding,
                              output_padding=output_padding, bias=bias, groups=groups)  # fmt: skip


def separable_upsampling_conv(upsample: str, in_channels: int, out_channels: int, *, kernel: int,
                              bias: bool) -> nn.Sequential:  # fmt: skip
    """A 1×1 conv to ``out_channels`` at the low resolution, then a depthwise 2× upsampling conv.

    Mixing channels before upsampling costs a quarter of mixing them after; the width of the
    block is the 1×1 conv's (index 0), the depthwise conv follows it.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        upsampling_conv(upsample, out_channels, out_channels, kernel=kernel, bias=bias, groups=out_channels),
    )


def separable_downsampling_conv(in_channels: int, out_channels: int, *, bias: bool) -> nn.Sequential:
    """A depthwise 4×4 stride-2 conv, then a 1×1 conv to ``out_channels`` (the block's width, index 1)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 4, stride=2, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=bias),
    )
