"""An independent re-implementation of rosinality/stylegan2-pytorch's forward passes (model.py, the
native path of op/upfirdn2d.py), written from their source as functions over a rosinality state dict.

Used by tests/test_stylegan2_import.py as the reference pocketgan's imported models must equal.
It deliberately shares no code with pocketgan: the *fused* modulated convolution (grouped conv with
per-sample weights, as rosinality runs it), upfirdn2d by zero insertion + padding + flipped-kernel
correlation, and rosinality's tensor layout ((1, out, in, k, k) weights, ``noises.noise_i``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

BLUR = [1, 3, 3, 1]


def make_kernel(k: list[int]) -> Tensor:
    t = torch.tensor(k, dtype=torch.float32)
    t = t[None, :] * t[:, None]
    return t / t.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """rosinality ``upfirdn2d_native`` with ``pad=(p0, p1)`` on both axes."""
    _, channel, in_h, in_w = x.shape
    p0, p1 = pad
    out = x.reshape(-1, in_h, in_w, 1)
    minor = 1
    kernel_h, kernel_w = kernel.shape
    out = out.view(-1, in_h, 1, in_w, 1, minor)
    out = F.pad(out, [0, 0, 0, up - 1, 0, 0, 0, up - 1])
    out = out.view(-1, in_h * up, in_w * up, minor)
    out = F.pad(out, [0, 0, max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    out = out.permute(0, 3, 1, 2).reshape([-1, 1, in_h * up + p0 + p1, in_w * up + p0 + p1])
    w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w)
    out = F.conv2d(out, w)
    out = out.reshape(-1, minor, in_h * up + p0 + p1 - kernel_h + 1, in_w * up + p0 + p1 - kernel_w + 1)
    out = out.permute(0, 2, 3, 1)[:, ::down, ::down, :]
    return out.reshape(-1, channel, out.shape[1], out.shape[2])


def fused_leaky_relu(x: Tensor, bias: Tensor) -> Tensor:
    return F.leaky_relu(x + bias.view(1, -1, *[1] * (x.ndim - 2)), 0.2) * math.sqrt(2)


def equal_linear(x: Tensor, weight: Tensor, bias: Tensor, lr_mul: float = 1.0, activate: bool = False) -> Tensor:
    scale = (1 / math.sqrt(weight.shape[1])) * lr_mul
    if activate:
        return fused_leaky_relu(F.linear(x, weight * scale), bias * lr_mul)
    return F.linear(x, weight * scale, bias=bias * lr_mul)


def modulated_conv(sd: dict, p: str, x: Tensor, style: Tensor, *, upsample: bool, demodulate: bool) -> Tensor:
    """rosinality ``ModulatedConv2d`` (fused=True)."""
    weight = sd[f"{p}.weight"]
    _, out_c, in_c, k, _ = weight.shape
    batch, _, height, width = x.shape
    s = equal_linear(style, sd[f"{p}.modulation.weight"], sd[f"{p}.modulation.bias"]).view(batch, 1, in_c, 1, 1)
    w = (1 / math.sqrt(in_c * k * k)) * weight * s
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(batch, out_c, 1, 1, 1)
    w = w.view(batch * out_c, in_c, k, k)
    if upsample:
        x = x.view(1, batch * in_c, height, width)
        w = w.view(batch, out_c, in_c, k, k).transpose(1, 2).reshape(batch * in_c, out_c, k, k)
        out = F.conv_transpose2d(x, w, padding=0, stride=2, groups=batch)
        out = out.view(batch, out_c, out.shape[2], out.shape[3])
        p_ = (len(BLUR) - 2) - (k - 1)
        return upfirdn2d(out, make_kernel(BLUR) * 4, pad=((p_ + 1) // 2 + 1, p_ // 2 + 1))
    out = F.conv2d(x.view(1, batch * in_c, height, width), w, padding=k // 2, groups=batch)
    return out.view(batch, out_c, height, width)


def styled_conv(sd: dict, p: str, x: Tensor, style: Tensor, noise: Tensor, upsample: bool) -> Tensor:
    out = modulated_conv(sd, f"{p}.conv", x, style, upsample=upsample, demodulate=True)
    out = out + sd[f"{p}.noise.weight"] * noise
    return fused_leaky_relu(out, sd[f"{p}.activate.bias"])


def to_rgb(sd: dict, p: str, x: Tensor, style: Tensor, skip: Tensor | None) -> Tensor:
    out = modulated_conv(sd, f"{p}.conv", x, style, upsample=False, demodulate=False) + sd[f"{p}.bias"]
    if skip is not None:  # Upsample(blur_kernel): up=2, pad=(2, 1), kernel * 4
        out = out + upfirdn2d(skip, make_kernel(BLUR) * 4, up=2, pad=(2, 1))
    return out


def generator_forward(sd: dict, z: Tensor, n_mlp: int, *, truncation: float = 1.0,
                      truncation_latent: Tensor | None = None) -> Tensor:  # fmt: skip
    """``g_ema([z], noise=[noises.noise_i], randomize_noise=False, truncation=...)[0]``."""
    x = z * torch.rsqrt(torch.mean(z**2, dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        x = equal_linear(x, sd[f"style.{i}.weight"], sd[f"style.{i}.bias"], lr_mul=0.01, activate=True)
    if truncation < 1:
        x = truncation_latent + truncation * (x - truncation_latent)
    n_up = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    noise = [sd[f"noises.noise_{i}"] for i in range(2 * n_up + 1)]
    out = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    out = styled_conv(sd, "conv1", out, x, noise[0], False)
    skip = to_rgb(sd, "to_rgb1", out, x, None)
    for j in range(n_up):
        out = styled_conv(sd, f"convs.{2 * j}", out, x, noise[2 * j + 1], True)
        out = styled_conv(sd, f"convs.{2 * j + 1}", out, x, noise[2 * j + 2], False)
        skip = to_rgb(sd, f"to_rgbs.{j}", out, x, skip)
    return skip


def conv_layer(sd: dict, p: str, x: Tensor, k: int, *, downsample: bool, bias: bool = True,
               activate: bool = True) -> Tensor:  # fmt: skip
    """rosinality ``ConvLayer``: [Blur], EqualConv2d, [FusedLeakyReLU]."""
    i = 0
    stride, padding = 1, k // 2
    if downsample:
        p_ = (len(BLUR) - 2) + (k - 1)
        x = upfirdn2d(x, make_kernel(BLUR), pad=((p_ + 1) // 2, p_ // 2))
        i, stride, padding = 1, 2, 0
    weight = sd[f"{p}.{i}.weight"]
    scale = 1 / math.sqrt(weight.shape[1] * k * k)
    conv_bias = sd[f"{p}.{i}.bias"] if bias and not activate else None
    out = F.conv2d(x, weight * scale, bias=conv_bias, stride=stride, padding=padding)
    return fused_leaky_relu(out, sd[f"{p}.{i + 1}.bias"]) if activate else out


def discriminator_forward(sd: dict, img: Tensor, stddev_group: int = 4) -> Tensor:
    """rosinality ``Discriminator.forward``."""
    out = conv_layer(sd, "convs.0", img, 1, downsample=False)
    k = 1
    while f"convs.{k}.conv1.0.weight" in sd:
        p = f"convs.{k}"
        y = conv_layer(sd, f"{p}.conv2", conv_layer(sd, f"{p}.conv1", out, 3, downsample=False), 3, downsample=True)
        skip = conv_layer(sd, f"{p}.skip", out, 1, downsample=True, bias=False, activate=False)
        out = (y + skip) / math.sqrt(2)
        k += 1
    batch, channel, height, width = out.shape
    group = min(batch, stddev_group)
    stddev = out.view(group, -1, 1, channel, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2).repeat(group, 1, height, width)
    out = conv_layer(sd, "final_conv", torch.cat([out, stddev], 1), 3, downsample=False)
    out = equal_linear(out.view(batch, -1), sd["final_linear.0.weight"], sd["final_linear.0.bias"], activate=True)
    return equal_linear(out, sd["final_linear.1.weight"], sd["final_linear.1.bias"])


# ------------------------------------------------------------------------------------ random weights


def _rand(g: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    return torch.randn(*shape, generator=g) * scale + shift


def random_generator_state(channels: dict[int, int], style_dim: int, n_mlp: int, seed: int = 0) -> dict:
    """A rosinality ``Generator.state_dict()`` layout with random weights, non-zero noise weights and biases."""
    g = torch.Generator().manual_seed(seed)
    size = max(channels)
    sd: dict[str, Tensor] = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = _rand(g, style_dim, style_dim, scale=100.0)  # randn / lr_mul
        sd[f"style.{i}.bias"] = _rand(g, style_dim, scale=10.0)

    def modconv(p: str, cin: int, cout: int, k: int) -> None:
        sd[f"{p}.weight"] = _rand(g, 1, cout, cin, k, k)
        sd[f"{p}.modulation.weight"] = _rand(g, cin, style_dim)
        sd[f"{p}.modulation.bias"] = _rand(g, cin, scale=0.1, shift=1.0)

    def styled(p: str, cin: int, cout: int, upsample: bool) -> None:
        modconv(f"{p}.conv", cin, cout, 3)
        if upsample:
            sd[f"{p}.conv.blur.kernel"] = make_kernel(BLUR) * 4
        sd[f"{p}.noise.weight"] = _rand(g, 1, scale=0.3)
        sd[f"{p}.activate.bias"] = _rand(g, cout, scale=0.1)

    def rgb(p: str, cin: int, upsample: bool) -> None:
        if upsample:
            sd[f"{p}.upsample.kernel"] = make_kernel(BLUR) * 4
        modconv(f"{p}.conv", cin, 3, 1)
        sd[f"{p}.bias"] = _rand(g, 1, 3, 1, 1, scale=0.1)

    sd["input.input"] = _rand(g, 1, channels[4], 4, 4)
    styled("conv1", channels[4], channels[4], False)
    rgb("to_rgb1", channels[4], False)
    res, cin, j = 8, channels[4], 0
    while res <= size:
        styled(f"convs.{2 * j}", cin, channels[res], True)
        styled(f"convs.{2 * j + 1}", channels[res], channels[res], False)
        rgb(f"to_rgbs.{j}", channels[res], True)
        res, cin, j = res * 2, channels[res], j + 1
    for i in range(2 * j + 1):
        r = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = _rand(g, 1, 1, r, r)
    return sd


def random_discriminator_state(channels: dict[int, int], seed: int = 1) -> dict:
    """A rosinality ``Discriminator.state_dict()`` layout with random weights."""
    g = torch.Generator().manual_seed(seed)
    size = max(channels)
    sd: dict[str, Tensor] = {"convs.0.0.weight": _rand(g, channels[size], 3, 1, 1),
                             "convs.0.1.bias": _rand(g, channels[size], scale=0.1)}  # fmt: skip
    res, k = size, 1
    while res > 4:
        cin, cout, p = channels[res], channels[res // 2], f"convs.{k}"
        sd[f"{p}.conv1.0.weight"] = _rand(g, cin, cin, 3, 3)
        sd[f"{p}.conv1.1.bias"] = _rand(g, cin, scale=0.1)
        sd[f"{p}.conv2.0.kernel"] = make_kernel(BLUR)
        sd[f"{p}.conv2.1.weight"] = _rand(g, cout, cin, 3, 3)
        sd[f"{p}.conv2.2.bias"] = _rand(g, cout, scale=0.1)
        sd[f"{p}.skip.0.kernel"] = make_kernel(BLUR)
        sd[f"{p}.skip.1.weight"] = _rand(g, cout, cin, 1, 1)
        res, k = res // 2, k + 1
    c4 = channels[4]
    sd["final_conv.0.weight"] = _rand(g, c4, c4 + 1, 3, 3)
    sd["final_conv.1.bias"] = _rand(g, c4, scale=0.1)
    sd["final_linear.0.weight"] = _rand(g, c4, c4 * 16)
    sd["final_linear.0.bias"] = _rand(g, c4, scale=0.1)
    sd["final_linear.1.weight"] = _rand(g, 1, c4)
    sd["final_linear.1.bias"] = _rand(g, 1, scale=0.1)
    return sd
