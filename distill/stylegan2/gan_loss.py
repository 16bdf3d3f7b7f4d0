"""StyleGAN2's adversarial objective: the non-saturating logistic loss, lazy R1 and (optional) path length.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (NVlabs/stylegan2-ada-pytorch
``training/loss.py``, rosinality/stylegan2-pytorch ``train.py``):

- discriminator: ``softplus(D(fake)) + softplus(−D(real))``; generator: ``softplus(−D(fake))``;
- R1 on real images, ``γ/2 · E‖∇ₓD(x)‖²``, applied **lazily** every ``interval`` (16) steps and
  multiplied by ``interval`` so its strength per image is unchanged; the optimizer of a lazily
  regularized network gets ``lr · r`` and ``β ** r`` with ``r = interval / (interval + 1)``
  (:func:`lazy_adam_hyperparameters`);
- path-length regularization of the generator (weight 2, every 4 steps in the paper) is available
  (:func:`path_length_penalty`) but **off by default** (``pl_weight=0``): it costs a second backward
  pass through the synthesis network and tiny CPU runs do not need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

R1_INTERVAL = 16
PL_INTERVAL = 4
PL_DECAY = 0.01  # the running mean of path lengths moves by 1 % a step (NVlabs pl_decay)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's logistic loss: ``mean softplus(D(fake)) + mean softplus(−D(real))``."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The generator's non-saturating loss ``mean softplus(−D(fake))``."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(discriminator: nn.Module, real: Tensor) -> tuple[Tensor, Tensor]:
    """``(E‖∇ₓD(x)‖², D(x))`` on real images ``x`` (the penalty keeps its graph for the backward pass)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3]).mean(), logits


@dataclass(frozen=True)
class LazyRegularization:
    """A regularizer applied every ``interval`` steps with weight ``weight · interval`` (0 weight: never)."""

    weight: float
    interval: int

    def due(self, step: int) -> bool:
        """Whether step ``step`` (0-based) regularizes."""
        return self.weight > 0 and self.interval > 0 and step % self.interval == 0

    @property
    def scale(self) -> float:
        """The factor a due step multiplies the raw penalty with (the lazy ×interval included)."""
        return self.weight * self.interval

    @property
    def ratio(self) -> float:
        """``interval / (interval + 1)``: the share of the optimizer's steps that are not regularization steps."""
        return self.interval / (self.interval + 1) if self.weight > 0 and self.interval > 1 else 1.0


def lazy_adam_hyperparameters(
    lr: float, betas: tuple[float, float], lazy: LazyRegularization
) -> tuple[float, tuple[float, float]]:
    """Adam's ``lr · r`` and ``(β₁ ** r, β₂ ** r)`` for a network regularized lazily (NVlabs ``mb_ratio``)."""
    r = lazy.ratio
    return lr * r, (betas[0] ** r, betas[1] ** r)


def r1_regularization(gamma: float, interval: int = R1_INTERVAL) -> LazyRegularization:
    """Lazy R1 with StyleGAN2's γ: a due step adds ``γ/2 · interval · E‖∇D‖²``."""
    return LazyRegularization(weight=gamma / 2, interval=interval)


def path_length_penalty(
    generator: nn.Module, ws: Tensor, mean_length: Tensor, *, noise_mode: str = "random"
) -> tuple[Tensor, Tensor]:
    """``(E(‖Jᵀy‖ − a)², new a)``: the path-length penalty for per-layer latents ``ws`` (B, num_ws, w_dim).

    ``y`` is image-space noise scaled by ``1/√(H·W)``; ``a`` (``mean_length``) is the running mean of the
    lengths, updated by :data:`PL_DECAY` (the caller stores the returned value).
    """
    ws = ws.detach().requires_grad_(True)
    images = generator.synthesis(ws, noise_mode=noise_mode)
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    updated = mean_length.lerp(lengths.mean().detach(), PL_DECAY)
    return (lengths - updated).square().mean(), updated
