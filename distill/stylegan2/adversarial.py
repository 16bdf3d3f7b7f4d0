"""What the StyleGAN2 teacher and every StyleGAN2 distiller share: options, seeded noise, the critic, logits.

- :class:`AdversarialOptions`: R1 γ and interval, Adam β (0, 0.99), how often logits are logged;
- :func:`generate`: a generator's images for latents ``z`` with its noise drawn from ``noise_seed``,
  so two generators of the same resolution called with the same seed see the same noise;
- :class:`Critic`: a discriminator with its logistic loss, lazy R1 and optimizer (lazy-regularization
  correction of lr and betas), trained on real vs fake images;
- :class:`LogitLog`: the mean logits on real and fake every ``logit_every`` steps
  (``Distiller.pop_metrics`` → ``OUT/train/metrics.jsonl`` and TensorBoard).
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import Distiller
from pocketgan.distill.common import MethodOptions, frozen, require_non_negative
from pocketgan.distill.stylegan2.gan_loss import (
    R1_INTERVAL,
    LazyRegularization,
    discriminator_loss,
    generator_loss,
    lazy_adam_hyperparameters,
    r1_penalty,
    r1_regularization,
)

STYLEGAN2_LR = 0.002  # NVlabs/rosinality's Adam lr at 256 px and below


@dataclass
class AdversarialOptions(MethodOptions):
    """Options every StyleGAN2 method takes (``--option key=value``).

    ``r1_gamma`` 10 (CAGAN's and the FFHQ-256 setting; NVlabs' auto rule gives 0.0002·res²/batch),
    ``r1_every`` 16 (lazy), Adam ``beta1`` 0 / ``beta2`` 0.99, logits logged every ``logit_every`` steps,
    the saved generator's weights written every ``snapshot_every`` steps (0: never; for FID over training:
    :func:`pocketgan.distill.run_log.list_snapshots`). The saved generator is the exponential moving average
    of the trained one (StyleGAN2's ``G_ema``: half-life ``ema_kimg`` 10 k images, ramped up over the first
    images seen with ``ema_rampup`` 0.05, so short runs have a useful average; 0 keeps the half-life fixed).
    """

    r1_gamma: float = 10.0
    r1_every: int = R1_INTERVAL
    beta1: float = 0.0
    beta2: float = 0.99
    logit_every: int = 10
    snapshot_every: int = 0
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05

    def validate(self, method: str) -> None:
        require_non_negative(method, r1_gamma=self.r1_gamma, beta1=self.beta1, beta2=self.beta2,
                             logit_every=self.logit_every, snapshot_every=self.snapshot_every, ema_kimg=self.ema_kimg,
                             ema_rampup=self.ema_rampup)  # fmt: skip
        if self.r1_every < 1 or not (self.beta1 < 1 and self.beta2 < 1):
            raise PocketganError(f"{method}: r1_every must be >= 1 and the betas < 1")

    def require_non_negative_fields(self, method: str, *names: str) -> None:
        """:func:`require_non_negative` of the fields ``names`` (one line naming the first negative one)."""
        require_non_negative(method, **{name: getattr(self, name) for name in names})

    @property
    def r1(self) -> LazyRegularization:
        return r1_regularization(self.r1_gamma, self.r1_every)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)


def require_latent_generator(model: nn.Module, role: str) -> None:
    """One line unless ``model`` is a latent-input generator with ``mapping``/``synthesis`` (StyleGAN2)."""
    io = getattr(model, "io", None)
    if io is None or getattr(io, "input_kind", "image") != "latent" or not hasattr(model, "mapping"):
        kind = getattr(io, "input_kind", "unknown") if io is not None else "not a pocketgan generator"
        raise PocketganError(f"the {role} must be a StyleGAN2 generator (a latent-input model); got {kind}"
                             f" ({getattr(model, 'arch', type(model).__name__)})")  # fmt: skip


@contextmanager
def seeded_noise(noise_seed: int | Tensor, device: torch.device) -> Iterator[None]:
    """Inside the block torch's RNG (of ``device``) starts from ``noise_seed``; outside it is untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(noise_seed))
        if device.type == "cuda":
            torch.cuda.manual_seed(int(noise_seed))
        yield


def generate(generator: nn.Module, z: Tensor, noise_seed: int | Tensor) -> Tensor:
    """``generator(z, noise_mode="random")`` with its per-layer noise drawn from ``noise_seed``."""
    with seeded_noise(noise_seed, z.device):
        return generator(z, noise_mode="random")


def add_adam(owner: Distiller, name: str, params: object, lr: float, betas: tuple[float, float],
             lazy: LazyRegularization | None = None) -> torch.optim.Optimizer:  # fmt: skip
    """Register Adam ``name`` on ``owner`` with StyleGAN2's lazy-regularization correction when ``lazy`` is given."""
    if lazy is not None:
        lr, betas = lazy_adam_hyperparameters(lr, betas, lazy)
    optimizer = torch.optim.Adam(list(params), lr=lr, betas=betas, eps=1e-8)  # type: ignore[arg-type]
    owner.optimizers[name] = optimizer
    return optimizer


class Critic(nn.Module):
    """A StyleGAN2 discriminator, its optimizer ``name`` on the owner, logistic loss and lazy R1."""

    def __init__(self, owner: Distiller, name: str, discriminator: nn.Module, options: AdversarialOptions,
                 lr: float) -> None:  # fmt: skip
        super().__init__()
        self.D = discriminator.requires_grad_(True)
        self.name = name
        self.r1 = options.r1
        add_adam(owner, name, self.D.parameters(), lr, options.betas, self.r1)

    def fooling_loss(self, fake: Tensor) -> Tensor:
        """The generator's non-saturating term through this (frozen) discriminator."""
        with frozen(self.D):
            return generator_loss(self.D(fake))

    def update(self, owner: Distiller, real: Tensor, fake: Tensor, step: int, extra: dict[str, Tensor] | None = None,
               *, modules: list[nn.Module] | None = None) -> tuple[dict[str, Tensor], Tensor, Tensor]:  # fmt: skip
        """One discriminator step on ``real`` vs ``fake`` (detached), plus ``extra`` terms; R1 when due.

        ``modules`` are more networks the optimizer trains (their gradients are synced across ranks).
        Returns the losses (``<name>``, ``<name>_r1`` on R1 steps, the extra terms) and the logits on real and fake.
        """
        real_logits, fake_logits = self.D(real), self.D(fake.detach())
        losses = {self.name: discriminator_loss(real_logits, fake_logits), **(extra or {})}
        owner.step_optimizer(self.name, sum(losses.values()), [self.D, *(modules or [])])
        if self.r1.due(step):
            penalty, logits = r1_penalty(self.D, real)
            losses[f"{self.name}_r1"] = penalty * self.r1.scale
            owner.step_optimizer(self.name, losses[f"{self.name}_r1"] + 0 * logits.sum(), [self.D])
        return losses, real_logits.detach(), fake_logits.detach()


class LogitLog:
    """Mean discriminator logits on real and fake images, collected when a step is due (``every`` steps)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.pending: dict[str, float] = {}

    def due(self, step: int) -> bool:
        """Whether step ``step`` (0-based) logs: after every ``every`` completed steps."""
        return self.every > 0 and (step + 1) % self.every == 0

    def record(self, prefix: str, real_logits: Tensor, fake_logits: Tensor) -> None:
        self.pending[f"{prefix}_real"] = float(real_logits.mean())
        self.pending[f"{prefix}_fake"] = float(fake_logits.mean())

    def pop(self) -> dict[str, float]:
        values, self.pending = self.pending, {}
        return values


def ema_beta(step: int, batch_size: int, ema_kimg: float, ema_rampup: float) -> float:
    """The EMA decay of step ``step`` (0-based): ``0.5 ** (batch / half-life)``, the half-life ramped up."""
    half_life = ema_kimg * 1000
    if ema_rampup > 0:
        half_life = min(half_life, step * batch_size * ema_rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema ← model + β (ema − model)`` for parameters; buffers (w_avg, noise) are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def preview_latents(z_dim: int, count: int, seed: int, device: torch.device) -> Tensor:
    """The fixed latents of a run's sample grid (a function of the seed only)."""
    return torch.randn(count, z_dim, generator=torch.Generator().manual_seed(seed + 12345)).to(device)


class LatentGANRun:
    """What every StyleGAN2 method (teacher or student) does alike, mixed into its :class:`Distiller`:
    ``self.generator`` is trained, ``self.student`` is its EMA (the saved model), ``self.logits`` a
    :class:`LogitLog`, ``self.options`` :class:`AdversarialOptions`."""

    input_kind = "latent"
    default_lr = STYLEGAN2_LR

    def setup_generator(self, lazy: LazyRegularization | None = None) -> None:
        """Adam ``G`` over the trained generator (corrected for ``lazy`` regularization) and the logit log."""
        add_adam(self, "G", self.generator.parameters(), self.config.lr, self.options.betas, lazy)
        self.logits = LogitLog(self.options.logit_every)

    def update_average(self, step: int) -> None:
        """``G_ema`` (``self.student``) follows the trained generator with StyleGAN2's ramped-up half-life."""
        o = self.options
        update_ema(self.student, self.generator, ema_beta(step, self.config.batch_size, o.ema_kimg, o.ema_rampup))

    def pop_metrics(self) -> dict[str, float]:
        return self.logits.pop()

    def preview_z(self, real: Tensor) -> Tensor:
        """The run's fixed preview latents, one per real image."""
        return preview_latents(int(self.student.z_dim), len(real), self.config.seed, real.device)
