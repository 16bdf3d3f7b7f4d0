"""ITGC's energy-based model: the variational distribution of its mutual-information bound.

ITGC (Kang et al., NeurIPS 2022) maximizes a lower bound of the mutual information between the
teacher's and the student's images, with the variational distribution an energy-based model
``E(teacher_image, student_image)`` (low energy = a likely pair). As in the reimplementation in
SangyeopYeo/NICKEL_AND_DIME (``training/networks_CAGC_with_VEM.py``, ``loss_CAGC_with_VEM.py``):

- :class:`ResnetEBM`: both images average-pooled to half resolution and concatenated along channels
  (6 channels), a spectrally normalized 3×3 conv to ``input_nc // 2`` channels, ``n_blocks``
  residual blocks that each halve the resolution (widths ``c → 2c → 4c → 4c …``), ReLU, global mean,
  a spectrally normalized linear layer to one energy per pair;
- :func:`langevin_sample`: negatives by Langevin dynamics started from the student image,
  ``x ← x - step · ∂E(x, student)/∂x + σ · noise`` (10 steps, step 50, σ 0.005);
- :func:`ebm_loss` (the EBM's objective): ``E⁺ - E⁻ + 0.05 (E⁺² + E⁻²)`` with ``E⁺ = E(teacher, student)``
  and ``E⁻ = E(sample, student)``; trained with :func:`ebm_optimizer` (Adam 1e-4, β (0, 0.999));
- :func:`mi_loss` (the student's term, weight :data:`MI_WEIGHT`): ``E(teacher, student) - E(sample, student)``.

Gradients reach only what each step trains: the EBM loss updates the EBM (images detached), the
MI term the student image (EBM frozen while it runs), the sampler neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from pocketgan.core.errors import PocketganError

LANGEVIN_STEPS = 10
LANGEVIN_STEP_SIZE = 50.0
LANGEVIN_NOISE = 0.005
L2_WEIGHT = 0.05
MI_WEIGHT = 0.05
EBM_LR, EBM_BETAS = 1e-4, (0.0, 0.999)


class SpectralNorm(nn.Module):
    """Parametrization ``W / σ(W)``, σ the largest singular value by one power iteration per training call.

    ``bound_only``: ``W / max(σ, 1)`` — only shrink a weight whose norm exceeds 1 (the reimplementation's
    ``lower_bound`` layers, the residual branch's last conv, initialized near zero and kept small).
    """

    def __init__(self, weight: Tensor, *, bound_only: bool = False, eps: float = 1e-12) -> None:
        super().__init__()
        self.bound_only, self.eps = bound_only, eps
        rows, cols = weight.shape[0], weight[0].numel()
        self.register_buffer("u", F.normalize(torch.randn(rows), dim=0, eps=eps))
        self.register_buffer("v", F.normalize(torch.randn(cols), dim=0, eps=eps))

    def forward(self, weight: Tensor) -> Tensor:
        matrix = weight.flatten(1)
        if self.training:
            with torch.no_grad():
                self.v.copy_(F.normalize(matrix.T @ self.u, dim=0, eps=self.eps))
                self.u.copy_(F.normalize(matrix @ self.v, dim=0, eps=self.eps))
        sigma = self.u.clone() @ matrix @ self.v.clone()  # clones: the next call updates the buffers in place
        return weight / (sigma.clamp_min(1.0) if self.bound_only else sigma)


def spectral_norm(module: nn.Module, *, bound_only: bool = False) -> nn.Module:
    """``module`` with its ``weight`` spectrally normalized (see :class:`SpectralNorm`)."""
    parametrize.register_parametrization(module, "weight", SpectralNorm(module.weight, bound_only=bound_only))
    return module


def sn_conv(in_channels: int, out_channels: int, *, std: float = 1.0, bound_only: bool = False) -> nn.Module:
    """A spectrally normalized 3×3 conv (weights ``N(0, std²)``, bias 0, as the reimplementation initializes them)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    nn.init.normal_(conv.weight, std=std)
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv, bound_only=bound_only)


class EBMBlock(nn.Module):
    """``shortcut(x) + conv(act(conv(x)))``, then a 2×2 average pool and the activation."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(0.01)
        self.conv1 = sn_conv(in_channels, in_channels)
        self.conv2 = sn_conv(in_channels, out_channels, std=1e-10, bound_only=True)
        self.shortcut = sn_conv(in_channels, out_channels) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.shortcut(x) + self.conv2(self.act(self.conv1(x)))
        return self.act(F.avg_pool2d(out, 2))


def max_blocks(size: int) -> int:
    """The most blocks a ``size``-pixel image allows (each halves the half-resolution input)."""
    half, blocks = (size + 1) // 2, 0
    while half >= 2:
        half, blocks = half // 2, blocks + 1
    return blocks


class ResnetEBM(nn.Module):
    """The energy ``E(teacher, student)`` of an image pair: ``(B, 1)``, low for pairs that belong together.

    ``input_nc`` sets the widths (``input_nc // 2`` after the first conv, then ×2, ×4); ``n_blocks``
    residual blocks each halve the resolution, so an image of ``size`` pixels allows at most
    :func:`max_blocks` ``(size)`` of them (7 at 256 px, as ITGC; 4 at 32 px).
    """

    def __init__(self, input_nc: int = 64, n_blocks: int = 7) -> None:
        super().__init__()
        if input_nc < 2 or n_blocks < 1:
            raise PocketganError(f"ResnetEBM needs input_nc ≥ 2 and n_blocks ≥ 1; got {input_nc} and {n_blocks}")
        self.n_blocks = n_blocks
        width = input_nc // 2
        self.from_rgb = nn.Sequential(sn_conv(6, width), nn.LeakyReLU(0.01))
        widths = [width, 2 * width] + [4 * width] * (n_blocks - 1)
        self.blocks = nn.Sequential(*(EBMBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.energy = spectral_norm(nn.Linear(widths[n_blocks], 1))

    def forward(self, teacher: Tensor, student: Tensor) -> Tensor:
        if teacher.shape != student.shape or teacher.dim() != 4 or teacher.shape[1] != 3:
            raise PocketganError(
                "ResnetEBM takes two N×3×H×W images of the same shape; "
                f"got {tuple(teacher.shape)} and {tuple(student.shape)}"
            )
        if max_blocks(min(teacher.shape[-2:])) < self.n_blocks:
            raise PocketganError(
                f"ResnetEBM with {self.n_blocks} blocks needs images of at least {2 ** (self.n_blocks + 1)} px; "
                f"got {teacher.shape[-2]}x{teacher.shape[-1]} (use n_blocks ≤ {max_blocks(min(teacher.shape[-2:]))})"
            )
        halves = [F.avg_pool2d(image, 3, stride=2, padding=1) for image in (teacher, student)]
        pair = torch.cat(halves, dim=1)
        out = F.relu(self.blocks(self.from_rgb(pair)))
        return self.energy(out.mean(dim=(2, 3)))


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` with every parameter's ``requires_grad`` off for the block (restored afterwards)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        yield module
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def langevin_sample(
    ebm: nn.Module,
    student: Tensor,
    *,
    steps: int = LANGEVIN_STEPS,
    step_size: float = LANGEVIN_STEP_SIZE,
    noise: float = LANGEVIN_NOISE,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Negative samples for the EBM: Langevin dynamics on ``x`` in ``E(x, student)``, started from ``student``.

    The gradient is taken with respect to the sample only (the student image is detached, the EBM's
    parameter gradients are left untouched); the result is detached. Pass the EBM itself, not a
    DistributedDataParallel wrapper: nothing here is reduced across processes.
    """
    condition = student.detach()
    sample = condition.clone()
    for _ in range(steps):
        sample.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(ebm(sample, condition).sum(), [sample])
        jitter = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=sample.device)
        sample = (sample.detach() - step_size * grad + noise * jitter).detach()
    return sample


def ebm_loss(ebm: nn.Module, teacher: Tensor, student: Tensor, sample: Tensor, *, l2: float = L2_WEIGHT) -> Tensor:
    """The EBM's objective ``E⁺ - E⁻ + l2 · (E⁺² + E⁻²)`` (batch means); gradients reach only the EBM."""
    condition = student.detach()
    positive = ebm(teacher.detach(), condition)
    negative = ebm(sample.detach(), condition)
    return positive.mean() - negative.mean() + l2 * (positive.pow(2) + negative.pow(2)).mean()


def mi_loss(ebm: nn.Module, teacher: Tensor, student: Tensor, sample: Tensor) -> Tensor:
    """The student's MI term ``E(teacher, student) - E(sample, student)`` (batch mean; weight :data:`MI_WEIGHT`).

    Gradients reach only ``student`` (and the generator behind it): the teacher image and the sample
    are detached and the EBM is frozen while the term is built. Pass the EBM itself, not a DDP wrapper.
    """
    with frozen(ebm):
        return (ebm(teacher.detach(), student) - ebm(sample.detach(), student)).mean()


def ebm_optimizer(ebm: nn.Module, lr: float = EBM_LR) -> torch.optim.Optimizer:
    """ITGC's optimizer for the EBM: Adam, lr 1e-4, β (0, 0.999)."""
    return torch.optim.Adam(ebm.parameters(), lr=lr, betas=EBM_BETAS)
