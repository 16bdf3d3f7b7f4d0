"""``fast-resnet``: a ResNet student laid out for measured CPU and phone-runtime latency, not for MACs alone.

Where ``mobile-resnet`` (GAN Compression / OMGD's student) spends its time is measured, not guessed
(``benchmarks/fast_student.py``): InstanceNorm between every pair of convs (a reduction over the
whole feature map that no runtime fuses into the conv), a 7×7 conv on 3 channels at full resolution
at both ends (~30 % of its MACs, at a channel count the SIMD kernels waste), transposed convs (the
LiteRT / CoreML traps) and depthwise convs (memory-bound). Each change is a config option, so the
ablation switches them one at a time; the defaults are what the measurements kept:

- ``norm``: ``batch`` (trained by the distillers, folded into the preceding conv at export: the
  deployed graph is Conv+ReLU only), ``none``, or ``instance`` (the ablation's starting point).
- ``stem``: ``s2d`` (space-to-depth: ``PixelUnshuffle(4)`` and one 3×3 conv straight to the trunk at
  stride 4, no full- or half-resolution conv), or ``conv`` (mobile-resnet's c7s1 + two stride-2 convs).
- ``upsample``: ``shuffle`` (sub-pixel: a 3×3 conv to 4× the channels, ``PixelShuffle(2)``, twice;
  the last conv makes the 12 channels of the 2×2 output pixels), or ``deconv`` (two ConvTranspose2d
  and a c7s1-3 head, as mobile-resnet).
- ``block``: ``dense`` (two 3×3 convs) or ``separable`` (depthwise 3×3 + 1×1, as mobile-resnet).
- Zero padding inside the convs everywhere (a ReflectionPad2d is a separate copy of the tensor that
  no runtime fuses); every conv is followed by its norm and a ReLU in that order (Conv+BN+ReLU is
  one fused kernel in onnxruntime, OpenVINO, XNNPACK and ncnn); widths are ``ngf`` multiples (16, 64
  at the default ``ngf`` 16: whole AVX2/AVX-512 and NEON vectors).

Measured (README, "fast-resnet"; 256×256, 2 threads, a quiet 2-core EPYC, all timed in one interleaved
run): 657 M fvcore MACs against mobile-resnet's 1.01 G, 4.2× faster than it on onnxruntime (6.0 vs 25.1
ms) and 2.8× on OpenVINO (3.6 vs 10.2 ms); distilled with OMGD on the built-in recipe it scores
21.4 dB / FID 29.7 against mobile-resnet's 16.2 dB / FID 72.5. ``block=dense,n_blocks=2`` (900 M MACs,
same quality) runs at the host's compute limit: its dense 3×3 convs use each MAC as well as the
teacher's. The whole graph runs inside one delegate (ExecuTorch/LiteRT XNNPACK, ncnn).

Widths: the trunk is ``4·ngf`` wide, every block's inner conv can be pruned (``widths``), the stem's
last conv sets the trunk width (the residual adds tie the rest to it). The layers a pixel shuffle
regroups keep their widths when pruned (:func:`pocketgan.models.graph.regrouped_layers`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.models.base import (
    FeatureTap,
    Generator,
    WidthTable,
    apply_output_head,
    check_output_head,
    norm_layer,
    output_activation,
)
from pocketgan.models.registry import register_generator

NORMS = ("batch", "none", "instance")
STEMS = ("s2d", "conv")
UPSAMPLING = ("shuffle", "deconv")
BLOCKS = ("dense", "separable")
STRIDE = 4  # the trunk's resolution: 1/4 of the input's, as in pix2pix's ResNets (feature taps pair by it)


def _norm(kind: str, channels: int) -> list[nn.Module]:
    return [] if kind == "none" else [norm_layer(kind, channels)]


def conv_norm_relu(
    cin: int, cout: int, kernel: int, norm: str, *, stride: int = 1, groups: int = 1, relu: bool = True
) -> list[nn.Module]:
    """A zero-padded conv, its norm (none for ``norm="none"``) and a ReLU: the pattern runtimes fuse.

    The conv has a bias only without a BatchNorm after it (the norm's shift replaces it, and the folded
    conv gets one at export).
    """
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=norm != "batch")
    return [conv, *_norm(norm, cout), *([nn.ReLU()] if relu else [])]


class FastBlock(nn.Module):
    """``x + body(x)``; ``body`` is two 3×3 convs (``dense``) or two depthwise-separable convs, ``inner``
    wide in between; its last conv has a norm and no ReLU (as pix2pix's blocks)."""

    def __init__(self, dim: int, inner: int, block: str, norm: str) -> None:
        super().__init__()
        if block == "dense":
            layers = conv_norm_relu(dim, inner, 3, norm) + conv_norm_relu(inner, dim, 3, norm, relu=False)
        else:
            layers = (conv_norm_relu(dim, dim, 3, norm, groups=dim, relu=False) + conv_norm_relu(dim, inner, 1, norm)
                      + conv_norm_relu(inner, inner, 3, norm, groups=inner, relu=False)
                      + conv_norm_relu(inner, dim, 1, norm, relu=False))  # fmt: skip
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def inner_conv_name(block: str, norm: str) -> str:
    """The conv (inside a :class:`FastBlock`) whose output width is the block's prunable inner width:
    the first 3×3 (``dense``) or the first 1×1 (``separable``: after the depthwise conv and its norm)."""
    return "body.0" if block == "dense" else f"body.{1 if norm == 'none' else 2}"


class FastResnetGenerator(Generator):
    """Stem to stride 4, ``n_blocks`` residual blocks ``4·ngf`` wide, 2×2 upsampling twice, tanh (module doc)."""

    def __init__(
        self,
        arch: str,
        *,
        ngf: int = 16,
        n_blocks: int = 9,
        block: str = "separable",
        norm: str = "batch",
        stem: str = "s2d",
        upsample: str = "shuffle",
        input_nc: int = 3,
        output_nc: int = 3,
        output: str = "tanh",
        widths: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        _check_choices(arch, norm=(norm, NORMS), stem=(stem, STEMS), upsample=(upsample, UPSAMPLING),
                       block=(block, BLOCKS))  # fmt: skip
        if ngf < 1 or n_blocks < 0:
            raise PocketganError(f"{arch}: ngf must be >= 1 and n_blocks >= 0")
        check_output_head(arch, output, input_nc, output_nc)
        self.arch, self.output = arch, output
        self.config = dict(ngf=ngf, n_blocks=n_blocks, block=block, norm=norm, stem=stem, upsample=upsample,
                           input_nc=input_nc, output_nc=output_nc, output=output)  # fmt: skip
        self.io = IOSpec(input_channels=input_nc, output_channels=output_nc, size_multiple=STRIDE)
        w = WidthTable(widths)
        layers = self._stem(w, stem, input_nc, ngf, norm)
        trunk = _last_conv(layers).out_channels
        self.trunk_start = len(layers)
        for _ in range(n_blocks):
            inner = w(f"model.{len(layers)}.{inner_conv_name(block, norm)}", trunk)
            layers.append(FastBlock(trunk, inner, block, norm))
        layers += self._head(w, upsample, len(layers), trunk, ngf, output_nc, norm)
        layers.append(output_activation(output))
        self.model = nn.Sequential(*layers)
        for name, module in self.named_modules():  # widths tied to another layer are implied by the spec
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w.used.add(name)
        w.check_all_used(arch)

    @staticmethod
    def _stem(w: WidthTable, stem: str, input_nc: int, ngf: int, norm: str) -> list[nn.Module]:
        """Input → trunk (``4·ngf`` channels at stride 4)."""
        if stem == "s2d":
            return [nn.PixelUnshuffle(STRIDE), *conv_norm_relu(input_nc * STRIDE**2, w("model.1", 4 * ngf), 3, norm)]
        first = conv_norm_relu(input_nc, w("model.0", ngf), 7, norm)
        i = len(first)
        down1 = conv_norm_relu(first[0].out_channels, w(f"model.{i}", 2 * ngf), 3, norm, stride=2)
        j = i + len(down1)
        return first + down1 + conv_norm_relu(down1[0].out_channels, w(f"model.{j}", 4 * ngf), 3, norm, stride=2)

    @staticmethod
    def _head(w: WidthTable, upsample: str, start: int, trunk: int, ngf: int, output_nc: int,
              norm: str) -> list[nn.Module]:  # fmt: skip
        """Trunk → image: two sub-pixel stages, or two transposed convs and a c7s1 conv."""
        if upsample == "shuffle":
            mid = w(f"model.{start}", 4 * ngf)  # 4 sub-pixels of ngf channels at stride 2
            up1 = conv_norm_relu(trunk, mid, 3, norm) + [nn.PixelShuffle(2)]
            last = nn.Conv2d(mid // 4, output_nc * 4, 3, padding=1)
            return up1 + [last, nn.PixelShuffle(2)]
        layers: list[nn.Module] = []
        cin = trunk
        for width in (2 * ngf, ngf):
            cout = w(f"model.{start + len(layers)}", width)
            deconv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=norm != "batch")
            layers += [deconv, *_norm(norm, cout), nn.ReLU()]
            cin = cout
        return layers + [nn.Conv2d(cin, output_nc, 7, padding=3)]

    def forward(self, x: Tensor) -> Tensor:
        return apply_output_head(self.output, x, self.model(x))

    def feature_taps(self) -> list[FeatureTap]:
        """The trunk's entry and the ends of its thirds, at stride 4 (pair with pix2pix's ResNet and U-Net taps)."""
        n = self.config["n_blocks"]
        start = self.trunk_start
        channels = _last_conv(list(self.model[:start])).out_channels
        ends = sorted({max(1, round(n * k / 3)) for k in (1, 2, 3)}) if n else []
        names = [f"model.{start - 1}"] + [f"model.{start - 1 + e}" for e in ends]
        return [FeatureTap(name, channels, STRIDE) for name in names]


def _last_conv(layers: list[nn.Module]) -> nn.Conv2d:
    return [m for m in layers if isinstance(m, nn.Conv2d)][-1]


def _check_choices(arch: str, **options: tuple[str, tuple[str, ...]]) -> None:
    for key, (value, choices) in options.items():
        if value not in choices:
            raise PocketganError(f"{arch}: {key} must be one of {', '.join(choices)}; got {value!r}")


@register_generator("fast-resnet")
def fast_resnet(widths: dict[str, int] | None = None, **config: Any) -> FastResnetGenerator:
    """fast-resnet: the latency-designed ResNet student (ngf 16, 9 separable blocks, BatchNorm, s2d, shuffle)."""
    try:
        return FastResnetGenerator("fast-resnet", widths=widths, **config)
    except TypeError as exc:
        raise PocketganError(f"fast-resnet: {exc}") from None
