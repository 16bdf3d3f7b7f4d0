"""``itgc``: information-theoretic GAN compression (Kang et al., NeurIPS 2022), as reimplemented in
SangyeopYeo/NICKEL_AND_DIME (``training/loss_CAGC_with_VEM.py``).

On top of StyleGAN2's adversarial step (:mod:`.student`), the student maximizes a variational lower
bound of the mutual information between the teacher's and its own images. The variational
distribution is an energy-based model ``E(teacher, student)`` (:class:`~.ebm.ResnetEBM`, spectral
norm, both images at half resolution) trained alongside. Per step, with ``s = S(z)``, ``t = T(z)``:

1. negatives ``x⁻`` by Langevin dynamics on ``E(·, s)`` from ``s`` (``langevin_steps`` 10, step
   ``langevin_step_size`` 50, noise ``langevin_noise`` 0.005);
2. the student's generator loss adds ``lambda_mi · (E(t, s) − E(x⁻, s))`` (0.05: the loss class's
   default, which the released configs leave empty and so silently 0; set here);
3. the EBM takes a step on ``E⁺ − E⁻ + ebm_l2 · (E⁺² + E⁻²)`` (0.05), Adam ``ebm_lr`` 1e-4, β (0, 0.999).

``ebm_width`` (64, ITGC's ``input_nc``) and ``ebm_blocks`` (7 at 256 px; 0: as many as the image size
allows, at most 7) size the EBM.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import register_distiller
from pocketgan.distill.common import require_non_negative
from pocketgan.distill.stylegan2.ebm import (
    EBM_BETAS,
    EBM_LR,
    L2_WEIGHT,
    LANGEVIN_NOISE,
    LANGEVIN_STEP_SIZE,
    LANGEVIN_STEPS,
    MI_WEIGHT,
    ResnetEBM,
    ebm_loss,
    langevin_sample,
    max_blocks,
    mi_loss,
)
from pocketgan.distill.stylegan2.adversarial import add_adam
from pocketgan.distill.stylegan2.student import StepImages, StudentOptions, StyleGAN2Distiller, Term

METHOD = "itgc"
ITGC_BLOCKS = 7


@dataclass
class ITGCOptions(StudentOptions):
    """``config.options`` of ``itgc``."""

    lambda_mi: float = MI_WEIGHT
    ebm_l2: float = L2_WEIGHT
    ebm_lr: float = EBM_LR
    ebm_width: int = 64
    ebm_blocks: int = 0
    langevin_steps: int = LANGEVIN_STEPS
    langevin_step_size: float = LANGEVIN_STEP_SIZE
    langevin_noise: float = LANGEVIN_NOISE

    def __post_init__(self) -> None:
        self.validate(METHOD)
        require_non_negative(METHOD, lambda_mi=self.lambda_mi, ebm_l2=self.ebm_l2, ebm_blocks=self.ebm_blocks,
                             langevin_steps=self.langevin_steps, langevin_step_size=self.langevin_step_size,
                             langevin_noise=self.langevin_noise)  # fmt: skip
        if not self.ebm_lr > 0 or self.ebm_width < 2:
            raise PocketganError(f"{METHOD}: ebm_lr must be > 0 and ebm_width >= 2")


class MutualInformation(Term):
    """ITGC's MI lower bound: the EBM, its Langevin negatives, its own optimizer ``EBM``."""

    def __init__(self, owner: StyleGAN2Distiller, options: ITGCOptions) -> None:
        super().__init__()
        size = int(owner.student.size)
        blocks = options.ebm_blocks or min(ITGC_BLOCKS, max_blocks(size))
        self.options = options
        self.ebm = ResnetEBM(input_nc=options.ebm_width, n_blocks=blocks)
        add_adam(owner, "EBM", self.ebm.parameters(), options.ebm_lr, EBM_BETAS)
        self.sample: Tensor | None = None

    def negatives(self, images: StepImages) -> Tensor:
        o = self.options
        return langevin_sample(self.ebm, images.student, steps=o.langevin_steps, step_size=o.langevin_step_size,
                               noise=o.langevin_noise)  # fmt: skip

    def generator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        self.sample = self.negatives(images)
        return {"G_mi": self.options.lambda_mi * mi_loss(self.ebm, images.teacher, images.student, self.sample)}

    def update(self, owner: StyleGAN2Distiller, images: StepImages, step: int) -> dict[str, Tensor]:
        sample = self.sample if self.sample is not None else self.negatives(images)
        loss = ebm_loss(self.ebm, images.teacher, images.student, sample, l2=self.options.ebm_l2)
        owner.step_optimizer("EBM", loss, [self.ebm])
        self.sample = None
        return {"EBM": loss}


@register_distiller(METHOD)
class ITGCDistiller(StyleGAN2Distiller):
    """ITGC: StyleGAN2's adversarial loss + the EBM mutual-information bound."""

    options_class = ITGCOptions

    def build_terms(self) -> list[Term]:
        return [MutualInformation(self, self.options)]
