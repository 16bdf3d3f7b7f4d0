"""The StyleGAN2 generator and discriminator: shapes, noise modes, truncation, widths, taps, configs."""

from __future__ import annotations

import pytest
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.models import (
    build_generator,
    capture_features,
    create_discriminator,
    create_generator,
    load_model,
    save_model,
)

TINY = dict(channel_base=512, channel_max=32, z_dim=32, w_dim=32, n_mlp=2)


def tiny(size: int = 32, **extra):
    torch.manual_seed(0)
    return create_generator("stylegan2", size=size, **TINY, **extra).eval()


def randomize_noise_strength(model) -> None:
    """Fresh generators add no noise (strength 0, as NVlabs); give every layer some."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)


@pytest.mark.parametrize("size", [32, 64])
def test_images_and_latent_io_at_each_size(size):
    model = tiny(size)
    z = torch.randn(3, 32)
    with torch.no_grad():
        img = model(z)
    assert img.shape == (3, 3, size, size) and torch.isfinite(img).all()
    assert model.num_ws == 2 * {32: 5, 64: 6}[size] - 2
    assert model.io.is_latent and model.io.z_dim == 32 and tuple(model.io.fixed_size) == (size, size)
    assert model.example_input(batch=2).shape == (2, 32)
    assert len(model.const_noise()) == 2 * {32: 5, 64: 6}[size] - 3


def test_noise_modes():
    model = tiny()
    randomize_noise_strength(model)
    z = torch.randn(2, 32)
    with torch.no_grad():
        const = model(z, noise_mode="const")
        assert torch.equal(const, model(z, noise_mode="const"))  # stored buffers: deterministic
        torch.testing.assert_close(model.synthesis(model.mapping(z), noise=model.const_noise()), const)
        random_a, random_b = model(z, noise_mode="random"), model(z, noise_mode="random")
        none = model(z, noise_mode="none")
    assert (random_a - random_b).abs().max() > 1e-3
    assert (random_a - const).abs().max() > 1e-3 and (none - const).abs().max() > 1e-3
    with pytest.raises(PocketganError, match="noise_mode must be one of const, random, none"):
        model(z, noise_mode="fixed")


def test_truncation_pulls_w_towards_w_avg():
    model = tiny()
    with torch.no_grad():
        model.mapping.w_avg.copy_(torch.randn(32))
        z = torch.randn(4, 32)
        at_zero = model(z, truncation=0.0)  # every latent becomes w_avg: one image
        assert (at_zero - at_zero[:1]).abs().max() < 1e-5
        torch.testing.assert_close(at_zero[:1], model.synthesis(model.w_avg[None]))
        w = model.mapping(z)
        half = model.synthesis(model.w_avg + 0.5 * (w - model.w_avg))
        torch.testing.assert_close(model(z, truncation=0.5), half)
        torch.testing.assert_close(model(z, truncation=1.0), model.synthesis(w))


def test_w_avg_tracks_the_mean_of_w_in_training_only():
    model = tiny()
    z = torch.randn(64, 32)
    model.eval()
    model.mapping(z)
    assert torch.count_nonzero(model.w_avg) == 0
    model.train()
    with torch.no_grad():
        for _ in range(3000):  # decay 0.995: converges to the (fixed) batch mean
            model.mapping(z)
        torch.testing.assert_close(model.w_avg, model.mapping(z).mean(0), atol=1e-4, rtol=1e-4)


def test_w_per_layer_and_bad_shapes_are_one_line():
    model = tiny()
    z = torch.randn(2, 32)
    with torch.no_grad():
        w = model.mapping(z)
        torch.testing.assert_close(model.synthesis(w[:, None].repeat(1, model.num_ws, 1)), model.synthesis(w))
        mixed = w[:, None].repeat(1, model.num_ws, 1)
        mixed[:, 4:] = model.mapping(torch.randn(2, 32))[:, None]  # style mixing: other coarse/fine styles
        assert (model.synthesis(mixed) - model.synthesis(w)).abs().max() > 1e-3
    with pytest.raises(PocketganError, match=r"takes z of shape \(batch, 32\); got \(2, 16\)"):
        model(torch.randn(2, 16))
    with pytest.raises(PocketganError, match=r"synthesis takes w of shape"):
        model.synthesis(torch.randn(2, 3, 32))


def test_configs_give_the_published_channel_tables():
    paper256 = create_generator("stylegan2", size=256, config="paper256")  # stylegan2-ada cfg paper256
    convs = {int(k.split(".")[1][1:]): w for k, w in paper256.current_widths().items() if k.endswith("conv1.conv")}
    assert convs == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}
    assert paper256.config["n_mlp"] == 8 and paper256.z_dim == paper256.w_dim == 512
    rosinality = create_generator("stylegan2", size=128, channel_multiplier=2, n_mlp=2)  # rosinality's table
    convs = {int(k.split(".")[1][1:]): w for k, w in rosinality.current_widths().items() if k.endswith("conv1.conv")}
    assert convs == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256}
    largest = create_generator("stylegan2", size=1024, channel_multiplier=2, n_mlp=1)
    assert largest.current_widths()["synthesis.b1024.conv1.conv"] == 32 and largest.num_ws == 18
    with pytest.raises(PocketganError, match="unknown config 'paper265' \\(did you mean paper256\\?\\)"):
        create_generator("stylegan2", size=256, config="paper265")
    with pytest.raises(PocketganError, match="size must be a power of two"):
        create_generator("stylegan2", size=48)


def test_reference_syntax_builds_the_model():
    loaded = load_model("stylegan2:size=32,channel_multiplier=1,z_dim=32,w_dim=32,n_mlp=2")
    assert loaded.model.size == 32 and loaded.model.config["channel_base"] == 16384
    assert loaded.manifest.io.is_latent and loaded.manifest.spec.arch == "stylegan2"


def test_pruned_widths_rebuild_exactly(tmp_path):
    widths = {"synthesis.b4.const": 7, "synthesis.b8.conv0.conv": 5, "synthesis.b16.conv1.conv": 9,
              "synthesis.b32.conv1.conv": 3, "mapping.fc0": 11}  # fmt: skip
    model = tiny(widths=widths)
    randomize_noise_strength(model)
    spec = model.spec()
    assert all(spec.widths[k] == v for k, v in widths.items())
    assert spec.widths["synthesis.b8.conv1.conv"] == 32  # the others are listed at their default
    assert model.synthesis.b8.conv1.affine.out_features == 5 and model.synthesis.b32.torgb.conv.in_channels == 3
    rebuilt = build_generator(spec)
    rebuilt.load_state_dict(model.state_dict())  # strict: every shape matches
    z = torch.randn(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(z), model(z), atol=0, rtol=0)
    save_model(model, tmp_path / "student")
    again = load_model(tmp_path / "student")
    assert again.manifest.spec.widths == spec.widths
    with torch.no_grad():
        torch.testing.assert_close(again.model(z), model(z), atol=0, rtol=0)
    assert tiny().spec().widths is None
    with pytest.raises(PocketganError, match="no prunable layer named synthesis.b64.conv1.conv"):
        tiny(widths={"synthesis.b64.conv1.conv": 4})


def test_feature_taps_one_per_resolution():
    model = tiny(widths={"synthesis.b16.conv1.conv": 9})
    taps = model.feature_taps()
    assert [t.name for t in taps] == [f"synthesis.b{r}.conv1" for r in (4, 8, 16, 32)]
    with torch.no_grad(), capture_features(model, [t.name for t in taps]) as feats:
        model(torch.randn(2, 32))
    for tap in taps:
        assert feats[tap.name].shape == (2, tap.channels, 32 // tap.stride, 32 // tap.stride)
    assert taps[2].channels == 9


def test_discriminator_logits_taps_and_r1_gradients():
    d = create_discriminator("stylegan2", size=32, **TINY)  # generator-only keys are ignored
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    with capture_features(d, [t.name for t in d.feature_taps()]) as feats:
        logits = d(img)
    assert logits.shape == (4, 1)
    for tap in d.feature_taps():
        assert feats[tap.name].shape == (4, tap.channels, 32 // tap.stride, 32 // tap.stride)
    (grad,) = torch.autograd.grad(logits.sum(), img, create_graph=True)  # R1 needs the double backward
    grad.square().sum().backward()
    no_grad = [n for n, p in d.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == ["b4.out.bias"]  # the logit's bias does not change its gradient w.r.t. the image
    with pytest.raises(PocketganError, match="batch divisible by 4"):
        d(torch.randn(6, 3, 32, 32))
    with pytest.raises(PocketganError, match=r"takes \(batch, 3, 32, 32\) images"):
        d(torch.randn(4, 3, 64, 64))


def test_discriminator_widths_and_paper256_channels():
    d = create_discriminator("stylegan2", size=32, channel_base=512, channel_max=32, widths={"b16": 12})
    assert d.b16.conv0.out_channels == 12 and d.b32.conv1.out_channels == 12 and d.config["widths"]["b16"] == 12
    assert d(torch.randn(2, 3, 32, 32)).shape == (2, 1)
    big = create_discriminator("stylegan2", size=256, config="paper256")
    assert [big.b256.fromrgb.out_channels, big.b128.conv0.out_channels, big.b64.conv0.out_channels] == [64, 128, 256]
    assert big.b4.conv.out_channels == 512


def test_generator_trains_every_parameter():
    model = tiny().train()
    randomize_noise_strength(model)
    model(torch.randn(2, 32), noise_mode="random").square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
