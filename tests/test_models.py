"""Generator families: official state-dict layouts, widths, specs, model directories, checkpoint loading."""

from __future__ import annotations

import json

import pytest
import torch

from pocketgan.core.errors import ManifestError, PocketganError
from pocketgan.core.contract import GeneratorSpec
from pocketgan.models import (
    build_generator,
    capture_features,
    create_discriminator,
    create_generator,
    list_generators,
    load_model,
    parse_reference,
    save_model,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_families():
    assert {"resnet9", "resnet6", "mobile-resnet", "unet256", "unet128"} <= set(list_generators())
    with pytest.raises(PocketganError, match="unknown generator"):
        create_generator("resnet7")


@pytest.mark.parametrize(
    "arch, config, params",
    [
        ("resnet9", {}, 11_378_179),  # junyanz ResnetGenerator, ngf 64
        ("resnet6", {}, 7_837_699),
        ("mobile-resnet", {"ngf": 16}, 137_347),  # OMGD's headline student, ~0.137 M
        ("unet256", {}, 54_413_955),  # junyanz unet_256
    ],
)
def test_parameter_counts_match_the_published_models(arch, config, params):
    assert n_params(create_generator(arch, **config)) == params


def test_resnet_state_dict_layout_matches_pix2pix():
    keys = create_generator("resnet9", ngf=4).state_dict().keys()
    assert "model.1.weight" in keys and "model.10.conv_block.5.weight" in keys
    assert "model.26.weight" in keys  # the 7x7 output conv
    with_dropout = create_generator("resnet9", ngf=4, dropout=0.5).state_dict().keys()
    assert "model.10.conv_block.6.weight" in with_dropout  # Dropout shifts the second conv


def test_mobile_resnet_layout_matches_gan_compression():
    keys = create_generator("mobile-resnet", ngf=4).state_dict().keys()
    assert "model.10.conv_block.1.conv.0.weight" in keys  # depthwise
    assert "model.10.conv_block.6.conv.2.weight" in keys  # pointwise of the second separable conv


def test_unet_state_dict_layout_matches_pix2pix():
    keys = list(create_generator("unet256", ngf=4).state_dict())
    assert keys[0] == "model.model.0.weight"
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in keys  # innermost down
    assert "model.model.3.bias" in keys  # outermost upconv has a bias


@pytest.mark.parametrize("arch, size", [("resnet9", 32), ("resnet6", 36), ("mobile-resnet", 40), ("unet128", 128)])
def test_generators_keep_the_image_shape_in_tanh_range(arch, size):
    model = create_generator(arch, ngf=4).eval()
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1


def test_feature_taps_are_real_modules_with_declared_shapes():
    for arch, size in (("resnet9", 32), ("mobile-resnet", 32), ("unet128", 128)):
        model = create_generator(arch, ngf=4).eval()
        taps = model.feature_taps()
        assert taps
        with capture_features(model, [t.name for t in taps]) as feats:
            model(torch.randn(1, 3, size, size))
        for tap in taps:
            assert feats[tap.name].shape[1:] == (tap.channels, size // tap.stride, size // tap.stride)


def test_input_size_checks_name_the_constraint():
    with pytest.raises(PocketganError, match="multiples of 4"):
        create_generator("resnet9", ngf=4).check_input_size(30, 32)
    with pytest.raises(PocketganError, match="multiples of 256"):
        create_generator("unet256", ngf=4).check_input_size(128, 128)


def test_patchgan_is_70x70_and_conditional():
    disc = create_discriminator("patchgan", input_nc=6, ndf=8)
    assert disc(torch.randn(1, 6, 64, 64)).shape == (1, 1, 6, 6)
    assert "model.11.weight" in create_discriminator("patchgan").state_dict()  # junyanz's last conv


def test_reference_syntax():
    assert parse_reference("resnet9:ngf=32,dropout=0.5,norm=batch") == (
        "resnet9",
        {"ngf": 32, "dropout": 0.5, "norm": "batch"},
    )
    with pytest.raises(PocketganError, match="bad architecture reference"):
        parse_reference("resnet9:ngf")  # a registered name's config needs key=value


@pytest.mark.parametrize(
    "ref, parsed",
    [
        ("mypkg.nets:build", ("mypkg.nets:build", {})),
        ("mypkg.nets:build:channels=16,norm=group", ("mypkg.nets:build", {"channels": 16, "norm": "group"})),
        ("nets:Zoo.small:depth=2", ("nets:Zoo.small", {"depth": 2})),
        ("mobile-resnet:ngf=8", ("mobile-resnet", {"ngf": 8})),
    ],
)
def test_factory_references_do_not_clash_with_arch_config(ref, parsed):
    assert parse_reference(ref) == parsed


def test_spec_rebuilds_custom_widths_exactly(tmp_path):
    widths = {"model.1": 3, "model.4": 5, "model.7": 6, "model.10.conv_block.1.conv.2": 2, "model.19": 7, "model.22": 4}
    model = create_generator("mobile-resnet", ngf=4, widths=widths).eval()
    spec = model.spec()
    assert spec.widths is not None and spec.widths["model.10.conv_block.1.conv.2"] == 2
    rebuilt = build_generator(GeneratorSpec.from_dict(json.loads(json.dumps(spec.__dict__))))
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
    assert create_generator("mobile-resnet", ngf=4).spec().widths is None
    with pytest.raises(PocketganError, match="no prunable layer"):
        create_generator("resnet9", ngf=4, widths={"model.99": 3})


def test_model_directory_round_trip_is_bit_identical(tmp_path):
    model = create_generator("unet128", ngf=4, widths={"model.model.1.model.1": 5}).eval()
    manifest = save_model(model, tmp_path / "m", provenance={"method": "test"})
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert manifest.weights_sha256 and manifest.provenance["method"] == "test"
    loaded = load_model(tmp_path / "m")
    x = torch.randn(1, 3, 128, 128)
    assert torch.equal(model(x), loaded.model(x))
    assert loaded.manifest.io.size_multiple == 128


def test_official_checkpoint_loads_with_weights_only(tmp_path):
    """A junyanz-style latest_net_G.pth (with legacy InstanceNorm stats) loads into resnet9."""
    source = create_generator("resnet9", ngf=4, dropout=0.5)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["model.2.running_mean"] = torch.zeros(4)  # old pix2pix checkpoints carried these
    torch.save(state, tmp_path / "latest_net_G.pth")
    loaded = load_model(tmp_path / "latest_net_G.pth", arch="resnet9:ngf=4,dropout=0.5")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.model.state_dict().values()))


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    torch.save(create_generator("resnet6", ngf=4).state_dict(), tmp_path / "g.pth")
    with pytest.raises(PocketganError, match=r"missing: model\.16\.conv_block\.1\.bias.*wrong shape"):
        load_model(tmp_path / "g.pth", arch="resnet9:ngf=4")
    with pytest.raises(PocketganError, match="needs --arch"):
        load_model(tmp_path / "g.pth")


def test_weights_are_checked_against_the_manifest_sha256(tmp_path):
    torch.manual_seed(0)
    save_model(create_generator("mobile-resnet", ngf=4), tmp_path / "m")
    save_model(create_generator("mobile-resnet", ngf=4), tmp_path / "other")  # same shapes, other weights
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())  # would load without a check
    with pytest.raises(ManifestError, match=r"m/model\.safetensors: sha256 \w+… does not match weights_sha256"):
        load_model(tmp_path / "m")


def test_corrupt_files_give_one_line_errors(tmp_path):
    save_model(create_generator("mobile-resnet", ngf=4), tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ManifestError, match="does not match weights_sha256"):
        load_model(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["weights_sha256"] = None  # an older directory without a checksum: the reader still says why
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(PocketganError, match="cannot read weights"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_model(tmp_path / "m")
    (tmp_path / "x.pth").write_bytes(b"garbage")
    with pytest.raises(PocketganError, match="cannot read weights"):
        load_model(tmp_path / "x.pth", arch="resnet9")
    with pytest.raises(PocketganError, match="no such file"):
        load_model(tmp_path / "missing")
