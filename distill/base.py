"""The contract every trainer in ``pocketgan.distill`` follows, and its registry.

A :class:`Distiller` owns its networks and optimizers and performs one optimisation
step per :meth:`Distiller.training_step` call. The generic training loop
(``pocketgan.distill.loop``) drives any registered distiller: data, progress,
TensorBoard, atomic checkpoints and ``--resume``, NaN guards, seeding and DDP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import Registry

BUILTIN_METHOD_MODULES = (
    "pix2pix", "cyclegan", "kd", "gan_compression", "omgd",
    "stylegan2.teacher", "stylegan2.kd", "stylegan2.itgc", "stylegan2.dime", "stylegan2.nickel",
)  # fmt: skip

#: Training methods (teachers and distillers); plugins: entry-point group ``pocketgan.distillers``.
DISTILLERS: Registry[type[Distiller]] = Registry(
    "method", group="pocketgan.distillers", builtin_modules=[f"pocketgan.distill.{m}" for m in BUILTIN_METHOD_MODULES]
)


@dataclass
class DistillConfig:
    """Hyper-parameters shared by all methods; ``options`` holds method-specific ones."""

    steps: int = 1000
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_from: float = 0.5  # fraction of steps after which the lr decays linearly to 0
    gan_mode: str = "lsgan"  # lsgan | vanilla | hinge
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    unpaired: bool = False  # the data is CycleGAN's unaligned layout (B is not A's target); set by the API


class NonFiniteLossError(PocketganError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


class Distiller(nn.Module):
    """Base class. Subclasses build networks and optimizers in ``__init__``.

    ``batch`` is ``{"A": input in [-1, 1], "B": target in [-1, 1]}`` (B may be absent
    for teacher-only data; on unpaired data, ``config.unpaired``, B is an unrelated image of
    the target domain). The student is ``self.student``. ``companions`` are more pretrained
    networks a method may start from (``{"G_B": ...}``: a CycleGAN teacher's B→A generator).
    """

    name: str = ""
    needs_teacher: bool = True
    supports_unpaired: bool = True  # False: the method needs pairs and refuses unaligned data

    needs_perceptual: bool = False  # True: the CLI resolves --perceptual and passes ``perceptual=``
    input_kind: str = "image"  # "latent": a StyleGAN2 method (latent-input teacher and student, image-folder data)
    default_lr: float = 2e-4  # the Adam lr when --lr is not given
    snapshot_every: int = 0  # > 0: the loop saves the student's weights every that many steps (OUT/train/snapshots)

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        config: DistillConfig,
        *,
        perceptual: nn.Module | None = None,
        companions: dict[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if self.needs_teacher and teacher is None:
            raise PocketganError(f"{self.name} needs a teacher (--teacher DIR)")
        if config.unpaired and not self.supports_unpaired:
            raise PocketganError(f"{self.name} needs paired data; the dataset is unaligned (trainA/, trainB/): "
                                 "train a teacher on it with --method cyclegan")  # fmt: skip
        self.student = student
        self.teacher = teacher
        self.config = config
        self.perceptual = perceptual
        self.companions = dict(companions or {})  # not registered: setup() adopts what it uses
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.grad_sync: Callable[[nn.Module], None] | None = None  # set by the trainer under DDP
        self.setup()

    def setup(self) -> None:
        """Build the method's extra networks, losses and optimizers (``self.student``, ``self.teacher``,
        ``self.config`` and ``self.perceptual`` are set)."""

    def make_adam(self, name: str, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
        """Register an Adam optimizer with the config's betas and lr (or ``lr``) under ``name``."""
        cfg = self.config
        opt = torch.optim.Adam(list(params), lr=cfg.lr if lr is None else lr, betas=(cfg.beta1, cfg.beta2))
        self.optimizers[name] = opt
        return opt

    def step_optimizer(self, name: str, loss: Tensor, modules: list[nn.Module]) -> None:
        """Zero grads, backprop ``loss``, average grads of ``modules`` across ranks, step ``name``."""
        check_finite({name: loss})
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            for module in modules:
                self.grad_sync(module)
        opt.step()

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """One optimisation step; returns scalar losses for logging."""
        raise NotImplementedError

    def trainable_state(self) -> dict[str, Any]:
        """Everything a checkpoint must hold besides optimizer states (default: all module weights)."""
        return self.state_dict()

    def extra_outputs(self) -> dict[str, nn.Module]:
        """More generators to save beside the student, as model directories ``OUT/<name>`` (default none)."""
        return {}

    def latent_shape(self) -> tuple[int, int] | None:
        """``(count, z_dim)`` when each sample needs latents: the loop then adds ``batch["z"]`` (``B×count×z_dim``,
        standard normal) and ``batch["noise_seed"]`` (see :func:`pocketgan.distill.batching.latent_inputs`).
        ``None`` (default): image batches only."""
        return None

    def pop_metrics(self) -> dict[str, float]:
        """Values (not losses) to append to ``OUT/train/metrics.jsonl`` after this step; default none."""
        return {}

    def preview(self, samples: dict[str, Tensor]) -> list[Tensor]:
        """The columns of the TensorBoard sample grid for the fixed ``samples``: input | target | output."""
        output = self.student(samples["A"])
        return [samples["A"], samples["B"], output] if "B" in samples else [samples["A"], output]

    def save_extras(self, out: Path, provenance: dict[str, Any]) -> None:
        """Write more files into the finished model directory ``out`` (a StyleGAN2 teacher's discriminator)."""


def register_distiller(name: str) -> Callable[[type[Distiller]], type[Distiller]]:
    """Class decorator registering a :class:`Distiller` under ``name`` (``omgd``, ``kd``, ...)."""

    def wrap(cls: type[Distiller]) -> type[Distiller]:
        cls.name = name
        return DISTILLERS.register(name, cls)

    return wrap


def list_distillers() -> list[str]:
    """Method names accepted by :func:`get_distiller` (``--method``)."""
    return DISTILLERS.names()


def get_distiller(name: str) -> type[Distiller]:
    """The :class:`Distiller` class registered as ``name``, or a one-line error listing the methods."""
    return DISTILLERS.get(name)


def check_finite(losses: dict[str, Tensor | float]) -> None:
    """Raise :class:`NonFiniteLossError` naming the first NaN/Inf loss."""
    for key, value in losses.items():
        v = float(value.detach()) if isinstance(value, Tensor) else float(value)
        if v != v or v in (float("inf"), float("-inf")):
            raise NonFiniteLossError(f"loss {key} is {v}; stopping (the last good checkpoint is kept)")


class GANLoss(nn.Module):
    """LSGAN, vanilla (BCE with logits) or hinge objective on a discriminator's logits."""

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla", "hinge"):
            raise PocketganError(f"unknown GAN loss {mode!r}; choose lsgan, vanilla or hinge")
        self.mode = mode

    def forward(self, logits: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        if self.mode == "lsgan":
            target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
            return nn.functional.mse_loss(logits, target)
        if self.mode == "vanilla":
            target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
            return nn.functional.binary_cross_entropy_with_logits(logits, target)
        if not for_discriminator:  # hinge, generator side
            return -logits.mean()
        return nn.functional.relu(1 - logits).mean() if target_is_real else nn.functional.relu(1 + logits).mean()


def set_requires_grad(modules: nn.Module | list[nn.Module], flag: bool) -> None:
    for module in modules if isinstance(modules, list) else [modules]:
        for p in module.parameters():
            p.requires_grad_(flag)
