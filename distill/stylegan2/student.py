"""The StyleGAN2 distillation step every method shares, and the :class:`Term` each method adds to it.

Per step, on real images ``x`` and latents ``z`` with a noise seed (drawn by the training loop):

1. the frozen teacher makes ``t = T(z)`` and the student ``s = S(z)``, **with the same latents and the
   same noise** (:func:`~.adversarial.generate` seeds both generators' noise draws identically);
2. the student's generator step: StyleGAN2's non-saturating ``softplus(−D_s(s))`` plus every term's
   :meth:`Term.generator_terms` (KD's L1 + perceptual, ITGC's MI bound, DiME's MMD, NICKEL's teacher
   critic);
3. the student's discriminator ``D_s``: logistic loss on ``x`` vs ``s``, lazy R1, plus the terms'
   :meth:`Term.discriminator_terms` (NICKEL's wavelet MSE);
4. each term's own networks: :meth:`Term.update` (ITGC's EBM, NICKEL's teacher discriminator).

``D_s`` starts as a copy of the teacher's discriminator (CAGAN) when the teacher directory has one
(``TEACHER/discriminator``), else from scratch. The teacher generator never changes; the teacher's
discriminator changes only under NICKEL. Every ``logit_every`` steps the mean logits of both
discriminators on real and fake (``D_real``, ``D_fake``, ``Dt_real``, ``Dt_fake``; fake = the student's
images) go to ``OUT/train/metrics.jsonl`` (see :meth:`pop_metrics`). Adam lr 0.002 β (0, 0.99) with
the lazy-R1 correction for the discriminators; constant lr. As in StyleGAN2's training loop the trained
student is ``self.generator`` and the saved one, ``self.student``, its EMA (``ema_kimg``, ``ema_rampup``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.distill.base import Distiller, set_requires_grad
from pocketgan.distill.common import as_floats
from pocketgan.distill.stylegan2.adversarial import (
    AdversarialOptions,
    Critic,
    LatentGANRun,
    generate,
    require_latent_generator,
)
from pocketgan.distill.stylegan2.discriminator_io import build_discriminator, discriminator_config
from pocketgan.distill.stylegan2.networks import check_compatible
from pocketgan.models import capture_features

TEACHER_DISCRIMINATOR = "D"  # the companion name of the teacher directory's discriminator


@dataclass
class StudentOptions(AdversarialOptions):
    """Options of every StyleGAN2 distiller: the adversarial ones, plus how the student was made.

    ``ratio`` / ``criterion`` are read before the distiller is built (the teacher pruned uniformly to
    ``ratio``, weights kept by ``criterion``); they are options so the run identity records them.
    """

    ratio: float | None = None
    criterion: str = "l1"


@dataclass
class StepImages:
    """One step's images: real ``x``, the teacher's and the student's for the same latents and noise."""

    real: Tensor
    teacher: Tensor
    student: Tensor
    z: Tensor
    noise_seed: Tensor
    teacher_features: dict[str, Tensor] = field(default_factory=dict)


class Term(nn.Module):
    """One method's contribution to the shared step (its networks are this module's children)."""

    def teacher_taps(self) -> list[str]:
        """Teacher-generator modules whose outputs :class:`StepImages` must carry (``teacher_features``)."""
        return []

    def generator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        """Weighted terms added to the student generator's loss (gradients reach the student only)."""
        return {}

    def discriminator_terms(self, owner: StyleGAN2Distiller, images: StepImages) -> dict[str, Tensor]:
        """Weighted terms added to the student discriminator's loss."""
        return {}

    def update(self, owner: StyleGAN2Distiller, images: StepImages, step: int) -> dict[str, Tensor]:
        """Train this term's own networks; their losses for logging."""
        return {}

    def trained_modules(self) -> list[nn.Module]:
        """Networks this term adds to the student discriminator's optimizer (their gradients are synced)."""
        return []


class StyleGAN2Distiller(LatentGANRun, Distiller):
    """Base of ``kd`` (StyleGAN2), ``itgc``, ``dime``, ``nickel`` and ``nickel-dime``: subclasses set
    ``options_class`` and build their :class:`Term` list in :meth:`build_terms`."""

    options_class: type[StudentOptions] = StudentOptions
    trains_teacher_critic = False  # NICKEL: the teacher's discriminator keeps training

    def setup(self) -> None:
        require_latent_generator(self.teacher, "teacher")
        require_latent_generator(self.student, "student")
        check_compatible(self.teacher, self.student)
        self.options = self.options_class.from_config(self.config, self.name)
        self.snapshot_every = self.options.snapshot_every
        self.config = replace(self.config, decay_from=1.0)  # StyleGAN2 keeps its lr constant
        self.generator = self.student.requires_grad_(True)  # trained; self.student is its EMA, the saved model
        self.student = copy.deepcopy(self.generator).requires_grad_(False)
        set_requires_grad(self.teacher, False)
        self.teacher.eval()
        teacher_d = self.companions.get(TEACHER_DISCRIMINATOR)
        student_d = copy.deepcopy(teacher_d) if teacher_d is not None else self._fresh_discriminator()
        self.critic = Critic(self, "D", student_d, self.options, self.config.lr)
        self.teacher_critic: Critic | None = None
        self.teacher_D: nn.Module | None = None
        if teacher_d is not None and self.trains_teacher_critic:
            self.teacher_critic = Critic(self, "Dt", teacher_d, self.options, self.config.lr)
        elif teacher_d is not None:
            self.teacher_D = teacher_d.requires_grad_(False).eval()
        self.setup_generator()
        self.terms = nn.ModuleList(self.build_terms())
        for term in self.terms:
            extra = [p for module in term.trained_modules() for p in module.parameters()]
            if extra:
                self.optimizers["D"].add_param_group({"params": extra})

    def _fresh_discriminator(self) -> nn.Module:
        return build_discriminator(discriminator_config(self.teacher))

    def build_terms(self) -> list[Term]:
        """The method's terms (none: StyleGAN2's adversarial loss alone)."""
        return []

    def train(self, mode: bool = True) -> StyleGAN2Distiller:
        """Switch the trained parts; the teacher generator (and a frozen teacher discriminator) stay in eval mode."""
        super().train(mode)
        self.teacher.eval()
        if self.teacher_D is not None:
            self.teacher_D.eval()
        return self

    def latent_shape(self) -> tuple[int, int]:
        return (1, int(self.generator.z_dim))

    def images(self, batch: dict[str, Tensor]) -> StepImages:
        """The teacher's images (and tapped features) and the student's, for the batch's latents and noise."""
        z, noise_seed = batch["z"][:, 0], batch["noise_seed"]
        names = sorted({name for term in self.terms for name in term.teacher_taps()})
        with torch.no_grad(), capture_features(self.teacher, names) as features:
            teacher = generate(self.teacher, z, noise_seed)
        student = generate(self.generator, z, noise_seed)
        return StepImages(batch["B"], teacher, student, z, noise_seed, dict(features))

    def generator_losses(self, images: StepImages) -> dict[str, Tensor]:
        """The student generator's terms: the non-saturating ``G`` through its (frozen) discriminator and the
        method's terms."""
        losses = {"G": self.critic.fooling_loss(images.student)}
        for term in self.terms:
            losses.update(term.generator_terms(self, images))
        return losses

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """Student generator, student discriminator, then the terms' own networks (see the module docstring)."""
        images = self.images(batch)
        losses = self.generator_losses(images)
        self.step_optimizer("G", sum(losses.values()), [self.generator])
        extra = {key: value for term in self.terms for key, value in term.discriminator_terms(self, images).items()}
        modules = [m for term in self.terms for m in term.trained_modules()]
        critic, real_logits, fake_logits = self.critic.update(self, images.real, images.student, step, extra,
                                                              modules=modules)  # fmt: skip
        losses.update(critic)
        for term in self.terms:
            losses.update(term.update(self, images, step))
        self.update_average(step)
        if self.logits.due(step):
            self.logits.record("D", real_logits, fake_logits)
            self._record_teacher_logits(images)
        return as_floats(losses)

    @torch.no_grad()
    def _record_teacher_logits(self, images: StepImages) -> None:
        teacher_d = self.teacher_critic.D if self.teacher_critic is not None else self.teacher_D
        if teacher_d is not None:
            self.logits.record("Dt", teacher_d(images.real), teacher_d(images.student))

    def preview(self, samples: dict[str, Tensor]) -> list[Tensor]:
        """Real images | teacher | student (its EMA, the saved model) on the same fixed latents (constant noise)."""
        real = samples["B"]
        z = self.preview_z(real)
        return [real, self.teacher(z), self.student(z)]

    def trainable_state(self) -> dict[str, Any]:
        """Everything but the frozen networks: the teacher generator (and a frozen teacher discriminator) come
        from ``--teacher``, the feature network from the run (its key is in the run identity)."""
        frozen = ("teacher.", "teacher_D.", "perceptual.")
        return {k: v for k, v in self.state_dict().items() if not k.startswith(frozen)}
