"""``nickel`` and ``nickel-dime``: interactive generator–discriminator compression (SangyeopYeo/NICKEL_AND_DIME).

At high compression the student's discriminator wins and training collapses; NICKEL keeps the two
balanced by letting them interact. On top of StyleGAN2's adversarial step (:mod:`.student`):

- **the teacher's discriminator keeps training** (``TEACHER/discriminator``, required), on real images
  vs the student's, with the logistic loss and lazy R1 (its own Adam ``Dt``); its non-saturating
  ``softplus(−D_t(s))`` joins the student generator's loss (weight ``lambda_teacher_d``, 1);
- **the student's discriminator is taught**: ``lambda_haar`` (10) × the MSE between the high-frequency
  sub-bands of a ``haar_levels`` (4)-level Haar DWT (:func:`~.haar.wavelet_mse`) of a teacher-generator
  feature and a student-discriminator feature, both computed **on the teacher's images** (the teacher
  generator's synthesis output at resolution r for ``z``; the student discriminator's block output at r
  for ``T(z)``). r is ``haar_resolution`` (0: the highest resolution both networks have a feature at that
  a 4-level DWT divides, ``size / 2``: the finest detail is what the wavelet bands carry). When the two
  features' widths differ (a student discriminator of other widths) the discriminator's feature goes
  through a learned 1×1 projection to the teacher's width, trained with the discriminator: the teacher
  feature is the fixed target and is not reshaped, and the projection is discarded after training.
  The student discriminator starts as a copy of the teacher's, so by default the widths match and there
  is no projection.

``nickel-dime`` adds DiME's MMD (:mod:`.dime`, all its options) to the student's generator loss: the
papers' combined method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import register_distiller
from pocketgan.distill.stylegan2.dime import DiMEOptions, DistributionMatching
from pocketgan.distill.stylegan2.haar import NICKEL_LEVELS, wavelet_mse
from pocketgan.distill.stylegan2.student import StepImages, StudentOptions, StyleGAN2Distiller, Term
from pocketgan.models import capture_features

METHOD = "nickel"


@dataclass
class NickelOptions(StudentOptions):
    """``config.options`` of ``nickel``."""

    lambda_haar: float = 10.0
    lambda_teacher_d: float = 1.0
    haar_levels: int = NICKEL_LEVELS
    haar_resolution: int = 0

    def __post_init__(self) -> None:
        self.validate(METHOD)
        self.check_nickel()

    def check_nickel(self) -> None:
        self.require_non_negative_fields(METHOD, "lambda_haar", "lambda_teacher_d", "haar_resolution")
        if self.haar_levels < 1:
            raise PocketganError(f"{METHOD}: haar_levels must be >= 1")


@dataclass
class NickelDiMEOptions(NickelOptions, DiMEOptions):
    """``config.options`` of ``nickel-dime``: NICKEL's and DiME's."""

    def __post_init__(self) -> None:
        self.validate("nickel-dime")
        self.check_nickel()
        self.check_dime()


@torch.no_grad()
def tap_resolutions(model: nn.Module, names: list[str], example: Tensor) -> dict[str, tuple[int, int]]:
    """``{tap: (resolution, channels)}`` of ``model``'s taps, measured on one ``example`` forward."""
    with capture_features(model, names) as store:
        model(example)
    return {name: (int(store[name].shape[-1]), int(store[name].shape[1])) for name in names}


def matching_taps(
    teacher: nn.Module, discriminator: nn.Module, levels: int, resolution: int
) -> tuple[str, str, int, int]:
    """``(teacher tap, discriminator tap, teacher channels, discriminator channels)`` at ``resolution``
    (0: the highest common one divisible by ``2 ** levels``)."""
    g_taps = tap_resolutions(teacher, [t.name for t in teacher.feature_taps()], torch.zeros(1, teacher.z_dim))
    d_taps = tap_resolutions(discriminator, [t.name for t in discriminator.feature_taps()],
                             torch.zeros(1, 3, teacher.size, teacher.size))  # fmt: skip
    by_res_g = {res: (name, ch) for name, (res, ch) in g_taps.items()}
    by_res_d = {res: (name, ch) for name, (res, ch) in d_taps.items()}
    common = sorted(r for r in set(by_res_g) & set(by_res_d) if r % 2**levels == 0)
    if resolution:
        if resolution not in common:
            raise PocketganError(f"{METHOD}: haar_resolution={resolution}: choose one of {common or 'none'} "
                                 f"(both networks have a feature there and {levels} Haar levels divide it)")  # fmt: skip
        common = [resolution]
    if not common:
        raise PocketganError(f"{METHOD}: no resolution where the teacher and the discriminator both have a feature "
                             f"that {levels} Haar levels divide; lower haar_levels")  # fmt: skip
    (g_name, g_ch), (d_name, d_ch) = by_res_g[common[-1]], by_res_d[common[-1]]
    return g_name, d_name, g_ch, d_ch


class TeacherCritic(Term):
    """NICKEL's teacher discriminator: trained on real vs student images; its softplus term in the student's loss."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def generator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        return {"G_Dt": self.weight * owner.teacher_critic.fooling_loss(images.student)}

    def update(self, owner: StyleGAN2Distiller, images: StepImages, step: int) -> dict[str, Tensor]:
        losses, _, _ = owner.teacher_critic.update(owner, images.real, images.student, step)
        return losses


class WaveletDiscriminatorKD(Term):
    """NICKEL's wavelet MSE between a teacher-generator feature and the student discriminator's, on teacher images."""

    def __init__(self, owner: StyleGAN2Distiller, options: NickelOptions) -> None:
        super().__init__()
        self.weight, self.levels = options.lambda_haar, options.haar_levels
        self.teacher_tap, self.d_tap, g_ch, d_ch = matching_taps(owner.teacher, owner.critic.D, options.haar_levels,
                                                                 options.haar_resolution)  # fmt: skip
        self.projection = nn.Conv2d(d_ch, g_ch, 1) if d_ch != g_ch else nn.Identity()

    def teacher_taps(self) -> list[str]:
        return [self.teacher_tap]

    def discriminator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        with capture_features(owner.critic.D, [self.d_tap]) as store:
            owner.critic.D(images.teacher)
        feature = self.projection(store[self.d_tap])
        target = images.teacher_features[self.teacher_tap]
        return {"D_haar": self.weight * wavelet_mse(feature, target, self.levels)}

    def trained_modules(self) -> list[nn.Module]:
        return [self.projection] if isinstance(self.projection, nn.Conv2d) else []


@register_distiller(METHOD)
class NickelDistiller(StyleGAN2Distiller):
    """NICKEL: the teacher's discriminator trains alongside; the student's learns the teacher's wavelet bands."""

    options_class = NickelOptions
    trains_teacher_critic = True

    def build_terms(self) -> list[Term]:
        if self.teacher_critic is None:
            raise PocketganError(f"{self.name} needs the teacher's discriminator: TEACHER/discriminator/ (a teacher "
                                 "trained with `pocketgan teacher --method stylegan2`, or an imported checkpoint "
                                 "with its discriminator)")  # fmt: skip
        return [TeacherCritic(self.options.lambda_teacher_d), WaveletDiscriminatorKD(self, self.options)]


@register_distiller("nickel-dime")
class NickelDiMEDistiller(NickelDistiller):
    """NICKEL & DiME: NICKEL's interaction plus DiME's MMD in the student generator's loss."""

    options_class = NickelDiMEOptions
    needs_perceptual = True

    def build_terms(self) -> list[Term]:
        return [*super().build_terms(), DistributionMatching(self, self.options)]
