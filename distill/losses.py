"""Losses shared by the distillers: image similarity, perceptual, adversarial and feature distillation.

Images are generator outputs in ``[-1, 1]``. Perceptual features are the list of
multi-scale maps a feature network (``pocketgan.distill.features``) returns.

- :func:`ssim_loss`, :func:`gram_matrix`, :func:`style_loss`, :func:`feature_loss`,
  :func:`total_variation` and :func:`multi_granularity_loss` are OMGD's student terms
  (bytedance/OMGD ``distillers/multiteacher_distiller.py``).
- :func:`discriminator_loss` and :func:`adversarial_loss` are the conditional (pix2pix)
  GAN terms on ``(A, B)`` pairs.
- :class:`FeatureDistillation` (GAN Compression: MSE of 1×1-conv-mapped student
  features) and :class:`ChannelDistillation` (OMGD: MSE of channel-wise spatial means,
  student mapped by 1×1 conv + BN + ReLU) distil intermediate features at paired taps;
  :func:`pair_feature_taps` pairs a teacher's taps with a student's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.distill.base import GANLoss
from pocketgan.core.errors import PocketganError
from pocketgan.models import FeatureTap

# ---------------------------------------------------------------- image and perceptual terms


def ssim_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """``1 - SSIM`` of two image batches in ``[-1, 1]``, computed over ``[0, 1]``.

    Gaussian window 11, σ 1.5 (torchmetrics' defaults, as ``pytorch_ssim`` in OMGD).
    0 for identical images, up to 2 for anti-correlated ones.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    similarity = structural_similarity_index_measure((prediction + 1) / 2, (target + 1) / 2, data_range=1.0)
    return 1 - similarity


def gram_matrix(features: Tensor) -> Tensor:
    """``(B, C, C)`` channel correlations of ``(B, C, H, W)`` features, divided by ``C·H·W``."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat.bmm(flat.transpose(1, 2)) / (c * h * w)


def style_loss(prediction_features: Sequence[Tensor], target_features: Sequence[Tensor]) -> Tensor:
    """Sum over feature levels of the L1 distance between Gram matrices."""
    _check_levels(prediction_features, target_features)
    return sum(
        (F.l1_loss(gram_matrix(p), gram_matrix(t)) for p, t in zip(prediction_features, target_features)),
        start=prediction_features[0].new_zeros(()),
    )


def feature_loss(
    prediction_features: Sequence[Tensor], target_features: Sequence[Tensor], layers: Sequence[int] | None = None
) -> Tensor:
    """Sum of L1 distances between feature maps at ``layers`` (indices into the lists; all when ``None``)."""
    _check_levels(prediction_features, target_features)
    chosen = range(len(prediction_features)) if layers is None else layers
    for i in chosen:
        if not -len(prediction_features) <= i < len(prediction_features):
            raise PocketganError(
                f"perceptual feature level {i} does not exist: the feature network gives {len(prediction_features)}"
            )
    return sum(
        (F.l1_loss(prediction_features[i], target_features[i]) for i in chosen),
        start=prediction_features[0].new_zeros(()),
    )


def total_variation(images: Tensor, reduction: str = "sum") -> Tensor:
    """Anisotropic total variation: absolute differences of neighbouring pixels.

    ``reduction="sum"`` (OMGD's form, which its weight 1e-5 assumes) or ``"mean"``
    (the mean of the horizontal and vertical mean differences).
    """
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs()
    if reduction == "sum":
        return dx.sum() + dy.sum()
    if reduction == "mean":
        return (dx.mean() + dy.mean()) / 2
    raise PocketganError(f"unknown total variation reduction {reduction!r}; choose sum or mean")


def _check_levels(prediction: Sequence[Tensor], target: Sequence[Tensor]) -> None:
    if not prediction or len(prediction) != len(target):
        raise PocketganError(
            f"perceptual features: got {len(prediction)} and {len(target)} levels; need the same non-zero number"
        )


@dataclass(frozen=True)
class AGDWeights:
    """Weights of OMGD's student terms, ``--AGD_weights 1e1,1e4,1e1,1e-5`` in the paper's scripts."""

    ssim: float = 1e1
    style: float = 1e4
    feature: float = 1e1
    tv: float = 1e-5

    @classmethod
    def parse(cls, value: str | Sequence[float] | AGDWeights) -> AGDWeights:
        """From ``"1e1,1e4,1e1,1e-5"`` or four numbers, in the order ssim, style, feature, tv."""
        if isinstance(value, AGDWeights):
            return value
        items = value.split(",") if isinstance(value, str) else list(value)
        try:
            numbers = [float(v) for v in items]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) != 4 or not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise PocketganError(f"agd_weights must be four non-negative numbers ssim,style,feature,tv; got {value!r}")
        return cls(*numbers)


def multi_granularity_loss(
    student_image: Tensor,
    teacher_image: Tensor,
    student_features: Sequence[Tensor],
    teacher_features: Sequence[Tensor],
    weights: AGDWeights,
    feature_layers: Sequence[int] | None,
) -> dict[str, Tensor]:
    """OMGD's weighted terms of one student output against one teacher output.

    Returns ``{"ssim", "style", "feature", "tv"}`` (already weighted). ``*_features``
    are the perceptual features of the two images; ``feature_layers`` picks the levels
    of the feature term (OMGD: the second VGG-16 level, relu2_2).
    """
    return {
        "ssim": weights.ssim * ssim_loss(student_image, teacher_image),
        "style": weights.style * style_loss(student_features, teacher_features),
        "feature": weights.feature * feature_loss(student_features, teacher_features, feature_layers),
        "tv": weights.tv * total_variation(student_image),
    }


# ---------------------------------------------------------------- conditional GAN terms


def discriminator_loss(
    discriminator: nn.Module, gan_loss: GANLoss, real_a: Tensor, real_b: Tensor, fake_b: Tensor
) -> Tensor:
    """Conditional discriminator objective: ``(A, B)`` is real, ``(A, fake.detach())`` is fake; averaged."""
    fake = gan_loss(discriminator(torch.cat([real_a, fake_b.detach()], 1)), False)
    real = gan_loss(discriminator(torch.cat([real_a, real_b], 1)), True)
    return (fake + real) / 2


def adversarial_loss(discriminator: nn.Module, gan_loss: GANLoss, real_a: Tensor, fake_b: Tensor) -> Tensor:
    """The generator's GAN term: make ``discriminator`` call ``(A, fake)`` real."""
    return gan_loss(discriminator(torch.cat([real_a, fake_b], 1)), True, for_discriminator=False)


# ---------------------------------------------------------------- feature-tap distillation

TapPair = tuple[FeatureTap, FeatureTap]  # (teacher tap, student tap)


def pair_feature_taps(teacher_taps: Sequence[FeatureTap], student_taps: Sequence[FeatureTap]) -> list[TapPair]:
    """Pair teacher and student taps of equal stride (so equal spatial size), by relative depth.

    For each stride both have, when the counts differ, every tap of the shorter list is
    paired with the tap of the longer one that ends the same fraction of the depth
    (one student tap ↔ the deepest teacher tap; 3 ↔ 4: 1st, 3rd, 4th).
    Channels may differ: the adapters map student channels to teacher channels.
    """
    pairs: list[TapPair] = []
    for stride in dict.fromkeys(t.stride for t in teacher_taps):
        teachers = [t for t in teacher_taps if t.stride == stride]
        students = [s for s in student_taps if s.stride == stride]
        if not students:
            continue
        if len(students) <= len(teachers):
            pairs += [(teachers[_depth_index(i, len(students), len(teachers))], s) for i, s in enumerate(students)]
        else:
            pairs += [(t, students[_depth_index(i, len(teachers), len(students))]) for i, t in enumerate(teachers)]
    if not pairs:
        raise PocketganError(
            "teacher and student share no feature tap stride "
            f"(teacher {sorted({t.stride for t in teacher_taps})}, student {sorted({s.stride for s in student_taps})})"
        )
    return pairs


def _depth_index(i: int, short: int, long: int) -> int:
    return max(0, min(long - 1, round((i + 1) * long / short) - 1))


def conv1x1_adapter(in_channels: int, out_channels: int) -> nn.Module:
    """GAN Compression's adapter: a learned 1×1 conv (with bias)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


def conv_bn_relu_adapter(in_channels: int, out_channels: int) -> nn.Module:
    """OMGD's adapter: 1×1 conv (no bias, He-normal init), BatchNorm (1, 0), ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / out_channels))
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())


class TapDistillation(nn.Module):
    """Distance between teacher features and adapted student features, summed over tap pairs.

    Subclasses choose the adapter and the distance. The teacher features are detached:
    this loss never trains the teacher.
    """

    def __init__(self, pairs: Sequence[TapPair]) -> None:
        super().__init__()
        if not pairs:
            raise PocketganError("feature distillation needs at least one pair of feature taps")
        self.pairs = list(pairs)
        self.adapters = nn.ModuleList(self.make_adapter(s.channels, t.channels) for t, s in self.pairs)

    @property
    def teacher_taps(self) -> list[str]:
        """Module names to capture in the teacher (``capture_features``)."""
        return list(dict.fromkeys(t.name for t, _ in self.pairs))

    @property
    def student_taps(self) -> list[str]:
        """Module names to capture in the student."""
        return list(dict.fromkeys(s.name for _, s in self.pairs))

    def make_adapter(self, student_channels: int, teacher_channels: int) -> nn.Module:
        raise NotImplementedError

    def distance(self, adapted_student: Tensor, teacher: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, student_features: Mapping[str, Tensor], teacher_features: Mapping[str, Tensor]) -> Tensor:
        """Sum of distances; the feature dicts come from ``capture_features`` on each network."""
        losses = []
        for (t, s), adapter in zip(self.pairs, self.adapters):
            source, target = student_features[s.name], teacher_features[t.name].detach()
            if source.shape[1] != s.channels or target.shape[1] != t.channels:
                raise PocketganError(
                    f"feature tap {s.name}/{t.name}: expected {s.channels}/{t.channels} channels, "
                    f"got {source.shape[1]}/{target.shape[1]}"
                )
            losses.append(self.distance(adapter(source), target))
        return torch.stack(losses).sum()


class FeatureDistillation(TapDistillation):
    """GAN Compression: ``Σ MSE(conv1x1(student_tap), teacher_tap)``; sizes must match (equal strides)."""

    def make_adapter(self, student_channels: int, teacher_channels: int) -> nn.Module:
        return conv1x1_adapter(student_channels, teacher_channels)

    def distance(self, adapted_student: Tensor, teacher: Tensor) -> Tensor:
        if adapted_student.shape != teacher.shape:
            raise PocketganError(
                f"feature distillation: student feature {tuple(adapted_student.shape)} and teacher feature "
                f"{tuple(teacher.shape)} differ in size (the input size must be a multiple of both strides)"
            )
        return F.mse_loss(adapted_student, teacher)


class ChannelDistillation(TapDistillation):
    """OMGD: ``Σ MSE(mean_hw(adapter(student_tap)), mean_hw(teacher_tap))``, adapter = 1×1 conv + BN + ReLU."""

    def make_adapter(self, student_channels: int, teacher_channels: int) -> nn.Module:
        return conv_bn_relu_adapter(student_channels, teacher_channels)

    def distance(self, adapted_student: Tensor, teacher: Tensor) -> Tensor:
        return F.mse_loss(adapted_student.mean(dim=(2, 3)), teacher.mean(dim=(2, 3)))
