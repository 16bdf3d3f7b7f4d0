"""The pix2pix recipe (Isola et al.): a generator trained with a conditional PatchGAN and L1.

Used to train teachers (``pocketgan teacher``). Defaults follow
junyanz/pytorch-CycleGAN-and-pix2pix: LSGAN or vanilla GAN loss, L1 × 100, Adam
lr 2e-4 β1 0.5, a 70×70 PatchGAN seeing ``cat(A, B)``, weights initialised from
N(0, 0.02). Options (``--option key=value``): ``ndf`` (64), ``n_layers`` (3),
``lambda_l1`` (100), ``lambda_ssim`` (0: off; a ``λ·(1 − SSIM)`` term to the ground truth, which
image-restoration work adds beside L1 for structure) and ``lambda_gan`` (1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pocketgan.distill.base import Distiller, GANLoss, register_distiller, set_requires_grad
from pocketgan.distill.common import conditional_discriminator, require_target
from pocketgan.distill.losses import adversarial_loss, ssim_loss


def init_pix2pix_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix's ``init_type=normal``: conv weights ~ N(0, gain), norm scales ~ N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


@register_distiller("pix2pix")
class Pix2PixTrainer(Distiller):
    """Trains ``student`` as a pix2pix generator against a conditional PatchGAN (no teacher)."""

    needs_teacher = False
    supports_unpaired = False  # pix2pix learns A → its own B; unaligned data: --method cyclegan

    def setup(self) -> None:
        opts = self.config.options
        self.discriminator = init_pix2pix_weights(
            conditional_discriminator(self.student, ndf=int(opts.get("ndf", 64)), n_layers=int(opts.get("n_layers", 3)))
        )
        self.gan_loss = GANLoss(self.config.gan_mode)
        self.lambda_l1 = float(opts.get("lambda_l1", 100.0))
        self.lambda_ssim = float(opts.get("lambda_ssim", 0.0))
        self.lambda_gan = float(opts.get("lambda_gan", 1.0))
        self.make_adam("G", self.student.parameters())
        self.make_adam("D", self.discriminator.parameters())

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """Update D on real/fake pairs, then G on GAN + λ·L1 (pix2pix ``optimize_parameters``)."""
        real_a, real_b = batch["A"], require_target(batch, "pix2pix")
        fake_b = self.student(real_a)

        set_requires_grad(self.discriminator, True)
        loss_d_fake = self.gan_loss(self.discriminator(torch.cat([real_a, fake_b.detach()], 1)), False)
        loss_d_real = self.gan_loss(self.discriminator(torch.cat([real_a, real_b], 1)), True)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        self.step_optimizer("D", loss_d, [self.discriminator])

        set_requires_grad(self.discriminator, False)
        loss_g_gan = adversarial_loss(self.discriminator, self.gan_loss, real_a, fake_b)
        loss_g_l1 = nn.functional.l1_loss(fake_b, real_b)
        loss_g = self.lambda_gan * loss_g_gan + self.lambda_l1 * loss_g_l1
        logs = {}
        if self.lambda_ssim:
            loss_g_ssim = ssim_loss(fake_b, real_b)
            loss_g = loss_g + self.lambda_ssim * loss_g_ssim
            logs["G_ssim"] = loss_g_ssim.item()
        self.step_optimizer("G", loss_g, [self.student])
        set_requires_grad(self.discriminator, True)
        return logs | {
            "G_gan": loss_g_gan.item(),
            "G_L1": loss_g_l1.item(),
            "D_real": loss_d_real.item(),
            "D_fake": loss_d_fake.item(),
        }
