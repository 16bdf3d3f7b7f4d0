"""`prune --uniform P`: every prunable layer keeps ceil((1 - P) × width) channels, the highest-L1 ones.

Widths are read from the pruned modules themselves; the expected counts use exact fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from pocketgan.core.contract import ModelManifest
from pocketgan.core.errors import PocketganError
from pocketgan.models import Generator, create_generator, load_model, parse_reference, save_model
from pocketgan.models.prune import ChannelPruner
from pocketgan.models.prune_uniform import prune_uniform

TINY_STYLEGAN2 = "stylegan2:size=32,channel_base=512,channel_max=32,z_dim=32,w_dim=32,n_mlp=2"  # widths 32,32,32,16
PIX2PIX = ["resnet9:ngf=8,n_blocks=2", "mobile-resnet:ngf=8,n_blocks=2", "unet128:ngf=8"]
LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def tiny(ref: str, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    name, config = parse_reference(ref)
    return create_generator(name, **config).eval()


def kept(width: int, rate: float) -> int:
    """ceil((1 - rate) × width) in exact arithmetic."""
    return math.ceil((1 - Fraction(str(rate))) * width)


def width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def full_width_layers(model: Generator) -> set[str]:
    """What the papers keep: the image-channel outputs (the last conv; StyleGAN2's toRGBs) and the mapping network."""
    names = {n for n, m in model.named_modules() if isinstance(m, LAYERS)}
    if model.arch == "stylegan2":
        return {n for n in names if n.startswith("mapping.") or n.endswith(".torgb.conv")}
    return {[n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]}


def latent(model: Generator, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, model.z_dim, generator=torch.Generator().manual_seed(3))


def image(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1


@pytest.mark.parametrize("ref", [*PIX2PIX, TINY_STYLEGAN2])
@pytest.mark.parametrize("rate", [0.7, 0.9])
def test_every_prunable_layer_keeps_ceil_of_one_minus_p_times_its_width(ref, rate):
    teacher = tiny(ref)
    result = prune_uniform(teacher, rate)
    before = {n: width(m) for n, m in teacher.named_modules() if isinstance(m, LAYERS)}
    after = {n: width(m) for n, m in result.model.named_modules() if isinstance(m, LAYERS)}
    assert set(after) == set(before)
    keep = full_width_layers(teacher)
    expected = {n: w if n in keep else kept(w, rate) for n, w in before.items()}
    assert after == expected
    assert result.rate > 0.5 and result.ratio == rate


def test_stylegan2_widths_in_the_spec_and_the_constant_input_follow():
    teacher = tiny(TINY_STYLEGAN2)
    pruned = prune_uniform(teacher, 0.8).model
    assert pruned.spec().widths == {
        "mapping.fc0": 32,  # the mapping network keeps w_dim
        "synthesis.b4.const": kept(32, 0.8),  # 7
        "synthesis.b4.conv1.conv": 7, "synthesis.b8.conv0.conv": 7, "synthesis.b8.conv1.conv": 7,
        "synthesis.b16.conv0.conv": 7, "synthesis.b16.conv1.conv": 7,
        "synthesis.b32.conv0.conv": kept(16, 0.8), "synthesis.b32.conv1.conv": 4,
    }  # fmt: skip
    assert pruned.synthesis.b4.const.input.shape == (1, 7, 4, 4)
    assert pruned(latent(pruned)).shape == (2, 3, 32, 32)


def plant(weight: torch.Tensor, channels: list[int], dim: int = 0) -> None:
    """Make ``channels`` of ``weight`` (along ``dim``) by far the largest in L1."""
    with torch.no_grad():
        weight.index_fill_(dim, torch.tensor(channels), 50.0)  # |w| ~ 1 elsewhere (randn init)


def test_the_highest_l1_channels_are_kept_and_coupled_layers_lose_the_same_channels():
    teacher = tiny(TINY_STYLEGAN2)
    b4, b8, b16 = teacher.synthesis.b4, teacher.synthesis.b8, teacher.synthesis.b16
    c4, a8, c8 = [1, 5, 9, 12, 17, 20, 30], [0, 2, 3, 11, 19, 26, 31], [4, 6, 7, 8, 22, 23, 29]  # 7 = ceil(0.2 × 32)
    plant(b4.conv1.conv.weight, c4)  # conv outputs: dim 0 of a Conv2d, dim 1 of a ConvTranspose2d
    plant(b8.conv0.conv.weight, a8, dim=1)
    plant(b8.conv1.conv.weight, c8)
    t = {k: v.clone() for k, v in teacher.state_dict().items()}
    p = prune_uniform(teacher, 0.8, importance="l1").model.state_dict()
    # 4 px: conv1 outputs c4 feed toRGB and the 8 px upsampling conv (its style and its inputs)
    assert torch.equal(p["synthesis.b4.conv1.bias"], t["synthesis.b4.conv1.bias"][c4])
    assert torch.equal(p["synthesis.b4.torgb.affine.weight"], t["synthesis.b4.torgb.affine.weight"][c4])
    assert torch.equal(p["synthesis.b4.torgb.conv.weight"], t["synthesis.b4.torgb.conv.weight"][:, c4])
    assert torch.equal(p["synthesis.b8.conv0.affine.weight"], t["synthesis.b8.conv0.affine.weight"][c4])
    assert torch.equal(p["synthesis.b8.conv0.affine.bias"], t["synthesis.b8.conv0.affine.bias"][c4])
    # 8 px: the ConvTranspose keeps inputs c4 and outputs a8; conv1 keeps inputs a8 and outputs c8
    assert torch.equal(p["synthesis.b8.conv0.conv.weight"], t["synthesis.b8.conv0.conv.weight"][c4][:, a8])
    assert torch.equal(p["synthesis.b8.conv0.bias"], t["synthesis.b8.conv0.bias"][a8])
    assert torch.equal(p["synthesis.b8.conv1.affine.weight"], t["synthesis.b8.conv1.affine.weight"][a8])
    assert torch.equal(p["synthesis.b8.conv1.conv.weight"], t["synthesis.b8.conv1.conv.weight"][c8][:, a8])
    assert torch.equal(p["synthesis.b8.torgb.conv.weight"], t["synthesis.b8.torgb.conv.weight"][:, c8])
    assert torch.equal(p["synthesis.b16.conv0.affine.weight"], t["synthesis.b16.conv0.affine.weight"][c8])
    assert p["synthesis.b16.conv0.conv.weight"].shape == (7, 7, 3, 3)
    # the mapping network is untouched
    assert all(torch.equal(p[k], t[k]) for k in t if k.startswith("mapping."))


def test_pix2pix_keeps_its_highest_l1_stem_channels():
    teacher = tiny("resnet9:ngf=8,n_blocks=2")
    chosen = [0, 3, 5, 6]  # ceil(0.5 × 8) = 4
    plant(teacher.model[1].weight, chosen)
    t = teacher.model[1].weight.detach().clone()
    down = teacher.model[4].weight.detach().clone()
    pruned = prune_uniform(teacher, 0.5, input_size=(32, 32)).model
    assert torch.equal(pruned.model[1].weight, t[chosen])
    rows = [next(i for i in range(down.shape[0]) if torch.equal(row, down[i, chosen])) for row in pruned.model[4].weight]
    assert len(set(rows)) == len(rows) == 8  # every kept downsampling filter reads exactly the kept stem channels


def test_a_dependency_graph_without_the_demodulation_pruner_would_couple_every_layer():
    """Why models/stylegan2_pruners.py exists: with it, one channel group per conv width; without it, one in all."""
    teacher = tiny(TINY_STYLEGAN2)
    groups = ChannelPruner(teacher).groups()
    synthesis = [root for root, _ in groups if root.startswith("synthesis.")]
    assert len(synthesis) == 8  # b4 const/conv1 inputs, b4.conv1, b8.conv0, b8.conv1, b16.conv0/1, b32.conv0/1
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(teacher, example_inputs=torch.zeros(1, 32), verbose=False)
    conv = teacher.synthesis.b8.conv1.conv
    group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0])
    names = {id(m): n for n, m in teacher.named_modules()}
    coupled = {names.get(id(dep.target.module)) for dep, _ in group}
    assert {"synthesis.b4.conv1.conv", "synthesis.b16.conv1.conv"} <= coupled  # unrelated layers tied to b8.conv1


@pytest.mark.parametrize("ref", ["resnet9:ngf=8,n_blocks=2", TINY_STYLEGAN2])
def test_the_pruned_model_directory_rebuilds_exactly_from_its_spec(tmp_path, ref):
    teacher = tiny(ref)
    result = prune_uniform(teacher, 0.7, input_size=None if "stylegan2" in ref else (32, 32))
    save_model(result.model, tmp_path / "s", provenance=result.provenance(), profile=result.after.to_profile())
    loaded = load_model(tmp_path / "s").model
    x = latent(teacher) if "stylegan2" in ref else image()
    with torch.no_grad():
        assert torch.equal(loaded(x), result.model(x))
    manifest = ModelManifest.load(tmp_path / "s")
    assert manifest.provenance["method"] == "uniform-channel-pruning"
    assert (manifest.provenance["uniform"], manifest.provenance["keep"]) == (0.7, "ceil((1 - p) * width)")
    assert manifest.profile.macs == result.macs_after


# The NICKEL & DiME rates (MAC reduction of the whole generator, mapping + synthesis), ±0.3 points.
PAPER_RATES = [(0.7, 90.73), (0.8, 95.73), (0.9, 98.92), (0.95, 99.69)]


@pytest.fixture(scope="module")
def paper256():
    from pocketgan.models.profile import profile_model

    torch.manual_seed(0)
    with torch.no_grad():
        teacher = create_generator("stylegan2", size=256, config="paper256").eval()
        macs = {c: profile_model(teacher, (1, 512), c).macs for c in ("fvcore", "output")}
    return teacher, macs


@pytest.mark.parametrize(("rate", "reduction"), PAPER_RATES)
def test_paper256_reaches_the_papers_mac_reductions_in_both_conventions(paper256, rate, reduction):
    from pocketgan.models.profile import profile_model

    teacher, before = paper256
    with torch.no_grad():
        result = prune_uniform(teacher, rate)
        after = {"fvcore": result.macs_after, "output": profile_model(result.model, (1, 512), "output").macs}
    assert result.macs_before == before["fvcore"]
    for convention in ("fvcore", "output"):
        assert 100 * (1 - after[convention] / before[convention]) == pytest.approx(reduction, abs=0.3), convention
    assert result.model.synthesis.b256.conv1.conv.out_channels == kept(64, rate)
    assert result.model.synthesis.b4.conv1.conv.out_channels == kept(512, rate)
    assert result.model.mapping.fc7.out_features == 512


def test_cli_uniform_on_stylegan2_then_profile_both_conventions(cli, tmp_path):
    result = cli("prune", TINY_STYLEGAN2, "--uniform", "0.9", "-o", tmp_path / "s")
    assert result.code == 0, result.err
    assert "uniform p = 0.9" in result.out and "the mapping network keeps its width" in result.out
    model = load_model(tmp_path / "s").model
    assert model.synthesis.b32.conv1.conv.out_channels == kept(16, 0.9) == 2
    assert ModelManifest.load(tmp_path / "s").profile.input_shape == [1, 32]
    shown = cli("profile", tmp_path / "s", "--convention", "both")
    assert shown.code == 0, shown.err
    assert "MACs (fvcore)" in shown.out and "MACs (output positions)" in shown.out


def test_cli_uniform_on_pix2pix_with_an_ignored_layer(cli, tmp_path):
    result = cli("prune", "mobile-resnet:ngf=8,n_blocks=2", "--uniform", "0.8", "--size", "32",
                 "--ignore-layer", "model.1", "-o", tmp_path / "m")  # fmt: skip
    assert result.code == 0, result.err
    model = load_model(tmp_path / "m").model
    assert model.model[1].out_channels == 8  # kept on request
    assert model.model[4].out_channels == kept(16, 0.8) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uniform", "1.0"], "error: --uniform 1 would keep no channel"),
        (["--uniform", "0"], "error: --uniform 0 prunes nothing"),
        (["--uniform", "-0.5"], "error: --uniform -0.5 prunes nothing"),
        (["--uniform", "1.5"], "error: --uniform 1.5 would keep no channel"),
        (["--uniform", "nan"], "error: --uniform nan"),
        (["--uniform", "0.5", "--ratio", "0.5"], "error: --uniform is a goal of its own: give it without --ratio"),
        (["--uniform", "0.5", "--global"], "error: --uniform keeps ceil((1 - p) * width) channels in every layer; "
                                           "it takes no --global"),  # fmt: skip
        (["--uniform", "0.5", "--round-to", "4"], "error: --uniform keeps ceil((1 - p) * width) channels in every "
                                                   "layer; it takes no --round-to"),  # fmt: skip
    ],
)
def test_cli_bad_uniform_is_one_line_and_writes_nothing(cli, tmp_path, args, message):
    result = cli("prune", "resnet9:ngf=4,n_blocks=1", "--size", "32", *args, "-o", tmp_path / "out")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.err
    assert not (tmp_path / "out").exists()


def test_the_api_refuses_a_rate_outside_zero_one():
    with pytest.raises(PocketganError, match="would keep no channel"):
        prune_uniform(tiny("resnet9:ngf=4,n_blocks=1"), 1.0)
