"""StyleGAN2 training: the teacher method and the kd / itgc / dime / nickel / nickel-dime distillers.

Tiny real networks (32 px, widths 16, z_dim 32), a handful of steps. Helpers at the top (``REF``,
``RealImages``, ``make_teacher_trainer``, ``make_student_distiller``) are shared with
test_stylegan2_resume.py and its DDP worker.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.batching import latent_inputs
from pocketgan.distill.checkpoint import seed_everything
from pocketgan.distill.distributed import DistributedContext
from pocketgan.distill.features.domain import DomainFeatureNet
from pocketgan.distill.stylegan2.gan_loss import (
    LazyRegularization,
    discriminator_loss,
    generator_loss,
    lazy_adam_hyperparameters,
    r1_penalty,
)
from pocketgan.distill.stylegan2.adversarial import ema_beta
from pocketgan.models import create_discriminator, create_generator

SIZE = 32
REF = dict(size=SIZE, channel_base=512, channel_max=16, z_dim=32, w_dim=32, n_mlp=2)
METHODS = ["stylegan2-kd", "itgc", "dime", "nickel", "nickel-dime"]
TINY_OPTIONS = {"itgc": {"ebm_width": 8, "ebm_blocks": 2, "langevin_steps": 2}}
FAST = {"r1_every": 2, "logit_every": 2}


class RealImages(Dataset):
    """``n`` smooth random 32 px images as an unconditional dataset's items ``{"B", "name"}``."""

    def __init__(self, n: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
        self.images = nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"B": self.images[index], "name": f"img{index}"}


def tiny_generator(seed: int, widths: dict[str, int] | None = None) -> nn.Module:
    """A tiny StyleGAN2 whose noise inputs matter (StyleGAN2 initialises their strengths to 0)."""
    seed_everything(seed)
    generator = create_generator("stylegan2", widths=widths, **REF)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    return generator


def halved(generator: nn.Module) -> dict[str, int]:
    """A student's widths: every synthesis layer at half the teacher's (the mapping network kept)."""
    return {k: v if k.startswith("mapping") else v // 2 for k, v in generator.current_widths().items()}


def tiny_feature_network() -> nn.Module:
    seed_everything(7)
    return DomainFeatureNet(widths=(4, 8)).freeze()


def make_teacher_trainer(seed: int = 0, **options):
    """The ``stylegan2`` teacher method on a fresh tiny generator."""
    config = DistillConfig(lr=0.002, batch_size=4, seed=0, options={**FAST, **options})
    return get_distiller("stylegan2")(tiny_generator(seed), None, config)


def make_student_distiller(method: str, seed: int = 0, *, with_discriminator: bool = True, **options):
    """``method`` distilling a fixed random tiny teacher (with its discriminator) into a half-width student."""
    teacher = tiny_generator(100).eval()
    seed_everything(101)
    companions = {"D": create_discriminator("stylegan2", **REF)} if with_discriminator else {}
    student = tiny_generator(seed, halved(teacher))
    config = DistillConfig(lr=0.002, batch_size=4, seed=0, options={**FAST, **TINY_OPTIONS.get(method, {}), **options})
    return get_distiller(method)(student, teacher, config, perceptual=tiny_feature_network(), companions=companions)


def latent_batch(distiller, step: int = 0, batch: int = 4) -> dict:
    items = RealImages()
    count, z_dim = distiller.latent_shape()
    return {"B": items.images[:batch], **latent_inputs(0, step, batch, DistributedContext(), z_dim=z_dim, count=count)}


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


# --------------------------------------------------------------------------- StyleGAN2's losses


def test_logistic_losses_match_their_formulas():
    zeros = torch.zeros(4, 1)
    assert math.isclose(float(discriminator_loss(zeros, zeros)), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(generator_loss(zeros)), math.log(2), rel_tol=1e-6)
    # a confident discriminator: real logits +10, fake −10 → loss ≈ 2·softplus(−10)
    assert float(discriminator_loss(torch.full((4, 1), 10.0), torch.full((4, 1), -10.0))) < 1e-4
    assert float(generator_loss(torch.full((4, 1), -10.0))) > 9.9  # non-saturating: large when D wins


def test_r1_is_the_squared_input_gradient_and_lazy_scaling_follows_stylegan2():
    weight = torch.randn(1, 3, 4, 4)

    class Linear(nn.Module):  # D(x) = <a, x>: ∇ₓD = a for every image
        def forward(self, x):
            return (x * weight).sum(dim=(1, 2, 3)).unsqueeze(1)

    penalty, logits = r1_penalty(Linear(), torch.randn(2, 3, 4, 4))
    assert torch.allclose(penalty, weight.square().sum()) and logits.shape == (2, 1)
    lazy = LazyRegularization(weight=10 / 2, interval=16)
    assert [lazy.due(s) for s in (0, 1, 15, 16)] == [True, False, False, True]
    assert lazy.scale == 80 and math.isclose(lazy.ratio, 16 / 17)
    lr, betas = lazy_adam_hyperparameters(0.002, (0.0, 0.99), lazy)
    assert math.isclose(lr, 0.002 * 16 / 17) and betas[0] == 0 and math.isclose(betas[1], 0.99 ** (16 / 17))
    assert not LazyRegularization(weight=0, interval=4).due(0)  # off: path length by default


def test_ema_half_life_ramps_up_from_a_copy():
    assert ema_beta(0, 8, 10.0, 0.05) == 0.0  # the first step copies G
    assert math.isclose(ema_beta(10**7, 8, 10.0, 0.05), 0.5 ** (8 / 10_000))  # StyleGAN2's 10 kimg half-life
    assert ema_beta(100, 8, 10.0, 0.05) < ema_beta(1000, 8, 10.0, 0.05)


# --------------------------------------------------------------------------- latents


def test_latents_depend_on_seed_and_step_only_and_ranks_take_shards():
    whole = latent_inputs(3, 5, 4, DistributedContext(), z_dim=32)
    again = latent_inputs(3, 5, 4, DistributedContext(), z_dim=32)
    assert whole["z"].shape == (4, 1, 32) and torch.equal(whole["z"], again["z"])
    assert int(whole["noise_seed"]) == int(again["noise_seed"])
    assert not torch.equal(whole["z"], latent_inputs(3, 6, 4, DistributedContext(), z_dim=32)["z"])
    ranks = [latent_inputs(3, 5, 4, DistributedContext(rank=r, world_size=2), z_dim=32) for r in (0, 1)]
    assert torch.equal(torch.cat([r["z"] for r in ranks]), whole["z"])
    assert int(ranks[0]["noise_seed"]) != int(ranks[1]["noise_seed"])
    assert abs(float(whole["z"].std()) - 1) < 0.3


@pytest.mark.parametrize("method", METHODS)
def test_student_and_teacher_see_the_same_latents_and_noise(method):
    distiller = make_student_distiller(method)
    seen: dict[str, list[torch.Tensor]] = {"teacher": [], "generator": []}  # the generator: the student trained
    for role in seen:
        getattr(distiller, role).mapping.register_forward_pre_hook(lambda _m, args, r=role: seen[r].append(args[0]))
    distiller.training_step(latent_batch(distiller), 0)
    assert torch.equal(seen["teacher"][0], seen["generator"][0])

    # a student that is an exact copy of the teacher reproduces its images exactly: same latents, same noise
    distiller.generator = copy.deepcopy(distiller.teacher)
    images = distiller.images(latent_batch(distiller))
    assert torch.equal(images.teacher, images.student)
    other_noise = {**latent_batch(distiller), "noise_seed": torch.tensor(12345)}
    assert not torch.equal(distiller.images(other_noise).teacher, images.teacher)  # the noise is not ignored


# --------------------------------------------------------------------------- one step of each method


EXPECTED_TERMS = {
    "stylegan2-kd": {"G_l1", "G_perceptual"},
    "itgc": {"G_mi", "EBM"},
    "dime": {"G_mmd"},
    "nickel": {"G_Dt", "D_haar", "Dt", "Dt_r1"},
    "nickel-dime": {"G_Dt", "D_haar", "Dt", "Dt_r1", "G_mmd"},
}


@pytest.mark.parametrize("method", METHODS)
def test_every_loss_is_finite_and_the_right_networks_change(method):
    distiller = make_student_distiller(method)
    teacher_g = parameters(distiller.teacher)
    teacher_d = distiller.teacher_critic.D if distiller.teacher_critic is not None else distiller.teacher_D
    before_td, before_sg = parameters(teacher_d), parameters(distiller.generator)
    before_sd = parameters(distiller.critic.D)
    losses = distiller.training_step(latent_batch(distiller), 0)  # step 0: R1 is due
    assert {"G", "D", "D_r1"} | EXPECTED_TERMS[method] <= set(losses)
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert not changed(teacher_g, distiller.teacher)  # the teacher generator never trains
    assert changed(before_sg, distiller.generator) and changed(before_sd, distiller.critic.D)
    assert_same_parameters(distiller.student, distiller.generator)  # step 0: the EMA (the saved student) is a copy
    assert changed(before_td, teacher_d) == method.startswith("nickel")  # only NICKEL trains the teacher's D


@pytest.mark.parametrize("method", METHODS)
def test_the_student_generator_loss_reaches_the_student_generator_only(method):
    distiller = make_student_distiller(method)
    images = distiller.images(latent_batch(distiller))
    sum(distiller.generator_losses(images).values()).backward()
    teacher_d = distiller.teacher_critic.D if distiller.teacher_critic is not None else distiller.teacher_D
    others = [distiller.teacher, teacher_d, distiller.critic.D, distiller.student, *distiller.terms]
    assert all(p.grad is None for module in others for p in module.parameters())
    grads = [p.grad for p in distiller.generator.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_nickel_teaches_the_student_discriminator_with_the_teacher_generators_wavelet_bands():
    distiller = make_student_distiller("nickel")
    (term,) = [t for t in distiller.terms if hasattr(t, "d_tap")]
    assert (term.teacher_tap, term.d_tap) == ("synthesis.b16.conv1", "b32")  # 16 px: the highest both have
    assert isinstance(term.projection, nn.Identity)  # the student D is a copy of the teacher's: same widths
    images = distiller.images(latent_batch(distiller))
    haar = term.discriminator_terms(distiller, images)["D_haar"]
    haar.backward()
    assert all(p.grad is None for p in distiller.generator.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in distiller.critic.D.b32.parameters())
    assert all(p.grad is None for p in distiller.teacher_critic.D.parameters())


def test_nickel_projects_a_discriminator_feature_of_another_width():
    distiller = make_student_distiller("nickel")
    seed_everything(5)
    narrow = create_discriminator("stylegan2", **{**REF, "channel_max": 8})
    distiller.critic.D = narrow
    from pocketgan.distill.stylegan2.nickel import WaveletDiscriminatorKD

    term = WaveletDiscriminatorKD(distiller, distiller.options)
    assert isinstance(term.projection, nn.Conv2d) and (term.projection.in_channels, term.projection.out_channels) == (8, 16)
    value = term.discriminator_terms(distiller, distiller.images(latent_batch(distiller)))["D_haar"]
    assert torch.isfinite(value) and value > 0


def test_itgc_trains_its_energy_model_alongside():
    distiller = make_student_distiller("itgc")
    (term,) = distiller.terms
    before = parameters(term.ebm)
    losses = distiller.training_step(latent_batch(distiller), 1)
    assert changed(before, term.ebm) and "EBM" in distiller.optimizers and np.isfinite(losses["G_mi"])
    ebm_opt = distiller.optimizers["EBM"]
    assert ebm_opt.param_groups[0]["lr"] == 1e-4 and ebm_opt.param_groups[0]["betas"] == (0.0, 0.999)


def test_dime_kernels_and_accumulated_teacher_statistics(tmp_path):
    from pocketgan.distill.stylegan2.mmd import TeacherStats

    for kernel in ("moments", "linear", "rbf", "polynomial"):
        distiller = make_student_distiller("dime", kernel=kernel)
        assert np.isfinite(distiller.training_step(latent_batch(distiller), 1)["G_mmd"]), kernel
    network = tiny_feature_network()
    stats = TeacherStats(network.num_features, metadata={"encoder": network.name, "encoder_key": network.key})
    with torch.no_grad():
        stats.update(network.embed(tiny_generator(100).eval()(torch.randn(16, 32))))
    path = stats.save(tmp_path / "stats.safetensors")
    distiller = make_student_distiller("dime", stats=str(path), kernel="rbf")
    assert np.isfinite(distiller.training_step(latent_batch(distiller), 1)["G_mmd"])
    with pytest.raises(PocketganError, match="kernel='cosine'"):
        make_student_distiller("dime", kernel="cosine")
    assert make_student_distiller("dime").terms[0].encoder.weight == 20.0  # the released DINO weight by default
    assert make_student_distiller("dime", lambda_mmd=5).terms[0].encoder.weight == 5.0


def test_the_saved_student_is_the_trained_ones_moving_average():
    distiller = make_student_distiller("dime")
    for step in range(3):
        distiller.training_step(latent_batch(distiller, step), step)
    ema, trained = distiller.student, distiller.generator
    assert not all(torch.equal(a, b) for a, b in zip(ema.parameters(), trained.parameters()))
    assert all(not p.requires_grad for p in ema.parameters()) and torch.equal(ema.w_avg, trained.w_avg)
    fixed = make_student_distiller("dime", ema_kimg=0.0, ema_rampup=0.0)  # half-life 0: the EMA is the generator
    fixed.training_step(latent_batch(fixed), 0)
    fixed.training_step(latent_batch(fixed, 1), 1)
    assert_same_parameters(fixed.student, fixed.generator)


def test_optimizers_are_stylegan2s():
    distiller = make_student_distiller("nickel")
    g, d = distiller.optimizers["G"].param_groups[0], distiller.optimizers["D"].param_groups[0]
    assert g["lr"] == 0.002 and g["betas"] == (0.0, 0.99)
    ratio = FAST["r1_every"] / (FAST["r1_every"] + 1)  # the lazy-R1 correction
    assert math.isclose(d["lr"], 0.002 * ratio) and math.isclose(d["betas"][1], 0.99**ratio)
    assert distiller.config.decay_from == 1.0  # constant lr


# --------------------------------------------------------------------------- the teacher method


def test_teacher_method_trains_g_d_and_an_ema_with_w_avg():
    trainer = make_teacher_trainer()
    g0, d0 = parameters(trainer.generator), parameters(trainer.critic.D)
    losses = {}
    for step in range(3):
        losses = trainer.training_step(latent_batch(trainer, step), step)
    assert {"G", "D"} <= set(losses) and all(np.isfinite(v) for v in losses.values())
    assert changed(g0, trainer.generator) and changed(d0, trainer.critic.D)
    ema, g = trainer.student, trainer.generator
    assert not all(torch.equal(a, b) for a, b in zip(ema.parameters(), g.parameters()))  # an average, not a copy
    assert changed(g0, ema)
    assert float(g.w_avg.abs().sum()) > 0 and torch.equal(ema.w_avg, g.w_avg)
    assert all(not p.requires_grad for p in ema.parameters())


def test_path_length_regularization_is_off_by_default_and_runs_when_asked():
    assert "G_pl" not in make_teacher_trainer().training_step(latent_batch(make_teacher_trainer()), 0)
    trainer = make_teacher_trainer(pl_weight=2.0, pl_every=1)
    losses = trainer.training_step(latent_batch(trainer), 0)
    assert np.isfinite(losses["G_pl"]) and float(trainer.pl_mean) > 0  # the running mean of path lengths moved


def test_style_mixing_draws_a_second_latent():
    assert make_teacher_trainer().latent_shape() == (1, 32)
    mixing = make_teacher_trainer(style_mixing=1.0)
    assert mixing.latent_shape() == (2, 32)
    assert np.isfinite(mixing.training_step(latent_batch(mixing), 0)["G"])


# --------------------------------------------------------------------------- bad input


def test_nickel_without_the_teachers_discriminator_is_one_clear_error():
    with pytest.raises(PocketganError, match="needs the teacher's discriminator"):
        make_student_distiller("nickel", with_discriminator=False)
    assert make_student_distiller("dime", with_discriminator=False).teacher_D is None  # others start D fresh


def test_an_image_to_image_teacher_is_refused_by_stylegan2_methods():
    resnet = create_generator("resnet9", ngf=4, n_blocks=1)
    with pytest.raises(PocketganError, match="must be a StyleGAN2 generator"):
        get_distiller("nickel")(tiny_generator(0), resnet, DistillConfig())
    with pytest.raises(PocketganError, match="unknown option lambda_xx"):
        make_student_distiller("nickel", lambda_xx=1)
