"""Generator options of the translation families: the residual output head and separable U-Net blocks,
and the training options that go with them (pix2pix's SSIM term, OMGD's teacher learning rate)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.models import create_generator, load_model, save_model
from pocketgan.models.profile import profile_model
from pocketgan.models.prune import ChannelPruner, rebuild_pruned

from test_omgd import TinyPerceptual, batch, make

SEPARABLE = dict(num_downs=5, ngf=8, upsample="resize", block="separable")


def last_conv(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]


@pytest.mark.parametrize("arch, config", [("unet128", dict(num_downs=5, ngf=4, upsample="resize")), ("resnet9", dict(ngf=4, n_blocks=1))])
def test_the_residual_head_adds_the_input_and_clips(arch, config):
    model = create_generator(arch, output="residual", **config).eval()
    assert model.config["output"] == "residual"
    with torch.no_grad():
        last_conv(model).weight.zero_()
        last_conv(model).bias.fill_(0.5)
    x = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    assert torch.allclose(y, (x + 0.5).clamp(max=1.0), atol=1e-6)  # input + 0.5, clipped to the image range
    assert y.max().item() == 1.0 and y.min().item() == pytest.approx(-0.5, abs=1e-6)


def test_tanh_stays_the_default_head_and_out_of_the_config():
    model = create_generator("unet128", num_downs=5, ngf=4)
    assert "output" not in model.config and isinstance(model.model.model[-1], nn.Tanh)


def test_bad_heads_are_one_line():
    with pytest.raises(PocketganError, match="output must be tanh or residual"):
        create_generator("unet64", ngf=4, output="sigmoid")
    with pytest.raises(PocketganError, match="needs input_nc == output_nc"):
        create_generator("unet64", ngf=4, output="residual", input_nc=1)
    with pytest.raises(PocketganError, match="block must be plain or separable"):
        create_generator("unet64", ngf=4, block="mobile")


def test_separable_blocks_are_depthwise_then_pointwise():
    model = create_generator("unet128", **SEPARABLE)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 9  # one per down- and upsampling conv, 5 levels; the image's downconv stays plain
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    # The level-1 downconv: depthwise 4x4 stride 2 on its 8 inputs, then 1x1 to 16 (2 * ngf).
    down = model.model.model[1].model[1]
    assert (down[0].kernel_size, down[0].stride, down[1].kernel_size, down[1].out_channels) == ((4, 4), (2, 2), (1, 1), 16)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_separable_blocks_cost_a_fraction_of_plain_ones():
    plain = profile_model(create_generator("unet64", ngf=16, upsample="resize"), (1, 3, 64, 64)).macs
    separable = profile_model(create_generator("unet64", ngf=16, upsample="resize", block="separable"), (1, 3, 64, 64)).macs
    assert separable * 10 < plain  # 3x3/4x4 channel mixing replaced by 1x1 mixing


def test_a_pruned_separable_unet_rebuilds_from_its_spec(tmp_path):
    torch.manual_seed(0)
    model = create_generator("unet128", **SEPARABLE).eval()
    raw = ChannelPruner(model).prune(0.5)
    rebuilt = rebuild_pruned(raw)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(raw(x), rebuilt(x))
    save_model(rebuilt, tmp_path / "pruned")
    reloaded = load_model(tmp_path / "pruned").model
    with torch.no_grad():
        assert torch.equal(rebuilt(x), reloaded(x))
    assert reloaded.model.model[1].model[1][1].out_channels == 8  # the pointwise conv carries the width: 16 → 8


def pix2pix(lambda_ssim: float) -> tuple[nn.Module, dict[str, float]]:
    torch.manual_seed(0)
    student = create_generator("unet128", num_downs=5, ngf=4)
    trainer = get_distiller("pix2pix")(student, None, DistillConfig(lr=1e-3, options={"ndf": 4, "lambda_ssim": lambda_ssim}))
    logs = trainer.training_step(batch(), 0)
    return student, logs


def test_pix2pix_ssim_term_changes_the_update_and_is_logged():
    without, logs_without = pix2pix(0.0)
    with_ssim, logs_with = pix2pix(30.0)
    assert "G_ssim" not in logs_without and 0 < logs_with["G_ssim"] < 2
    changed = [not torch.equal(a, b) for a, b in zip(without.parameters(), with_ssim.parameters())]
    assert any(changed)


def test_omgd_teacher_lr_sets_only_the_teachers_optimizer():
    d = make(lr=1e-3, teacher_lr=1e-4)
    assert [g["lr"] for g in d.optimizers["teachers"].param_groups] == [1e-4]
    assert [g["lr"] for g in d.optimizers["student"].param_groups] == [1e-3]
    assert [g["lr"] for g in make(lr=1e-3).optimizers["teachers"].param_groups] == [1e-3]


def test_omgd_bad_teacher_lr_is_one_line():
    with pytest.raises(PocketganError, match="teacher_lr must be > 0"):
        make(teacher_lr=0)
    with pytest.raises(PocketganError, match="teacher_lr='fast' must be a float"):
        get_distiller("omgd")(create_generator("mobile-resnet", ngf=4, n_blocks=2),
                              create_generator("resnet9", ngf=8, n_blocks=2).eval(),
                              DistillConfig(options={"teacher_lr": "fast"}), perceptual=TinyPerceptual())  # fmt: skip


def test_optional_numeric_options_are_coerced_by_their_annotation():
    from pocketgan.distill.omgd import OMGDOptions

    assert OMGDOptions.from_config(DistillConfig(options={"teacher_lr": "1e-4"}), "omgd").teacher_lr == 1e-4
    assert OMGDOptions.from_config(DistillConfig(options={"teacher_lr": "none"}), "omgd").teacher_lr is None
    with pytest.raises(PocketganError, match="teacher_lr='1e-4x' must be a float"):
        OMGDOptions.from_config(DistillConfig(options={"teacher_lr": "1e-4x"}), "omgd")
