"""OMGD: Online Multi-Granularity Distillation (Ren et al., ICCV 2021; bytedance/OMGD).

Per step, on a paired batch ``{"A", "B"}``:

1. the teachers' discriminators learn to tell ``(A, B)`` from ``(A, teacher(A))``;
2. the teachers train **online**, pix2pix style: ``lambda_gan``·GAN + ``lambda_recon``·L1(teacher(A), B);
3. the student, which has **no discriminator and never sees B**, learns from the teachers'
   outputs of this step alone (:meth:`OMGDDistiller.student_losses` takes only A and the
   teachers' signals): against each teacher ``10·(1−SSIM) + 1e4·style + 10·feature + 1e-5·TV``
   (``agd_weights``) on perceptual features, plus channel distillation (``lambda_cd``·MSE of
   channel-wise spatial means) between the wide teacher's feature taps and the student's,
   mapped by learned 1×1 conv + BN + ReLU adapters. "Never sees B" is about the images: the
   default perceptual network (the dataset's domain network) is trained on the training photos,
   so ground-truth statistics do reach the student through the features it is compared in.

Teachers:
- **wide**: the ``teacher`` passed in (its architecture and weights). OMGD trains its
  teachers from scratch beside the student; here a pretrained teacher initialises the
  wide one, which then keeps training online (its weights change during distillation;
  the file it came from is not modified).
- **deep** (``use_deep``, default on): a ResNet generator with a small width
  (``deep_ngf`` 16) and extra residual blocks (``deep_blocks`` 18), trained from scratch.
  It is a ResNet whatever the wide teacher's family (OMGD pairs U-Nets with a deeper
  U-Net; our registry has no such variant).

**Unpaired data** (CycleGAN's ``trainA/``/``trainB/``; ``config.unpaired``): OMGD's CycleGAN setting.
One teacher (``use_deep`` false), trained online as CycleGAN's ``G_A`` with ``G_B`` (from the
teacher directory's ``G_B``, else from scratch), two unconditional PatchGANs, history pools, LSGAN,
cycle loss ``lambda_cycle`` (10) and identity ``lambda_identity`` (0.5)
(:class:`~pocketgan.distill.cyclegan.CycleGANCore`); ``lambda_cd`` defaults to 5e2 (horse2zebra).
The student step is unchanged: it sees A and the teacher's output and features, never a B image.

The teachers' conditional PatchGANs share their first ``d_shared_blocks`` conv blocks
(OMGD's ``--n_share 3``). Options (``DistillConfig.options``): ``agd_weights``
("1e1,1e4,1e1,1e-5": ssim, style, feature, tv), ``lambda_cd`` (1e2), ``lambda_gan`` (1),
``lambda_recon`` (100), ``gan_mode`` (hinge), ``ndf`` (64), ``n_layers_d`` (3),
``d_shared_blocks`` (3), ``use_deep`` (true), ``deep_ngf`` (16), ``deep_blocks`` (18), ``teacher_lr``
(the run's lr: the teachers' Adam lr; a pretrained wide teacher restarted at a high lr first drifts
away from what it learned, so a recipe that imports one sets it lower),
``feature_layers`` ("auto": the second perceptual level, VGG relu2_2 in OMGD, or the only one;
else comma-separated indices); unpaired only: ``lambda_cycle`` (10), ``lambda_identity`` (0.5),
``pool_size`` (50).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.distill.base import Distiller, GANLoss, register_distiller, set_requires_grad
from pocketgan.distill.common import (
    MethodOptions,
    as_floats,
    conditional_discriminator,
    frozen,
    generator_taps,
    require_non_negative,
    require_target,
)
from pocketgan.distill.losses import (
    AGDWeights,
    ChannelDistillation,
    adversarial_loss,
    discriminator_loss,
    multi_granularity_loss,
    pair_feature_taps,
)
from pocketgan.core.errors import PocketganError
from pocketgan.distill.cyclegan import REVERSE, CycleGANCore, CycleSettings, unpaired_config
from pocketgan.models import capture_features, create_generator

METHOD = "omgd"
UNPAIRED_DEFAULTS = {"lambda_cd": 5e2, "gan_mode": "lsgan", "use_deep": False}
"""OMGD's CycleGAN setting (horse2zebra): one teacher, LSGAN, λ_CD 5e2 (the user's options override them)."""


@dataclass
class OMGDOptions(MethodOptions):
    """``config.options`` of ``omgd`` (defaults: OMGD's edges2shoes ResNet script, ndf 64)."""

    agd_weights: tuple = (1e1, 1e4, 1e1, 1e-5)  # ssim, style, feature, tv
    lambda_cd: float = 1e2
    lambda_gan: float = 1.0
    lambda_recon: float = 100.0
    gan_mode: str = "hinge"
    ndf: int = 64
    n_layers_d: int = 3
    d_shared_blocks: int = 3
    use_deep: bool = True
    deep_ngf: int = 16
    deep_blocks: int = 18
    feature_layers: tuple = ("auto",)
    lambda_cycle: float = 10.0  # unpaired mode: the online CycleGAN teacher's losses
    lambda_identity: float = 0.5
    pool_size: int = 50
    teacher_lr: float | None = None  # None: the run's lr

    def __post_init__(self) -> None:
        self.weights = AGDWeights.parse(self.agd_weights)
        self.layers = _parse_layers(self.feature_layers)
        require_non_negative(METHOD, lambda_cd=self.lambda_cd, lambda_gan=self.lambda_gan,
                             lambda_recon=self.lambda_recon, d_shared_blocks=self.d_shared_blocks)  # fmt: skip
        if self.teacher_lr is not None and not self.teacher_lr > 0:
            raise PocketganError(f"{METHOD}: option teacher_lr must be > 0; got {self.teacher_lr!r}")
        if min(self.ndf, self.n_layers_d, self.deep_ngf) < 1 or self.deep_blocks < 0:
            raise PocketganError(f"{METHOD}: ndf, n_layers_d and deep_ngf must be >= 1, deep_blocks >= 0")


def _parse_layers(values: tuple) -> tuple[int, ...] | None:
    """``("auto",)`` → None (the distiller picks); ``(1,)`` / ``("0", "2")`` → indices."""
    if [str(v).strip().lower() for v in values] == ["auto"]:
        return None
    try:
        if not values or any(float(v) != int(float(v)) for v in values):
            raise ValueError
        return tuple(int(float(v)) for v in values)
    except (TypeError, ValueError):
        raise PocketganError(f"{METHOD}: feature_layers must be auto or integers like 0,1; got {values!r}") from None


class SharedTrunkPatchGANs(nn.Module):
    """One conditional PatchGAN per teacher whose first ``shared_blocks`` conv blocks are shared.

    A block is a conv with its norm and LeakyReLU (PatchGAN ``model`` indices up to each
    LeakyReLU); the shared modules are the same objects in every discriminator, so their
    parameters appear once in ``parameters()``.
    """

    def __init__(self, count: int, teacher: nn.Module, *, ndf: int, n_layers: int, shared_blocks: int) -> None:
        super().__init__()
        nets = [conditional_discriminator(teacher, ndf, n_layers) for _ in range(count)]
        cut = _end_of_block(nets[0].model, shared_blocks)
        for net in nets[1:]:
            for i in range(cut):
                net.model[i] = nets[0].model[i]
        self.nets = nn.ModuleList(nets)

    def __getitem__(self, index: int) -> nn.Module:
        return self.nets[index]

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.nets)

    def __len__(self) -> int:
        return len(self.nets)


def _end_of_block(layers: nn.Sequential, blocks: int) -> int:
    """Index just past the ``blocks``-th LeakyReLU (the whole network when there are fewer)."""
    ends = [i + 1 for i, m in enumerate(layers) if isinstance(m, nn.LeakyReLU)]
    return ends[blocks - 1] if 0 < blocks <= len(ends) else (0 if blocks <= 0 else len(layers))


def build_deep_teacher(teacher: nn.Module, ngf: int, n_blocks: int) -> nn.Module:
    """OMGD's deep teacher: a narrow ResNet with many residual blocks, same I/O channels as ``teacher``."""
    io = teacher.io
    return create_generator("resnet9", ngf=ngf, n_blocks=n_blocks, input_nc=io.input_channels,
                            output_nc=io.output_channels)  # fmt: skip


@dataclass
class TeacherSignals:
    """What the student may learn from: the teachers' outputs and the wide teacher's taps, detached."""

    images: list[Tensor]
    features: dict[str, Tensor]

    @classmethod
    def detached(cls, images: Sequence[Tensor], features: dict[str, Tensor]) -> TeacherSignals:
        return cls([img.detach() for img in images], {k: v.detach() for k, v in features.items()})


@register_distiller(METHOD)
class OMGDDistiller(Distiller):
    """Online multi-granularity distillation from a wide and a deep teacher (see the module docstring).

    Optimizers: ``D`` (the shared-trunk discriminators), ``teachers`` (both teacher
    generators), ``student`` (the student and its channel-distillation adapters).
    """

    needs_perceptual = True

    def setup(self) -> None:
        if self.perceptual is None:
            raise PocketganError("omgd needs a perceptual feature network (--perceptual NAME|PATH)")
        unpaired = self.config.unpaired
        config = unpaired_config(self.config, UNPAIRED_DEFAULTS) if unpaired else self.config
        self.options = opts = OMGDOptions.from_config(config, METHOD)
        if unpaired and opts.use_deep:
            raise PocketganError("omgd on unpaired data trains one (CycleGAN) teacher: use_deep must be false")
        set_requires_grad(self.perceptual, False)
        set_requires_grad(self.teacher, True)  # the wide teacher keeps training online
        self.deep_teacher = build_deep_teacher(self.teacher, opts.deep_ngf, opts.deep_blocks) if opts.use_deep else None
        self.cycle = (CycleGANCore(self.teacher, self.companions.get(REVERSE), CycleSettings.of(opts),
                                   seed=self.config.seed, method=METHOD) if unpaired else None)  # fmt: skip
        self.discriminators = None if unpaired else SharedTrunkPatchGANs(
            len(self.teachers), self.teacher, ndf=opts.ndf, n_layers=opts.n_layers_d, shared_blocks=opts.d_shared_blocks
        )  # fmt: skip
        self.channel_distill = ChannelDistillation(
            pair_feature_taps(generator_taps(self.teacher, "teacher"), generator_taps(self.student, "student"))
        )
        self.gan_loss = GANLoss(opts.gan_mode)
        critics = self.cycle.discriminators if unpaired else self.discriminators
        generators = self.teachers + ([self.cycle.G_B] if unpaired else [])
        self.make_adam("D", critics.parameters())
        self.make_adam("teachers", itertools.chain.from_iterable(t.parameters() for t in generators), opts.teacher_lr)
        self.make_adam("student", itertools.chain(self.student.parameters(), self.channel_distill.parameters()))
        self.train()

    @property
    def teachers(self) -> list[nn.Module]:
        """The wide teacher, then the deep one when ``use_deep``."""
        return [self.teacher] + ([self.deep_teacher] if self.deep_teacher is not None else [])

    def train(self, mode: bool = True) -> OMGDDistiller:
        """Switch every trained network's mode; the frozen perceptual network stays in eval mode."""
        super().train(mode)
        if self.perceptual is not None:
            self.perceptual.eval()
        return self

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """Discriminators, then teachers (both see B), then the student (sees only A and the teachers).

        On unpaired data the one teacher trains as CycleGAN's ``G_A`` (with ``G_B``, ``D_A``, ``D_B``;
        generators first, as junyanz); the student step is the same.
        """
        real_a, real_b = batch["A"], require_target(batch, METHOD)
        with capture_features(self.teacher, self.channel_distill.teacher_taps) as wide_features:
            teacher_images = [teacher(real_a) for teacher in self.teachers]
        if self.cycle is not None:
            logs = self.cycle.step(self, self.teacher, real_a, real_b, teacher_images[0], generators="teachers",
                                   discriminators="D")  # fmt: skip
            logs = {f"T_{key}": value for key, value in logs.items()}
        else:
            logs = self._train_teachers(real_a, real_b, teacher_images)

        student = self.student_losses(real_a, TeacherSignals.detached(teacher_images, wide_features))
        self.step_optimizer("student", student["student"], [self.student, self.channel_distill])
        return logs | as_floats(student)

    def _train_teachers(self, real_a: Tensor, real_b: Tensor, teacher_images: list[Tensor]) -> dict[str, float]:
        """Update the discriminators, then the teachers against them (GAN + L1 to B)."""
        opts, logs = self.options, {}
        losses_d = [discriminator_loss(d, self.gan_loss, real_a, real_b, img)
                    for d, img in zip(self.discriminators, teacher_images)]  # fmt: skip
        self.step_optimizer("D", torch.stack(losses_d).sum(), [self.discriminators])

        losses_g = []
        with frozen(self.discriminators):
            for name, d, img, loss_d in zip(("wide", "deep"), self.discriminators, teacher_images, losses_d):
                gan = opts.lambda_gan * adversarial_loss(d, self.gan_loss, real_a, img)
                recon = opts.lambda_recon * F.l1_loss(img, real_b)
                losses_g.append(gan + recon)
                logs |= as_floats({f"D_{name}": loss_d, f"T_{name}_gan": gan, f"T_{name}_recon": recon})
            self.step_optimizer("teachers", torch.stack(losses_g).sum(), self.teachers)
        return logs

    def student_losses(self, real_a: Tensor, teachers: TeacherSignals) -> dict[str, Tensor]:
        """The student's objective from the input ``real_a`` and the teachers' signals only.

        Returns the weighted terms summed over teachers (``S_ssim``, ``S_style``,
        ``S_feature``, ``S_tv``), ``S_cd`` and their total ``student``.
        """
        opts = self.options
        with capture_features(self.student, self.channel_distill.student_taps) as student_features:
            fake_b = self.student(real_a)
        fake_features = self.perceptual(fake_b)
        terms: dict[str, Tensor] = {}
        for teacher_image in teachers.images:
            with torch.no_grad():
                teacher_features = self.perceptual(teacher_image)
            layers = opts.layers if opts.layers is not None else [min(1, len(teacher_features) - 1)]
            parts = multi_granularity_loss(fake_b, teacher_image, fake_features, teacher_features, opts.weights, layers)
            for key, value in parts.items():
                terms[f"S_{key}"] = terms.get(f"S_{key}", 0) + value
        if opts.lambda_cd:
            terms["S_cd"] = opts.lambda_cd * self.channel_distill(student_features, teachers.features)
        terms["student"] = torch.stack(list(terms.values())).sum()
        return terms
