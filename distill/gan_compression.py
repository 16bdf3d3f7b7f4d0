"""GAN Compression (Li et al., CVPR 2020) as a baseline: distil a frozen, pretrained teacher.

The student trains against a conditional PatchGAN with (mit-han-lab/gan-compression,
``distillers/base_resnet_distiller.py`` and ``resnet_distiller.py``):

- a GAN loss (``gan_mode``, hinge by default) weighted ``lambda_gan`` (1);
- a reconstruction L1 weighted ``lambda_recon`` (100, the pix2pix setting) to the ground
  truth B (``recon_target=real``, default) or to the teacher's output (``recon_target=teacher``);
- feature distillation: MSE between the teacher's intermediate features and the student's,
  each mapped by a learned 1×1 conv, at the paired feature taps (``lambda_distill`` 1).
  For ResNets the taps are GAN Compression's ``model.9/12/15/18``; students of another
  width, depth or family are paired by stride (:func:`pocketgan.distill.losses.pair_feature_taps`).

On **unpaired** data (``config.unpaired``: CycleGAN's ``trainA/``/``trainB/``) it uses the paper's
CycleGAN settings: an unconditional PatchGAN (instance norm) that tells real B images from the
student's fakes, LSGAN, reconstruction to the teacher's output (``recon_target=teacher``) with
``lambda_recon`` 10 and ``lambda_distill`` 0.01 (the user's options override these defaults).

Adam (``DistillConfig.lr`` 2e-4, β1 0.5) for the student with its adapters and for the
discriminator. Options (``DistillConfig.options``): ``gan_mode``, ``lambda_gan``,
``lambda_recon``, ``lambda_distill``, ``recon_target``, ``ndf`` (64), ``n_layers_d`` (3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from pocketgan.distill.base import Distiller, GANLoss, register_distiller, set_requires_grad
from pocketgan.distill.common import (
    MethodOptions,
    as_floats,
    conditional_discriminator,
    frozen,
    generator_taps,
    require_choice,
    require_non_negative,
    require_target,
)
from pocketgan.distill.cyclegan import critic_loss, fooling_loss, unconditional_discriminator, unpaired_config
from pocketgan.distill.losses import FeatureDistillation, adversarial_loss, discriminator_loss, pair_feature_taps
from pocketgan.core.errors import PocketganError
from pocketgan.models import capture_features


@dataclass
class GANCompressionOptions(MethodOptions):
    """``config.options`` of ``gan-compression`` (defaults: the pix2pix setting of the paper's code)."""

    gan_mode: str = "hinge"
    lambda_gan: float = 1.0
    lambda_recon: float = 100.0
    lambda_distill: float = 1.0
    recon_target: str = "real"  # real: L1 to the ground truth B; teacher: L1 to the teacher's output
    ndf: int = 64
    n_layers_d: int = 3

    def __post_init__(self) -> None:
        method = "gan-compression"
        require_choice(method, "recon_target", self.recon_target, ("real", "teacher"))
        require_non_negative(method, lambda_gan=self.lambda_gan, lambda_recon=self.lambda_recon,
                             lambda_distill=self.lambda_distill)  # fmt: skip
        if self.ndf < 1 or self.n_layers_d < 1:
            raise PocketganError(f"{method}: ndf and n_layers_d must be >= 1")


UNPAIRED_DEFAULTS = {"gan_mode": "lsgan", "lambda_recon": 10.0, "lambda_distill": 0.01, "recon_target": "teacher"}
"""GAN Compression's CycleGAN setting (mit-han-lab/gan-compression, ``scripts/cycle_gan``)."""


@register_distiller("gan-compression")
class GANCompressionDistiller(Distiller):
    """Student vs a PatchGAN + L1 reconstruction + feature distillation from a frozen teacher.

    The teacher is frozen (no gradients) and stays in eval mode even when the distiller
    is switched to training mode. ``self.distill`` holds the learned 1×1 adapters.
    """

    def setup(self) -> None:
        unpaired = self.config.unpaired
        config = unpaired_config(self.config, UNPAIRED_DEFAULTS) if unpaired else self.config
        self.options = opts = GANCompressionOptions.from_config(config, self.name)
        if unpaired and opts.recon_target == "real":
            raise PocketganError("gan-compression on unpaired data: B is not A's target; use recon_target=teacher")
        set_requires_grad(self.teacher, False)
        self.discriminator = (unconditional_discriminator(self.teacher.io.output_channels, opts.ndf, opts.n_layers_d)
                              if unpaired else conditional_discriminator(self.teacher, opts.ndf, opts.n_layers_d))
        self.distill = FeatureDistillation(
            pair_feature_taps(generator_taps(self.teacher, "teacher"), generator_taps(self.student, "student"))
        )
        self.gan_loss = GANLoss(self.options.gan_mode)
        self.make_adam("G", itertools.chain(self.student.parameters(), self.distill.parameters()))
        self.make_adam("D", self.discriminator.parameters())
        self.train()

    def train(self, mode: bool = True) -> GANCompressionDistiller:
        """Switch the trainable networks' mode; the frozen teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """One discriminator update, then one update of the student and its adapters."""
        opts = self.options
        real_a, real_b = batch["A"], require_target(batch, self.name)
        with torch.no_grad(), capture_features(self.teacher, self.distill.teacher_taps) as teacher_features:
            teacher_b = self.teacher(real_a)
        with capture_features(self.student, self.distill.student_taps) as student_features:
            fake_b = self.student(real_a)

        loss_d = self.critic_loss(real_a, real_b, fake_b)
        self.step_optimizer("D", loss_d, [self.discriminator])

        target = real_b if opts.recon_target == "real" else teacher_b
        with frozen(self.discriminator):
            losses = {
                "G_gan": opts.lambda_gan * self.fooling_loss(real_a, fake_b),
                "G_recon": opts.lambda_recon * F.l1_loss(fake_b, target),
                "G_distill": opts.lambda_distill * self.distill(student_features, teacher_features),
            }
            loss_g = sum(losses.values())
            self.step_optimizer("G", loss_g, [self.student, self.distill])
        return as_floats({"G": loss_g, **losses, "D": loss_d})

    def critic_loss(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor) -> Tensor:
        """The discriminator's objective: on ``(A, B)`` pairs, or on single images when unpaired."""
        if self.config.unpaired:
            return critic_loss(self.discriminator, self.gan_loss, real_b, fake_b)
        return discriminator_loss(self.discriminator, self.gan_loss, real_a, real_b, fake_b)

    def fooling_loss(self, real_a: Tensor, fake_b: Tensor) -> Tensor:
        """The student's GAN term against the (conditional or unconditional) discriminator."""
        if self.config.unpaired:
            return fooling_loss(self.discriminator, self.gan_loss, fake_b)
        return adversarial_loss(self.discriminator, self.gan_loss, real_a, fake_b)
