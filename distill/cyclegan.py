"""CycleGAN (Zhu et al., ICCV 2017): unpaired teachers, and the cycle machinery OMGD's unpaired mode reuses.

Two generators, ``G_A``: A → B (the model a run saves, state-dict compatible with junyanz's
``latest_net_G_A.pth`` for ``resnet9``) and ``G_B``: B → A (saved beside it as ``OUT/G_B``),
and two unconditional PatchGANs (instance norm): ``D_A`` tells real B from ``G_A``'s fakes,
``D_B`` real A from ``G_B``'s. Per step (junyanz ``CycleGANModel.optimize_parameters``):

1. the generators, against the frozen discriminators: LSGAN ``D_A(G_A(A))`` and ``D_B(G_B(B))``
   called real, cycle ``λ·|G_B(G_A(A)) − A|₁ + λ·|G_A(G_B(B)) − B|₁`` (``lambda_cycle`` 10) and
   identity ``λ·λ_idt·(|G_A(B) − B|₁ + |G_B(A) − A|₁)`` (``lambda_identity`` 0.5);
2. the discriminators, each on its real domain and on a fake drawn from a 50-image history
   (:class:`~pocketgan.distill.image_pool.ImagePool`), each loss halved.

Adam 2e-4 β1 0.5 with linear decay come from the training loop. Options (``--option``):
``lambda_cycle`` (10), ``lambda_identity`` (0.5), ``pool_size`` (50), ``ndf`` (64),
``n_layers_d`` (3), ``gan_mode`` (``--gan-mode``, lsgan). ``G_B`` starts from the ``G_B`` directory beside the
``--arch`` model directory (or ``latest_net_G_B.pth`` beside a ``…G_A.pth``) when there is one,
else from scratch with ``G_A``'s architecture.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, fields, replace
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import DistillConfig, Distiller, GANLoss, register_distiller
from pocketgan.distill.common import MethodOptions, as_floats, frozen, require_non_negative, require_target
from pocketgan.distill.image_pool import ImagePool
from pocketgan.models import create_discriminator

METHOD = "cyclegan"
REVERSE = "G_B"
"""The name of the B → A generator among a distiller's companions and extra outputs (``OUT/G_B``)."""


# ---------------------------------------------------------------- losses


def cycle_loss(real: Tensor, reconstructed: Tensor, lambda_cycle: float) -> Tensor:
    """``lambda_cycle · mean |reconstructed − real|`` (one direction of the cycle)."""
    return lambda_cycle * F.l1_loss(reconstructed, real)


def identity_loss(target: Tensor, mapped: Tensor, lambda_cycle: float, lambda_identity: float) -> Tensor:
    """``lambda_cycle · lambda_identity · mean |G(target) − target|`` (``mapped`` is ``G(target)``), as junyanz."""
    return lambda_cycle * lambda_identity * F.l1_loss(mapped, target)


def critic_loss(discriminator: nn.Module, gan_loss: GANLoss, real: Tensor, fake: Tensor) -> Tensor:
    """An unconditional discriminator's objective: ``real`` is real, ``fake`` (detached) is fake; halved."""
    return 0.5 * (gan_loss(discriminator(real), True) + gan_loss(discriminator(fake.detach()), False))


def fooling_loss(discriminator: nn.Module, gan_loss: GANLoss, fake: Tensor) -> Tensor:
    """The generator's GAN term against an unconditional discriminator: make it call ``fake`` real."""
    return gan_loss(discriminator(fake), True, for_discriminator=False)


def unconditional_discriminator(channels: int, ndf: int, n_layers: int) -> nn.Module:
    """CycleGAN's PatchGAN on single images of ``channels`` channels (instance norm), pix2pix-initialised."""
    from pocketgan.distill.pix2pix import init_pix2pix_weights

    return init_pix2pix_weights(create_discriminator("patchgan", input_nc=channels, ndf=ndf, n_layers=n_layers,
                                                     norm="instance"))  # fmt: skip


def unpaired_config(config: DistillConfig, defaults: dict[str, Any]) -> DistillConfig:
    """``config`` with a method's unpaired-mode ``defaults`` under the options the user gave."""
    return replace(config, options={**defaults, **config.options})


# ---------------------------------------------------------------- the shared machinery


@dataclass
class CycleSettings:
    """The CycleGAN losses' settings (junyanz defaults), shared by ``cyclegan`` and OMGD's unpaired mode."""

    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    ndf: int = 64
    n_layers_d: int = 3
    gan_mode: str = "lsgan"

    @classmethod
    def of(cls, options: Any) -> CycleSettings:
        """The settings among a method's options (fields of the same names)."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)})

    def validate(self, method: str) -> None:
        require_non_negative(method, lambda_cycle=self.lambda_cycle, lambda_identity=self.lambda_identity,
                             pool_size=self.pool_size)  # fmt: skip
        if self.ndf < 1 or self.n_layers_d < 1:
            raise PocketganError(f"{method}: ndf and n_layers_d must be >= 1")


def reverse_generator(g_a: nn.Module, given: nn.Module | None) -> nn.Module:
    """``G_B``: the given one (trainable), or a fresh copy of ``G_A``'s architecture (pix2pix init)."""
    from pocketgan.distill.pix2pix import init_pix2pix_weights

    if given is not None:
        return given.requires_grad_(True)
    io = g_a.io
    if io.input_channels != io.output_channels:
        raise PocketganError(
            f"{METHOD}: G_A maps {io.input_channels} to {io.output_channels} channels; give a G_B model directory "
            "beside it (OUT/G_B) to train B → A"
        )
    return init_pix2pix_weights(copy.deepcopy(g_a)).requires_grad_(True)


class CycleGANCore(nn.Module):
    """``G_B``, ``D_A``, ``D_B`` and the two history pools; :meth:`step` trains them and a given ``G_A``.

    ``G_A`` is not a submodule (it is the owner's student or teacher), so its weights appear once
    in the owner's state dict.
    """

    def __init__(self, g_a: nn.Module, g_b: nn.Module | None, settings: CycleSettings, *, seed: int,
                 method: str = METHOD) -> None:  # fmt: skip
        super().__init__()
        settings.validate(method)
        io = g_a.io
        if settings.lambda_identity > 0 and io.input_channels != io.output_channels:
            raise PocketganError(f"{method}: the identity loss needs as many input as output channels; "
                                 "set lambda_identity=0")  # fmt: skip
        self.settings = settings
        self.G_B = reverse_generator(g_a, g_b)
        self.D_A = unconditional_discriminator(io.output_channels, settings.ndf, settings.n_layers_d)
        self.D_B = unconditional_discriminator(io.input_channels, settings.ndf, settings.n_layers_d)
        self.pool_fake_b = ImagePool(settings.pool_size, seed=2 * seed)
        self.pool_fake_a = ImagePool(settings.pool_size, seed=2 * seed + 1)
        self.gan_loss = GANLoss(settings.gan_mode)

    @property
    def discriminators(self) -> nn.ModuleList:
        return nn.ModuleList([self.D_A, self.D_B])

    def generator_losses(self, g_a: nn.Module, real_a: Tensor, real_b: Tensor,
                         fake_b: Tensor) -> tuple[dict[str, Tensor], Tensor]:  # fmt: skip
        """The generators' weighted terms (``G_A``, ``G_B``, ``cycle_A``, ``cycle_B``, ``idt_A``, ``idt_B``) and ``G_B(B)``."""
        s, gan = self.settings, self.gan_loss
        fake_a = self.G_B(real_b)
        with frozen(self.discriminators):
            losses = {
                "G_A": fooling_loss(self.D_A, gan, fake_b),
                "G_B": fooling_loss(self.D_B, gan, fake_a),
                "cycle_A": cycle_loss(real_a, self.G_B(fake_b), s.lambda_cycle),
                "cycle_B": cycle_loss(real_b, g_a(fake_a), s.lambda_cycle),
            }
        if s.lambda_identity > 0:
            losses["idt_A"] = identity_loss(real_b, g_a(real_b), s.lambda_cycle, s.lambda_identity)
            losses["idt_B"] = identity_loss(real_a, self.G_B(real_a), s.lambda_cycle, s.lambda_identity)
        return losses, fake_a

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor, fake_a: Tensor) -> dict[str, Tensor]:
        """``D_A`` on real B vs a pooled fake B, ``D_B`` on real A vs a pooled fake A."""
        return {
            "D_A": critic_loss(self.D_A, self.gan_loss, real_b, self.pool_fake_b.query(fake_b)),
            "D_B": critic_loss(self.D_B, self.gan_loss, real_a, self.pool_fake_a.query(fake_a)),
        }

    def step(self, owner: Distiller, g_a: nn.Module, real_a: Tensor, real_b: Tensor, fake_b: Tensor, *,
             generators: str, discriminators: str) -> dict[str, float]:  # fmt: skip
        """One CycleGAN update with ``fake_b = g_a(real_a)``: ``owner``'s optimizers ``generators`` (``G_A`` and
        ``G_B``), then ``discriminators`` (``D_A``, ``D_B``). Returns the losses as floats."""
        losses, fake_a = self.generator_losses(g_a, real_a, real_b, fake_b)
        owner.step_optimizer(generators, sum(losses.values()), [g_a, self.G_B])
        critics = self.discriminator_losses(real_a, real_b, fake_b, fake_a)
        owner.step_optimizer(discriminators, critics["D_A"] + critics["D_B"], [self.D_A, self.D_B])
        return as_floats({**losses, **critics})


# ---------------------------------------------------------------- the teacher trainer


@dataclass
class CycleGANOptions(CycleSettings, MethodOptions):
    """``config.options`` of ``cyclegan``."""

    def __post_init__(self) -> None:
        self.validate(METHOD)


@register_distiller(METHOD)
class CycleGANTrainer(Distiller):
    """Trains ``student`` as CycleGAN's ``G_A`` (A → B) together with ``G_B``, ``D_A`` and ``D_B`` (no teacher).

    Optimizers: ``G`` (both generators) and ``D`` (both discriminators), as junyanz.
    """

    needs_teacher = False

    def setup(self) -> None:
        self.options = CycleGANOptions.from_config(unpaired_config(self.config, {"gan_mode": self.config.gan_mode}),
                                                   METHOD)  # fmt: skip
        self.cycle = CycleGANCore(self.student, self.companions.get(REVERSE), CycleSettings.of(self.options),
                                  seed=self.config.seed)  # fmt: skip
        self.make_adam("G", itertools.chain(self.student.parameters(), self.cycle.G_B.parameters()))
        self.make_adam("D", self.cycle.discriminators.parameters())

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """Generators, then discriminators (``CycleGANModel.optimize_parameters``)."""
        real_a, real_b = batch["A"], require_target(batch, METHOD)
        fake_b = self.student(real_a)
        return self.cycle.step(self, self.student, real_a, real_b, fake_b, generators="G", discriminators="D")

    def extra_outputs(self) -> dict[str, nn.Module]:
        """``G_B`` (B → A), saved as ``OUT/G_B``."""
        return {REVERSE: self.cycle.G_B}
