"""The 2-D Haar wavelet transform NICKEL compares teacher and student features with.

One level splits every channel into four half-resolution sub-bands, with the orthonormal Haar
filters ``[1, 1]/√2`` (low) and ``[1, -1]/√2`` (high) applied along rows and columns. For the
2×2 block ``[[a, b], [c, d]]``::

    LL = (a + b + c + d) / 2     low along rows (horizontal) and columns (vertical): the coarse image
    LH = (a + b - c - d) / 2     low horizontally, high vertically: horizontal edges (pywt's cH)
    HL = (a - b + c - d) / 2     high horizontally, low vertically: vertical edges (pywt's cV)
    HH = (a - b - c + d) / 2     high along both: diagonal detail (pywt's cD)

This is pytorch_wavelets' ``DWTForward(wave="haar")`` (the released NICKEL code's ``xfm``), whose
high bands come out as ``(N, C, 3, h, w)`` in the order LH, HL, HH, finest level first. The
transform is orthonormal, so :func:`haar_idwt` inverts it exactly (up to rounding). An odd height
or width is zero-padded at the bottom/right before a level (pywt's ``zero`` mode); the inverse
crops it away again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F

from pocketgan.core.errors import PocketganError

#: NICKEL's decomposition depth (``DWTForward(J=4)``).
NICKEL_LEVELS = 4


@dataclass
class HaarPyramid:
    """A multi-level Haar decomposition: the coarsest low band and the high bands of every level.

    ``highs[j]`` is ``(N, C, 3, h_j, w_j)`` (LH, HL, HH), level ``j = 0`` the finest; ``sizes[j]`` is
    the ``(height, width)`` of the input of level ``j`` (what the inverse crops back to).
    """

    low: Tensor
    highs: list[Tensor]
    sizes: list[tuple[int, int]] = field(default_factory=list)


def _split(x: Tensor) -> tuple[Tensor, Tensor]:
    """One level: ``(LL, stacked LH/HL/HH)`` of an even-sized ``(N, C, H, W)`` tensor."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    top_sum, top_diff, bottom_sum, bottom_diff = a + b, a - b, c + d, c - d
    low = (top_sum + bottom_sum) / 2
    bands = torch.stack([top_sum - bottom_sum, top_diff + bottom_diff, top_diff - bottom_diff], dim=2) / 2
    return low, bands


def _merge(low: Tensor, bands: Tensor) -> Tensor:
    """The inverse of :func:`_split`: the ``(N, C, 2h, 2w)`` tensor whose level is ``(low, bands)``."""
    lh, hl, hh = bands.unbind(dim=2)
    a = (low + lh + hl + hh) / 2
    b = (low + lh - hl - hh) / 2
    c = (low - lh + hl - hh) / 2
    d = (low - lh - hl + hh) / 2
    top = torch.stack([a, b], dim=-1).flatten(-2)  # interleave columns
    bottom = torch.stack([c, d], dim=-1).flatten(-2)
    return torch.stack([top, bottom], dim=-2).flatten(-3, -2)  # interleave rows


def haar_dwt(x: Tensor, levels: int = NICKEL_LEVELS) -> HaarPyramid:
    """The ``levels``-level 2-D Haar decomposition of ``x`` (``N×C×H×W``); differentiable."""
    if x.dim() != 4:
        raise PocketganError(f"haar_dwt expects an N×C×H×W tensor, got shape {tuple(x.shape)}")
    if levels < 1:
        raise PocketganError(f"haar_dwt needs at least one level, got {levels}")
    highs, sizes, low = [], [], x
    for _ in range(levels):
        height, width = low.shape[-2:]
        sizes.append((int(height), int(width)))
        low = F.pad(low, (0, width % 2, 0, height % 2))
        low, bands = _split(low)
        highs.append(bands)
    return HaarPyramid(low=low, highs=highs, sizes=sizes)


def haar_idwt(pyramid: HaarPyramid) -> Tensor:
    """The tensor :func:`haar_dwt` decomposed into ``pyramid`` (exact: the transform is orthonormal)."""
    x = pyramid.low
    sizes = pyramid.sizes or [(2 * b.shape[-2], 2 * b.shape[-1]) for b in pyramid.highs]
    for bands, (height, width) in zip(reversed(pyramid.highs), reversed(sizes), strict=True):
        x = _merge(x, bands)[..., :height, :width]
    return x


def haar_highs(x: Tensor, levels: int = NICKEL_LEVELS) -> list[Tensor]:
    """The high-frequency sub-bands of ``x``: one ``(N, C, 3, h, w)`` tensor (LH, HL, HH) per level, finest first."""
    return haar_dwt(x, levels).highs


def wavelet_mse(student: Tensor, teacher: Tensor, levels: int = NICKEL_LEVELS) -> Tensor:
    """NICKEL's feature-matching term: the sum over levels of the MSE between the high sub-bands of
    ``student`` (a student-discriminator feature) and ``teacher`` (a teacher-generator feature).

    ``teacher`` is the target and is detached; both must have the same shape (NICKEL picks a
    teacher feature and a discriminator feature of the same channels and resolution).
    """
    if student.shape != teacher.shape:
        raise PocketganError(
            f"wavelet_mse needs features of the same shape; got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    pairs = zip(haar_highs(student.float(), levels), haar_highs(teacher.detach().float(), levels), strict=True)
    return sum((F.mse_loss(s, t) for s, t in pairs), start=student.new_zeros(()).float())

