"""``pocketgan teacher --method stylegan2``: train a StyleGAN2 teacher on an unconditional image folder.

StyleGAN2's recipe (NVlabs/stylegan2-ada-pytorch ``training/training_loop.py`` + ``loss.py``,
rosinality/stylegan2-pytorch ``train.py``), per step on a batch of real images and latents ``z``:

1. generator: ``softplus(−D(G(z)))`` (non-saturating), optionally path-length regularized
   (``pl_weight``, off by default: see :mod:`.gan_loss`), optionally with style mixing
   (``style_mixing`` probability, **off by default**: tiny CPU runs learn faster without it;
   StyleGAN2 uses 0.9);
2. discriminator: ``softplus(D(G(z))) + softplus(−D(x))`` on the same fakes (detached), lazy R1
   (``r1_gamma`` 10, every ``r1_every`` 16 steps, ×16);
3. ``G_ema`` follows ``G`` with StyleGAN2's half-life ``ema_kimg`` (10 k images) and its ramp-up
   (``ema_rampup`` 0.05: early on the half-life is 5 % of the images seen, so short runs have a
   useful ``G_ema``); buffers are copied, so ``G_ema`` gets ``w_avg`` (truncation's centre), which the
   generator's mapping network tracks in training mode (β 0.995).

Adam lr 0.002 (``--lr``), β (0, 0.99), with the lazy-regularization correction; the lr stays
constant (no decay, as StyleGAN2). The saved model is ``G_ema``; its discriminator goes to
``OUT/discriminator/`` (:mod:`.discriminator_io`) so NICKEL can keep training it. The discriminator
is the registered ``stylegan2`` discriminator matching the generator's config (a teacher directory
with a discriminator, given as ``--arch``, continues from both).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import Distiller, register_distiller
from pocketgan.distill.common import as_floats
from pocketgan.distill.stylegan2.adversarial import (
    AdversarialOptions,
    Critic,
    LatentGANRun,
    require_latent_generator,
    seeded_noise,
)
from pocketgan.distill.stylegan2.discriminator_io import build_discriminator, discriminator_config, save_discriminator
from pocketgan.distill.stylegan2.gan_loss import PL_INTERVAL, LazyRegularization, path_length_penalty

METHOD = "stylegan2"
DISCRIMINATOR = "D"
"""The companion name of a teacher's discriminator (``OUT/discriminator``)."""


@dataclass
class TeacherOptions(AdversarialOptions):
    """``config.options`` of ``stylegan2`` (see the module docstring)."""

    style_mixing: float = 0.0
    pl_weight: float = 0.0
    pl_every: int = PL_INTERVAL

    def __post_init__(self) -> None:
        self.validate(METHOD)
        self.require_non_negative_fields(METHOD, "style_mixing", "pl_weight")
        if self.style_mixing > 1 or self.pl_every < 1:
            raise PocketganError(f"{METHOD}: style_mixing must be in [0, 1] and pl_every >= 1")


def mix_styles(generator: nn.Module, z: Tensor, probability: float) -> Tensor:
    """Per-layer latents ``ws`` (B, num_ws, w_dim) of ``z`` (B, K, z_dim); with ``probability`` the layers
    from a random cutoff on take the second latent's ``w`` (style mixing; needs K ≥ 2)."""
    w = generator.mapping(z[:, 0])
    ws = w.unsqueeze(1).repeat(1, generator.num_ws, 1)
    if probability > 0 and z.shape[1] > 1 and float(torch.rand(())) < probability:
        cutoff = int(torch.randint(1, generator.num_ws, ()))
        ws[:, cutoff:] = generator.mapping(z[:, 1]).unsqueeze(1)
    return ws


@register_distiller(METHOD)
class StyleGAN2Teacher(LatentGANRun, Distiller):
    """Trains ``student`` (a StyleGAN2 generator) from scratch; ``self.student`` becomes its ``G_ema``."""

    needs_teacher = False

    def setup(self) -> None:
        require_latent_generator(self.student, "teacher being trained")
        self.options = TeacherOptions.from_config(self.config, METHOD)
        self.snapshot_every = self.options.snapshot_every
        self.config = replace(self.config, decay_from=1.0)  # StyleGAN2 keeps its lr constant
        self.generator = self.student.requires_grad_(True)
        self.student = copy.deepcopy(self.generator).requires_grad_(False)  # G_ema, the saved model
        given = self.companions.get(DISCRIMINATOR)
        self.d_config = dict(getattr(given, "config", None) or discriminator_config(self.generator))
        self.critic = Critic(self, DISCRIMINATOR, given if given is not None else build_discriminator(self.d_config),
                             self.options, self.config.lr)  # fmt: skip
        self.pl = LazyRegularization(self.options.pl_weight, self.options.pl_every)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.setup_generator(self.pl)

    def latent_shape(self) -> tuple[int, int]:
        """One latent per sample, two with style mixing."""
        return (2 if self.options.style_mixing > 0 else 1, int(self.generator.z_dim))

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """Generator (non-saturating), then discriminator (logistic + lazy R1) on the same fakes, then the EMA."""
        real, z, noise_seed = batch["B"], batch["z"], batch["noise_seed"]
        ws = mix_styles(self.generator, z, self.options.style_mixing)
        with seeded_noise(noise_seed, real.device):
            fake = self.generator.synthesis(ws, noise_mode="random")
        losses = {"G": self.critic.fooling_loss(fake)}
        self.step_optimizer("G", losses["G"], [self.generator])
        if self.pl.due(step):
            penalty, self.pl_mean = path_length_penalty(self.generator, ws, self.pl_mean)
            losses["G_pl"] = penalty * self.pl.scale
            self.step_optimizer("G", losses["G_pl"], [self.generator])
        critic, real_logits, fake_logits = self.critic.update(self, real, fake, step)
        losses.update(critic)
        self.update_average(step)
        if self.logits.due(step):
            self.logits.record("D", real_logits, fake_logits)
        return as_floats(losses)

    def preview(self, samples: dict[str, Tensor]) -> list[Tensor]:
        """Real images | ``G_ema`` on fixed latents (constant noise)."""
        real = samples["B"]
        z = self.preview_z(real)
        return [real, self.student(z)]

    def save_extras(self, out: Path, provenance: dict[str, Any]) -> None:
        """The discriminator, to ``OUT/discriminator/``."""
        save_discriminator(self.critic.D, out, self.d_config)
