"""GAN Compression baseline: frozen teacher, PatchGAN + L1 + adapted feature distillation."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn
from torch.nn import functional as F

from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.gan_compression import GANCompressionDistiller
from pocketgan.core.errors import PocketganError
from pocketgan.models import capture_features, create_generator, load_model, save_model


def batch(seed: int = 0, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    return {"A": a, "B": (a.flip(-1) * 0.8).tanh()}


def resnet_teacher() -> nn.Module:
    return create_generator("resnet9", ngf=8, n_blocks=2)


def unet_teacher() -> nn.Module:
    return create_generator("unet128", num_downs=5, ngf=8)


def make(teacher: nn.Module, student: nn.Module, lr: float = 2e-4, **options) -> GANCompressionDistiller:
    config = DistillConfig(lr=lr, options={"ndf": 4, **options})
    return get_distiller("gan-compression")(student, teacher.eval(), config)


def student_objective(d: GANCompressionDistiller, data: dict[str, torch.Tensor]) -> float:
    """Reconstruction + feature distillation of the current student (no update)."""
    with torch.no_grad(), capture_features(d.teacher, d.distill.teacher_taps) as t_feats:
        d.teacher(data["A"])
        with capture_features(d.student, d.distill.student_taps) as s_feats:
            fake = d.student(data["A"])
        return (d.options.lambda_recon * F.l1_loss(fake, data["B"]) + d.distill(s_feats, t_feats)).item()


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_registered_under_its_dashed_name_with_the_papers_defaults():
    assert get_distiller("gan-compression") is GANCompressionDistiller
    d = make(resnet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2))
    assert d.gan_loss.mode == "hinge" and d.options.lambda_recon == 100 and d.options.lambda_distill == 1
    assert d.options.recon_target == "real"
    adam = d.optimizers["G"]
    assert adam.defaults["lr"] == 2e-4 and adam.defaults["betas"] == (0.5, 0.999)
    assert set(d.optimizers) == {"G", "D"}
    g_params = {id(p) for group in adam.param_groups for p in group["params"]}
    assert {id(p) for p in d.distill.parameters()} <= g_params  # adapters learn with the student
    assert not {id(p) for p in d.teacher.parameters()} & g_params


@pytest.mark.parametrize(
    "teacher,student",
    [
        (resnet_teacher, lambda: create_generator("mobile-resnet", ngf=4, n_blocks=2)),
        (unet_teacher, lambda: create_generator("unet128", num_downs=5, ngf=4)),
    ],
    ids=["resnet", "unet"],
)
def test_a_few_steps_lower_the_student_loss_and_leave_the_teacher_alone(teacher, student):
    torch.manual_seed(0)
    d = make(teacher(), student(), lr=2e-3)
    data = batch()
    frozen = params(d.teacher)
    before = student_objective(d, data)
    for step in range(16):
        logs = d.training_step(data, step)
    assert set(logs) == {"G", "G_gan", "G_recon", "G_distill", "D"}
    assert student_objective(d, data) < 0.9 * before
    assert all(torch.equal(a, b) for a, b in zip(frozen, params(d.teacher)))
    assert not d.teacher.training and d.student.training


def test_teacher_stays_frozen_in_eval_mode_and_the_discriminator_trainable_between_steps():
    from pocketgan.distill.trainer import set_train_mode

    d = make(resnet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2))
    d.training_step(batch(), 0)
    set_train_mode(d)  # what the training loop does
    assert not d.teacher.training and d.discriminator.training and d.student.training
    assert not any(p.requires_grad for p in d.teacher.parameters())
    assert all(p.requires_grad for p in d.discriminator.parameters())


def test_adapters_map_narrower_student_widths_to_the_teachers():
    teacher = create_generator("resnet9", ngf=8)  # trunk 32, taps model.9/12/15/18
    d = make(teacher, create_generator("mobile-resnet", ngf=4))  # trunk 16
    assert [(t.name, s.name) for t, s in d.distill.pairs] == [(f"model.{i}", f"model.{i}") for i in (9, 12, 15, 18)]
    assert [tuple(a.weight.shape) for a in d.distill.adapters] == [(32, 16, 1, 1)] * 4


def test_pruned_student_from_a_model_directory(tmp_path):
    teacher = resnet_teacher()
    pruned = create_generator("resnet9", ngf=8, n_blocks=2)
    pruned.load_state_dict(teacher.state_dict())
    example = torch.rand(1, 3, 32, 32)
    tp.pruner.MagnitudePruner(pruned, example, importance=tp.importance.MagnitudeImportance(p=1),
                              pruning_ratio=0.5, ignored_layers=[pruned.model[-2]]).step()  # fmt: skip
    save_model(pruned, tmp_path / "pruned")
    student = load_model(tmp_path / "pruned").model.train()
    trunk = student.model[7].out_channels
    assert trunk < 32
    d = make(teacher, student)
    assert [tuple(a.weight.shape) for a in d.distill.adapters] == [(32, trunk, 1, 1)] * 3
    logs = d.training_step(batch(), 0)
    assert logs["G_distill"] > 0


def test_unet_teacher_and_student_pair_taps_by_stride():
    d = make(unet_teacher(), create_generator("unet128", num_downs=5, ngf=4))
    shapes = [(t.stride, tuple(a.weight.shape[:2])) for (t, _), a in zip(d.distill.pairs, d.distill.adapters)]
    assert shapes == [(8, (64, 32)), (4, (32, 16)), (2, (16, 8))]
    mixed = make(unet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2))
    assert [(t.stride, s.stride) for t, s in mixed.distill.pairs] == [(4, 4)]
    assert mixed.training_step(batch(), 0)["G_distill"] > 0


@pytest.mark.parametrize("target", ["real", "teacher"])
def test_reconstruction_target_option(target):
    torch.manual_seed(0)
    d = make(resnet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2), recon_target=target)
    data = batch()
    with torch.no_grad():
        fake, teacher_out = d.student(data["A"]), d.teacher(data["A"])
    expected = 100 * F.l1_loss(fake, data["B"] if target == "real" else teacher_out).item()
    assert d.training_step(data, 0)["G_recon"] == pytest.approx(expected, rel=1e-5)


def test_bad_options_and_unpaired_batches_give_one_line_errors():
    teacher, student = resnet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2)
    for options, message in [({"recon_target": "fake"}, "recon_target"), ({"gan_mode": "wgan"}, "GAN loss"),
                             ({"ndf": "wide"}, "ndf"), ({"lambda_distill": -1}, "lambda_distill"),
                             ({"lambda_kd": 1}, "unknown option")]:  # fmt: skip
        with pytest.raises(PocketganError, match=message):
            make(teacher, student, **options)
    assert make(teacher, student, gan_mode="lsgan", lambda_distill="0.5").options.lambda_distill == 0.5
    with pytest.raises(PocketganError, match="paired"):
        make(teacher, student).training_step({"A": batch()["A"]}, 0)
    with pytest.raises(PocketganError, match="teacher"):
        get_distiller("gan-compression")(student, None, DistillConfig())


def make_unpaired(**options) -> GANCompressionDistiller:
    torch.manual_seed(0)
    teacher, student = resnet_teacher(), create_generator("mobile-resnet", ngf=4, n_blocks=2)
    config = DistillConfig(unpaired=True, options={"ndf": 4, **options})
    return get_distiller("gan-compression")(student, teacher.eval(), config)


def test_unpaired_data_uses_the_cyclegan_setting():
    d = make_unpaired()
    opts = d.options
    assert (opts.gan_mode, opts.lambda_recon, opts.lambda_distill, opts.recon_target) == ("lsgan", 10.0, 0.01, "teacher")
    assert d.discriminator.model[0].in_channels == 3  # judges single B-domain images, not (A, B) pairs
    assert make_unpaired(lambda_recon=3).options.lambda_recon == 3.0
    with pytest.raises(PocketganError, match="recon_target=teacher"):
        make_unpaired(recon_target="real")


def test_unpaired_reconstruction_is_to_the_teachers_output_not_b():
    d = make_unpaired()
    data = batch()
    with torch.no_grad():
        expected = 10.0 * F.l1_loss(d.student(data["A"]), d.teacher(data["A"])).item()
    garbage = {"A": data["A"], "B": torch.randn(data["B"].shape, generator=torch.Generator().manual_seed(5)) * 7}
    logs = d.training_step(garbage, 0)
    assert logs["G_recon"] == pytest.approx(expected, rel=1e-5)
