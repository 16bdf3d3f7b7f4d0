"""``kd`` on a StyleGAN2 teacher: CAGAN's baseline (lychenyoko/content-aware-gan-compression).

The student and the teacher get the same latent (and noise); the student's generator loss adds
``lambda_l1 · L1(s, t) + lambda_perceptual · d(s, t)`` (3 and 3, CAGAN's settings) to StyleGAN2's
non-saturating loss with lazy R1 (:mod:`.student`). CAGAN's ``d`` is LPIPS (VGG); no LPIPS weights
can be fetched offline, so ``d`` is the unweighted LPIPS-style distance
(:func:`pocketgan.distill.features.base.feature_distance`) in a pluggable feature network: the dataset's
domain network by default, ``--perceptual NAME|PATH`` for another (a ``.pth`` LPIPS-style backbone
works the same way). ``pocketgan distill --method kd`` runs this class when the teacher is a
StyleGAN2 (its input is a latent) and :class:`pocketgan.distill.kd.OutputKD` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.nn import functional as F

from pocketgan.distill.base import register_distiller
from pocketgan.distill.common import require_non_negative
from pocketgan.distill.features.base import feature_distance
from pocketgan.distill.stylegan2.student import StepImages, StudentOptions, StyleGAN2Distiller, Term

METHOD = "stylegan2-kd"


@dataclass
class KDOptions(StudentOptions):
    """``config.options`` of StyleGAN2 ``kd``."""

    lambda_l1: float = 3.0
    lambda_perceptual: float = 3.0

    def __post_init__(self) -> None:
        self.validate("kd")
        require_non_negative("kd", lambda_l1=self.lambda_l1, lambda_perceptual=self.lambda_perceptual)


class ImageKD(Term):
    """CAGAN's image-level KD: L1 and a perceptual distance between the student's and the teacher's images."""

    def __init__(self, lambda_l1: float, lambda_perceptual: float) -> None:
        super().__init__()
        self.lambda_l1, self.lambda_perceptual = lambda_l1, lambda_perceptual

    def generator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        terms = {"G_l1": self.lambda_l1 * F.l1_loss(images.student, images.teacher)}
        if self.lambda_perceptual > 0:
            network = owner.perceptual  # the run's feature network (frozen), resolved by the API
            distance = feature_distance(network(images.student), network(images.teacher))
            terms["G_perceptual"] = self.lambda_perceptual * distance.mean()
        return terms


@register_distiller(METHOD)
class StyleGAN2KD(StyleGAN2Distiller):
    """CAGAN-style KD of a StyleGAN2 teacher into a pruned student (``--method kd``)."""

    options_class = KDOptions
    needs_perceptual = True

    def build_terms(self) -> list[Term]:
        o = self.options
        return [ImageKD(o.lambda_l1, o.lambda_perceptual)]
