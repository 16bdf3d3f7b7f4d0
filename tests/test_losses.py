"""The distillation losses: zero on identical inputs, positive otherwise, gradients where they belong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pocketgan.distill.base import GANLoss
from pocketgan.distill.losses import (
    AGDWeights,
    ChannelDistillation,
    FeatureDistillation,
    adversarial_loss,
    discriminator_loss,
    feature_loss,
    gram_matrix,
    multi_granularity_loss,
    pair_feature_taps,
    ssim_loss,
    style_loss,
    total_variation,
)
from pocketgan.core.errors import PocketganError
from pocketgan.models import FeatureTap, create_discriminator, create_generator



def images(seed: int, shape=(2, 3, 32, 32)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def feature_maps(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 8, 8, 8, generator=g)]


def grad_of(loss_fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    loss_fn(x).backward()
    return x.grad


# ---------------------------------------------------------------- image terms


def test_ssim_loss_is_zero_for_identical_images_and_grows_with_noise():
    a = images(0)
    assert ssim_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    slightly = ssim_loss((a + 0.05 * images(1)).clamp(-1, 1), a).item()
    very = ssim_loss(images(2), a).item()
    assert 0 < slightly < very <= 2


def test_ssim_loss_works_on_the_minus_one_one_range_not_raw_values():
    # A constant shift of 0.5 in [-1, 1] is 0.25 in [0, 1]: a luminance change SSIM must see.
    a = images(0) * 0.5
    assert ssim_loss(a + 0.5, a).item() > 0.01


def test_ssim_loss_gradient_flows_to_the_prediction():
    g = grad_of(lambda x: ssim_loss(x, images(1)), images(0))
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_gram_matrix_is_normalised_symmetric_channel_correlation():
    f = torch.randn(2, 4, 5, 6)
    gram = gram_matrix(f)
    assert gram.shape == (2, 4, 4)
    assert torch.allclose(gram, gram.transpose(1, 2))
    expected = (f[0, 1] * f[0, 2]).sum() / (4 * 5 * 6)
    assert gram[0, 1, 2].item() == pytest.approx(expected.item(), rel=1e-5)


def test_style_loss_ignores_spatial_arrangement_but_not_channel_statistics():
    f = feature_maps(0)
    assert style_loss(f, f).item() == 0
    shuffled = [x.flip(-1).flip(-2) for x in f]  # same Gram matrices
    assert style_loss(shuffled, f).item() == pytest.approx(0.0, abs=1e-6)
    assert style_loss(feature_maps(1), f).item() > 0
    g = grad_of(lambda x: style_loss([x, f[1]], f), feature_maps(1)[0])
    assert g.abs().sum() > 0


def test_feature_loss_is_l1_on_the_chosen_levels():
    f, h = feature_maps(0), feature_maps(1)
    assert feature_loss(f, f).item() == 0
    only_second = feature_loss([h[0], f[1]], f, layers=[1])
    assert only_second.item() == 0  # level 0 differs but is not chosen
    assert feature_loss([h[0], f[1]], f).item() == pytest.approx((h[0] - f[0]).abs().mean().item(), rel=1e-6)
    g = grad_of(lambda x: feature_loss([x, f[1]], f), h[0])
    assert g.abs().sum() > 0
    with pytest.raises(PocketganError, match="level 5"):
        feature_loss(f, f, layers=[5])
    with pytest.raises(PocketganError, match="levels"):
        feature_loss(f, f[:1])


def test_total_variation_counts_neighbour_differences():
    assert total_variation(torch.full((1, 3, 8, 8), 0.3)).item() == 0
    x = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])
    assert total_variation(x).item() == pytest.approx(1 + 2 + 3 + 0)  # |0-1|+|3-1| + |0-3|+|1-1|
    assert total_variation(x, reduction="mean").item() == pytest.approx((1.5 + 1.5) / 2)
    assert total_variation(images(0)).item() > 0
    assert grad_of(total_variation, images(0)).abs().sum() > 0
    with pytest.raises(PocketganError):
        total_variation(x, reduction="max")


def test_agd_weights_parse_the_papers_flag_and_reject_bad_values():
    assert AGDWeights.parse("1e1,1e4,1e1,1e-5") == AGDWeights()
    assert AGDWeights.parse([1, 2, 3, 4]) == AGDWeights(1.0, 2.0, 3.0, 4.0)
    for bad in ("1,2,3", "a,b,c,d", [1, 2, 3, -1], "1,2,3,nan"):
        with pytest.raises(PocketganError, match="agd_weights"):
            AGDWeights.parse(bad)


def test_multi_granularity_loss_weights_each_term():
    a, b = images(0), images(1)
    fa, fb = feature_maps(0), feature_maps(1)
    unit = multi_granularity_loss(a, b, fa, fb, AGDWeights(1, 1, 1, 1), [1])
    doubled = multi_granularity_loss(a, b, fa, fb, AGDWeights(2, 3, 4, 5), [1])
    for key, factor in (("ssim", 2), ("style", 3), ("feature", 4), ("tv", 5)):
        assert doubled[key].item() == pytest.approx(factor * unit[key].item(), rel=1e-5)
    same = multi_granularity_loss(a, a, fa, fa, AGDWeights(), None)
    assert same["ssim"].item() == pytest.approx(0, abs=1e-5) and same["style"] == 0 and same["feature"] == 0


# ---------------------------------------------------------------- conditional GAN terms


def test_gan_terms_train_the_right_network():
    disc = create_discriminator("patchgan", input_nc=6, ndf=4)
    gan = GANLoss("hinge")
    a, b = images(0), images(1)
    fake = images(2).requires_grad_(True)
    discriminator_loss(disc, gan, a, b, fake).backward()
    assert fake.grad is None  # the discriminator's loss never reaches the generator
    assert all(p.grad is not None for p in disc.parameters())
    adversarial_loss(disc, gan, a, fake).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


# ---------------------------------------------------------------- feature-tap pairing and distillation


def test_pair_taps_equal_counts_pair_in_order():
    teacher = create_generator("resnet9", ngf=8).feature_taps()
    student = create_generator("mobile-resnet", ngf=4).feature_taps()
    pairs = pair_feature_taps(teacher, student)
    assert [(t.name, s.name) for t, s in pairs] == [(n, n) for n in ("model.9", "model.12", "model.15", "model.18")]
    assert {(t.channels, s.channels) for t, s in pairs} == {(32, 16)}


def test_pair_taps_of_different_depths_match_relative_depth():
    teacher = create_generator("resnet9", ngf=8).feature_taps()  # 4 taps
    student = create_generator("mobile-resnet", ngf=4, n_blocks=2).feature_taps()  # 3 taps
    pairs = pair_feature_taps(teacher, student)
    assert [(t.name, s.name) for t, s in pairs] == [("model.9", "model.9"), ("model.15", "model.10"),
                                                    ("model.18", "model.11")]  # fmt: skip


def test_pair_taps_across_families_use_the_common_stride_only():
    unet = create_generator("unet128", num_downs=5, ngf=8).feature_taps()  # strides 8, 4, 2
    resnet = create_generator("mobile-resnet", ngf=4, n_blocks=3).feature_taps()  # all stride 4
    pairs = pair_feature_taps(unet, resnet)
    assert len(pairs) == 1 and pairs[0][0].stride == pairs[0][1].stride == 4
    assert pairs[0][1].name == resnet[-1].name  # one teacher tap ↔ the deepest student tap
    unet_pairs = pair_feature_taps(unet, create_generator("unet128", num_downs=5, ngf=4).feature_taps())
    assert [t.stride for t, _ in unet_pairs] == [8, 4, 2]
    assert all(t.channels == 2 * s.channels for t, s in unet_pairs)
    with pytest.raises(PocketganError, match="stride"):
        pair_feature_taps([FeatureTap("a", 4, 8)], [FeatureTap("b", 4, 4)])


def _tap_features(seed: int, taps: list[FeatureTap], size: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {t.name: torch.randn(2, t.channels, size, size, generator=g) for t in taps}


def test_feature_distillation_adapts_student_channels_to_the_teachers():
    teacher, student = [FeatureTap("t", 6, 4)], [FeatureTap("s", 3, 4)]
    loss = FeatureDistillation(pair_feature_taps(teacher, student))
    assert loss.adapters[0].weight.shape == (6, 3, 1, 1)
    s_feats, t_feats = _tap_features(0, student), _tap_features(1, teacher)
    with torch.no_grad():
        t_feats["t"] = loss.adapters[0](s_feats["s"])
    assert loss(s_feats, t_feats).item() == pytest.approx(0.0, abs=1e-12)
    t_feats["t"] = t_feats["t"].roll(1, dims=-1).requires_grad_(True)  # spatially moved: MSE sees it
    s_feats["s"].requires_grad_(True)
    value = loss(s_feats, t_feats)
    assert value.item() > 0
    value.backward()
    assert s_feats["s"].grad.abs().sum() > 0 and loss.adapters[0].weight.grad.abs().sum() > 0
    assert t_feats["t"].grad is None  # teacher features are targets only


def test_feature_distillation_rejects_mismatched_spatial_sizes():
    loss = FeatureDistillation([(FeatureTap("t", 4, 4), FeatureTap("s", 4, 4))])
    with pytest.raises(PocketganError, match="differ in size"):
        loss({"s": torch.zeros(1, 4, 8, 8)}, {"t": torch.zeros(1, 4, 4, 4)})
    with pytest.raises(PocketganError, match="channels"):
        loss({"s": torch.zeros(1, 5, 8, 8)}, {"t": torch.zeros(1, 4, 8, 8)})


def test_channel_distillation_compares_channel_means_through_conv_bn_relu():
    teacher, student = [FeatureTap("t", 6, 4)], [FeatureTap("s", 3, 4)]
    loss = ChannelDistillation(pair_feature_taps(teacher, student))
    adapter = loss.adapters[0]
    assert [type(m) for m in adapter] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert adapter[0].weight.shape == (6, 3, 1, 1) and adapter[0].bias is None
    s_feats = _tap_features(0, student)
    with torch.no_grad():
        target = adapter(s_feats["s"])
    # Same channel means with the pixels moved around: channel distillation sees no difference.
    assert loss(s_feats, {"t": target.roll(3, dims=-1)}).item() == pytest.approx(0.0, abs=1e-10)
    s_feats["s"].requires_grad_(True)
    value = loss(s_feats, {"t": target + 0.5})
    assert value.item() == pytest.approx(0.25, rel=1e-4)
    value.backward()
    assert s_feats["s"].grad.abs().sum() > 0 and adapter[0].weight.grad.abs().sum() > 0
