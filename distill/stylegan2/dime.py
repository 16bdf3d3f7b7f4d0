"""``dime``: distribution matching for efficient compression (Yeo et al., 2024; SangyeopYeo/NICKEL_AND_DIME).

On top of StyleGAN2's adversarial step (:mod:`.student`), the student's generator loss adds
``lambda_mmd · MMD(E(s), E(t))``: the discrepancy between the *distributions* of student and teacher
images in the embedding space of an image encoder ``E`` (:func:`~.mmd.mmd`). Options:

- ``kernel``: ``moments`` (the released code's L1 on first and second moments, default), ``linear``,
  ``rbf`` (Gaussian, median bandwidth) or ``polynomial`` (KID's);
- ``encoder``: ``domain`` (default: the run's feature network, i.e. the dataset's domain network, or
  ``--perceptual``; offline), or any feature-network name or weights file
  (``dino-resnet50=PATH``, ``clip-rn50=PATH``: the published towers);
- ``stats``: a teacher-statistics file (``python -m pocketgan.distill.stylegan2.teacher_stats``)
  accumulated over many teacher samples, instead of the teacher's images of each batch (default);
- ``lambda_mmd``: the term's weight; by default the encoder's (:func:`~.encoders.load_dime_encoder`): the
  released 20 for DINO ResNet-50 and 15 for CLIP RN50, 20 for the domain network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import register_distiller
from pocketgan.distill.common import require_choice, require_non_negative
from pocketgan.distill.stylegan2.encoders import DEFAULT_WEIGHT, DimeEncoder, dime_loss, load_dime_encoder
from pocketgan.distill.stylegan2.mmd import KERNELS, TeacherStats
from pocketgan.distill.stylegan2.student import StepImages, StudentOptions, StyleGAN2Distiller, Term

METHOD = "dime"
DOMAIN = "domain"


@dataclass
class DiMEOptions(StudentOptions):
    """``config.options`` of ``dime`` (and the DiME half of ``nickel-dime``)."""

    kernel: str = "moments"
    encoder: str = DOMAIN
    stats: str = ""
    lambda_mmd: float | None = None
    unbiased: bool = True

    def __post_init__(self) -> None:
        self.validate(METHOD)
        self.check_dime()

    def check_dime(self) -> None:
        require_choice(METHOD, "kernel", self.kernel, KERNELS)
        if self.lambda_mmd is not None:
            require_non_negative(METHOD, lambda_mmd=self.lambda_mmd)


def resolve_encoder(name: str, run_network: Any, weight: float | None) -> DimeEncoder:
    """The encoder and its weight: the run's feature network for ``domain``, else the feature network ``name``."""
    if name != DOMAIN:
        return load_dime_encoder(name, weight=weight)
    if run_network is None:
        raise PocketganError(f"{METHOD}: encoder=domain needs the run's feature network (pass perceptual=)")
    return DimeEncoder(run_network, float(weight) if weight is not None else DEFAULT_WEIGHT)


class DistributionMatching(Term):
    """DiME's MMD between the student's and the teacher's image embeddings."""

    def __init__(self, owner: StyleGAN2Distiller, options: DiMEOptions) -> None:
        super().__init__()
        self.options = options
        self.encoder = resolve_encoder(options.encoder, owner.perceptual, options.lambda_mmd)  # not a submodule
        self.stats = {self.encoder.name: TeacherStats.load(options.stats)} if options.stats else None
        if self.stats is not None:
            self.encoder.check_stats(self.stats[self.encoder.name])

    def generator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        self.encoder.network.to(images.student.device)
        o = self.options
        loss = dime_loss(images.student, [self.encoder], teacher_images=images.teacher, stats=self.stats,
                         kernel=o.kernel, unbiased=o.unbiased)  # fmt: skip
        return {"G_mmd": loss}


@register_distiller(METHOD)
class DiMEDistiller(StyleGAN2Distiller):
    """DiME: StyleGAN2's adversarial loss + MMD in an encoder's embedding space."""

    options_class = DiMEOptions
    needs_perceptual = True

    def build_terms(self) -> list[Term]:
        return [DistributionMatching(self, self.options)]
