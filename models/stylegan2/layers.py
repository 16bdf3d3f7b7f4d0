"""StyleGAN2 building blocks in a form torch-pruning can trace.

Every weight lives in a plain ``nn.Linear`` / ``nn.Conv2d`` / ``nn.ConvTranspose2d`` called as a
module. The equalized-learning-rate gain is applied to the layer's *input* (computed from the
layer's current fan-in, so a pruned layer rebuilt from its widths computes the same function),
the style multiplies the conv's input, and demodulation is its own module reading the conv's weight
(non-fused modulated convolution). The FIR low-pass filter is a module whose ``(1, 1, 4, 4)`` kernel
is expanded to the input's channels at run time, so it holds no per-channel state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2
FIR = (1.0, 3.0, 3.0, 1.0)
"""The resampling filter of StyleGAN2 (``[1, 3, 3, 1]``, outer product, normalized to sum 1)."""


def fir_kernel(gain: float = 1.0) -> Tensor:
    """The 4×4 resampling filter times ``gain``, shaped ``(1, 1, 4, 4)``."""
    k = torch.tensor(FIR)
    k = k[:, None] * k[None, :]
    return (k / k.sum() * gain).reshape(1, 1, 4, 4)


def lrelu_act(x: Tensor, bias: Tensor | None = None, clamp: float | None = None) -> Tensor:
    """``leaky_relu(x + bias, 0.2) * sqrt(2)``, then clamped to ``±clamp`` (NVlabs ``bias_act``)."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    x = F.leaky_relu(x, LRELU_SLOPE) * SQRT2
    return x.clamp(-clamp, clamp) if clamp is not None else x


def add_bias(x: Tensor, bias: Tensor, clamp: float | None = None) -> Tensor:
    """``x + bias`` per channel, then clamped to ``±clamp``."""
    x = x + bias.reshape(1, -1, 1, 1)
    return x.clamp(-clamp, clamp) if clamp is not None else x


def conv_fan_in(conv: nn.Module) -> int:
    """Inputs per output of a conv: ``in_channels * k * k`` (``ConvTranspose2d`` weights are ``(in, out, k, k)``)."""
    w = conv.weight
    inputs = w.shape[0] if isinstance(conv, nn.ConvTranspose2d) else w.shape[1]
    return int(inputs * w.shape[2] * w.shape[3])


class EqualLinear(nn.Linear):
    """A ``Linear`` with equalized learning rate: ``linear(x * lr_mul / sqrt(in), W, b * lr_mul)``.

    Weights start as ``randn / lr_mul`` and the bias at ``bias_init`` (NVlabs ``FullyConnectedLayer``,
    rosinality ``EqualLinear``), so parameters are stored exactly as in their files.
    """

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__(in_features, out_features)
        self.lr_mul = float(lr_mul)
        with torch.no_grad():
            self.weight.normal_().div_(self.lr_mul)
            self.bias.fill_(bias_init)

    def forward(self, x: Tensor) -> Tensor:
        gain = self.lr_mul / math.sqrt(self.weight.shape[1])
        bias = self.bias * self.lr_mul if self.lr_mul != 1 else self.bias
        return F.linear(x * gain, self.weight, bias)


class Blur(nn.Module):
    """The FIR low-pass filter on every channel: padding ``pad`` then filtering, or 2× upsampling.

    ``up=2`` is NVlabs' ``upsample2d`` (zero insertion, pad (2, 1), filter × 4) written as a
    depthwise transposed convolution.
    """

    def __init__(self, pad: tuple[int, int] = (1, 1), *, up: int = 1, gain: float = 1.0) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError("Blur supports up=1 or up=2")
        self.pad = pad
        self.up = up
        self.register_buffer("kernel", fir_kernel(gain * (4.0 if up == 2 else 1.0)), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        channels = int(x.shape[1])  # a constant when traced: ONNX needs the depthwise kernel's shape
        k = self.kernel.to(x.dtype).expand(channels, 1, 4, 4)
        if self.up == 2:
            return F.conv_transpose2d(x, k, stride=2, padding=1, groups=channels)
        p0, p1 = self.pad
        return F.conv2d(F.pad(x, [p0, p1, p0, p1]), k, groups=channels)


class Demodulation(nn.Module):
    """Demodulation coefficients ``rsqrt(sum_{i,k} (s_i W_oik)^2 + eps)``, shape ``(batch, out)``.

    ``weight`` is ``(out, in, k, k)`` (pass ``conv.weight.transpose(0, 1)`` for a transposed conv);
    computed as ``linear(s^2, sum_k W^2)`` so no ``(batch, out, in, k, k)`` tensor is formed.
    """

    eps = 1e-8

    def forward(self, styles: Tensor, weight: Tensor) -> Tensor:
        return torch.rsqrt(F.linear(styles.square(), weight.square().sum(dim=(2, 3))) + self.eps)


class ConstantInput(nn.Module):
    """The learned 4×4 input of the synthesis network, repeated over the batch (``input``: ``(1, C, 4, 4)``)."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class EqualConv2d(nn.Conv2d):
    """A ``Conv2d`` with equalized learning rate (input × ``1/sqrt(fan_in)``); ``down=2`` blurs first
    and convolves with stride 2 (NVlabs ``Conv2dLayer(down=2)``). No activation: the caller adds it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True, down: int = 1):
        padding = 0 if down == 2 else kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, stride=down, padding=padding, bias=bias)
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()
        # Blur before the stride-2 conv: pad so that the output is exactly half the input.
        p = (len(FIR) - 2) + (kernel_size - 1)
        self.blur = Blur(((p + 1) // 2, p // 2)) if down == 2 else None

    def forward(self, x: Tensor) -> Tensor:
        if self.blur is not None:
            x = self.blur(x)
        return self._conv_forward(x * (1.0 / math.sqrt(conv_fan_in(self))), self.weight, self.bias)
