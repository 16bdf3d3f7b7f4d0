"""`pocketgan prune` and `prune_model`: torch-pruning on real generators, MAC targets, exact rebuilds.

MACs are checked against hand arithmetic or ``tests/hand_macs.py`` (a forward-hook count of the
documented convention), never against pocketgan's own profiler.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pocketgan.core.contract import ModelManifest
from pocketgan.core.progress import ProgressEvent
from pocketgan.models import IMPORTANCE, Generator, create_generator, load_model, parse_reference, save_model
from pocketgan.models.prune import ChannelPruner, prune_model, rebuild_pruned

from hand_macs import hand_macs


RESNET = "resnet9:ngf=8,n_blocks=3"  # tiny but every part of the family: 7x7 stem, residual trunk, ConvTranspose
MOBILE = "mobile-resnet:ngf=8,n_blocks=3"  # depthwise-separable blocks
UNET = "unet128:ngf=8"  # skip concatenations, BatchNorm


def tiny(ref: str, seed: int = 0) -> Generator:
    """A generator with reproducible random weights."""
    torch.manual_seed(seed)
    name, config = parse_reference(ref)
    return create_generator(name, **config)


def run(model: nn.Module, size: int) -> torch.Tensor:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        return model.eval()(x)


def widths(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}


def hand_rate(out_dir, source: nn.Module, size: int) -> float:
    """The MAC reduction of a written model directory against ``source``, both counted by :func:`hand_macs`."""
    return 1 - hand_macs(load_model(out_dir).model, size) / hand_macs(source, size)


# resnet9:ngf=8,n_blocks=2 at 32x32, by hand: (convs: Cout*Cin*k*k*positions; norms: 4 per element)
RESNET_8_2_MACS = (
    1024 * 8 * 3 * 49 + 256 * 16 * 8 * 9 + 64 * 32 * 16 * 9  # stem 7x7, two stride-2 downsamplings
    + 4 * 64 * 32 * 32 * 9  # 2 residual blocks x 2 convs at 8x8
    + 64 * 32 * 16 * 9 + 256 * 16 * 8 * 9  # ConvTranspose over input positions 8x8, 16x16
    + 1024 * 3 * 8 * 49  # output 7x7
    + 4 * (8 * 1024 + 16 * 256 + 32 * 64 + 4 * 32 * 64 + 16 * 256 + 8 * 1024)  # InstanceNorms
)
# the same with every width halved except the output (ratio 0.5)
RESNET_8_2_HALVED_MACS = (
    1024 * 4 * 3 * 49 + 256 * 8 * 4 * 9 + 64 * 16 * 8 * 9
    + 4 * 64 * 16 * 16 * 9
    + 64 * 16 * 8 * 9 + 256 * 8 * 4 * 9
    + 1024 * 3 * 4 * 49
    + 4 * (4 * 1024 + 8 * 256 + 16 * 64 + 4 * 16 * 64 + 8 * 256 + 4 * 1024)
)
# resnet9:ngf=4,n_blocks=1 at 32x32 (the bad-input tests' model)
RESNET_4_1 = (
    1024 * 4 * 3 * 49 + 256 * 8 * 4 * 9 + 64 * 16 * 8 * 9 + 2 * 64 * 16 * 16 * 9
    + 64 * 16 * 8 * 9 + 256 * 8 * 4 * 9 + 1024 * 3 * 4 * 49
    + 4 * (4 * 1024 + 8 * 256 + 16 * 64 + 2 * 16 * 64 + 8 * 256 + 4 * 1024)
)


def test_ratio_prunes_every_layer_but_the_output():
    model = tiny("resnet9:ngf=8,n_blocks=2")
    original = {k: v.clone() for k, v in model.state_dict().items()}
    result = prune_model(model, ratio=0.5, input_size=(32, 32))
    pruned = widths(result.model)
    # stem, downsamplings, trunk (tied by the residual adds), block inner convs, both ConvTransposes: halved
    assert pruned["model.1"] == 4 and pruned["model.4"] == 8 and pruned["model.7"] == 16
    assert pruned["model.10.conv_block.1"] == 16 and pruned["model.11.conv_block.5"] == 16
    assert pruned["model.12"] == 8 and pruned["model.15"] == 4  # ConvTranspose2d upsamplings
    assert pruned["model.19"] == 3  # the output layer keeps its channels
    assert run(result.model, 32).shape == (2, 3, 32, 32)
    assert (result.macs_before, result.macs_after) == (RESNET_8_2_MACS, RESNET_8_2_HALVED_MACS)
    assert result.rate == pytest.approx(1 - 2_158_592 / 6_086_656)  # 64.5% fewer MACs
    assert result.params_after < result.params_before
    assert not result.model.training
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())  # the input is untouched
    assert widths(model)["model.1"] == 8


@pytest.mark.parametrize("ref, size", [(RESNET, 32), (MOBILE, 32), (UNET, 128)])
def test_pruned_model_rebuilds_from_its_spec_bit_identically(tmp_path, ref, size):
    model = tiny(ref)
    raw = ChannelPruner(model).prune(0.5)  # torch-pruning's in-place result
    rebuilt = rebuild_pruned(raw)  # fresh modules built from raw.spec(), pruned weights loaded
    assert widths(rebuilt) == widths(raw) and rebuilt.spec().widths is not None
    assert torch.equal(run(raw, size), run(rebuilt, size))
    save_model(rebuilt, tmp_path / "pruned")
    reloaded = load_model(tmp_path / "pruned").model
    assert torch.equal(run(rebuilt, size), run(reloaded, size))
    assert sum(w for w in widths(reloaded).values()) < sum(widths(model).values())


def test_depthwise_convs_stay_depthwise():
    pruned = ChannelPruner(tiny(MOBILE)).prune(0.5)
    depthwise = [m for m in pruned.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 6  # two separable convs per block
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert max(m.out_channels for m in depthwise) == 16  # 32 wide before pruning


def test_unet_skip_concatenations_are_pruned_on_both_sides():
    model = tiny(UNET)
    raw = ChannelPruner(model).prune(0.5)
    block = raw.model.model[1]  # level 1: x (8 ch, from the outer downconv) concatenated with its output
    down, up_outer = raw.model.model[0], raw.model.model[3]
    assert down.out_channels == 4  # the outer downconv (8) was pruned...
    assert up_outer.in_channels == down.out_channels + block.model[5].out_channels  # ...and the concat with it
    bn = [m for m in raw.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.running_mean.numel() == m.num_features for m in bn)


def test_inplace_activations_do_not_hide_norm_layers():
    model = tiny(RESNET)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True  # torch-pruning's graph misses the InstanceNorms behind these
    raw = ChannelPruner(model).prune(0.5)
    last_conv = None
    for name, module in raw.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            last_conv = module.out_channels
        if isinstance(module, nn.InstanceNorm2d):
            assert module.num_features == last_conv, name
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))  # the input model is untouched


@pytest.mark.parametrize("importance", ["l1", "l2", "taylor"])
def test_importance_prunes_dead_channels_first(importance):
    model = tiny("resnet9:ngf=8,n_blocks=1")
    dead = [1, 5]
    with torch.no_grad():  # stem channels 1 and 5: no weights in or out, so zero importance
        model.model[1].weight[dead] = 0
        model.model[1].bias[dead] = 0
        model.model[4].weight[:, dead] = 0
    stem = model.model[1].weight
    pruned = prune_model(model, ratio=0.25, importance=importance, input_size=(32, 32))
    kept = pruned.model.model[1].weight
    assert kept.shape[0] == 6
    kept_rows = [next(i for i in range(8) if torch.equal(stem[i], row)) for row in kept]
    assert sorted(kept_rows) == [0, 2, 3, 4, 6, 7]
    assert all(p.grad is None for p in pruned.model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_pruning_works_inside_no_grad():  # e.g. called from a distillation loop
    model = tiny("resnet9:ngf=4,n_blocks=1")
    with torch.no_grad():
        result = prune_model(model, ratio=0.5, importance="taylor", input_size=(32, 32))
    assert widths(result.model)["model.1"] == 2


def test_random_importance_is_seeded():
    model = tiny("resnet9:ngf=8,n_blocks=1")
    first, again, other = (
        prune_model(model, ratio=0.5, importance="random", seed=seed, input_size=(32, 32)).model for seed in (0, 0, 1)
    )
    assert torch.equal(first.model[1].weight, again.model[1].weight)
    assert not torch.equal(first.model[1].weight, other.model[1].weight)


def test_global_pruning_with_round_to_keeps_multiples_and_rebuilds(tmp_path):
    model = tiny(RESNET)
    result = prune_model(model, ratio=0.4, global_pruning=True, round_to=4, input_size=(32, 32))
    pruned = widths(result.model)
    output = "model.20"
    assert pruned.pop(output) == 3
    assert all(w % 4 == 0 for w in pruned.values()), pruned
    assert pruned != {k: v for k, v in widths(model).items() if k != output}
    save_model(result.model, tmp_path / "g")
    assert torch.equal(run(result.model, 32), run(load_model(tmp_path / "g").model, 32))


@pytest.mark.parametrize("ref, size, target", [(MOBILE, 64, 0.6), (UNET, 128, 0.8)])
def test_target_rate_lands_within_one_point(ref, size, target):
    model = tiny(ref)
    result = prune_model(model, target_rate=target, input_size=(size, size))
    assert target <= 1 - hand_macs(result.model, size) / hand_macs(model, size) <= target + 0.01
    assert result.target == {"rate": target}
    assert result.macs_after == hand_macs(result.model, size)


class IndexImportance:
    """A torch-pruning Importance ranking each group's channels by index: channel 0 goes first."""

    def __call__(self, group):
        return torch.arange(len(group[0].idxs), dtype=torch.float32)


def as_tp_importance():
    import torch_pruning as tp

    return type("ByIndex", (IndexImportance, tp.importance.Importance), {})()


def kept_stem_rows(model: Generator, pruned: Generator) -> list[int]:
    stem, kept = model.model[1].weight, pruned.model[1].weight
    return sorted(next(i for i in range(stem.shape[0]) if torch.equal(stem[i], row)) for row in kept)


def test_a_torch_pruning_importance_object_is_used_as_given():
    model = tiny("resnet9:ngf=8,n_blocks=1")
    result = prune_model(model, ratio=0.25, importance=as_tp_importance(), input_size=(32, 32))
    assert kept_stem_rows(model, result.model) == [2, 3, 4, 5, 6, 7]  # l1 would keep the largest rows instead
    assert result.importance == "ByIndex"
    assert result.provenance()["importance"] == "ByIndex"


def test_a_registered_importance_is_chosen_by_name(cli, tmp_path):
    IMPORTANCE.register("by-index", as_tp_importance())
    try:
        model = tiny("resnet9:ngf=8,n_blocks=1")
        by_name = prune_model(model, ratio=0.25, importance="by-index", input_size=(32, 32))
        assert kept_stem_rows(model, by_name.model) == [2, 3, 4, 5, 6, 7]
        save_model(model, tmp_path / "m")
        args = ("--ratio", "0.25", "--importance", "by-index", "--size", "32", "-o", tmp_path / "p")
        result = cli("prune", tmp_path / "m", *args)
        assert result.code == 0, result.err
        assert kept_stem_rows(model, load_model(tmp_path / "p").model) == [2, 3, 4, 5, 6, 7]
        assert ModelManifest.load(tmp_path / "p").provenance["importance"] == "by-index"
    finally:
        IMPORTANCE._entries.pop("by-index")


def test_target_search_reports_each_trial_through_the_callback():
    events: list[ProgressEvent] = []
    result = prune_model(tiny(MOBILE), target_rate=0.6, input_size=(64, 64), progress=events.append)
    assert {e.task for e in events} == {"searching the pruning ratio"}
    steps = [e for before, e in zip(events, events[1:]) if e.completed != before.completed]
    assert [e.completed for e in steps] == list(range(1, len(steps) + 1))  # one unit per trial
    assert len(steps) >= 5 and all(e.status.startswith("ratio ") for e in steps)  # a bisection, not one step
    assert all(e.total is not None and e.completed <= e.total for e in events[1:])
    assert events[-1].finished and sum(e.finished for e in events) == 1
    assert f"ratio {result.ratio:.4f}" in " ".join(e.status for e in steps)


def test_cli_prune_by_ratio_writes_a_model_dir(cli, tmp_path):
    out = tmp_path / "student"
    torch.manual_seed(0)  # the CLI draws the reference's random weights from the global generator
    result = cli("prune", MOBILE, "--ratio", "0.5", "--size", "32", "--out", out)
    assert result.code == 0, result.err
    assert "before" in result.out and "after" in result.out and "reduction" in result.out
    manifest = ModelManifest.load(out)
    prov = manifest.provenance
    assert prov["source"] == MOBILE and prov["method"] == "channel-pruning" and prov["importance"] == "l1"
    assert prov["ratio"] == 0.5 and "torch-pruning" in prov["pruner"]
    reloaded = load_model(out).model
    macs = hand_macs(reloaded, 32)
    assert manifest.profile.macs == prov["macs_after"] == macs
    assert prov["params_after"] == sum(p.numel() for p in reloaded.parameters())
    assert prov["macs_before"] == hand_macs(tiny(MOBILE), 32)
    assert f"{macs / 1e6:.2f} M" in result.out
    api = prune_model(tiny(MOBILE), ratio=0.5, input_size=(32, 32)).model
    assert torch.equal(run(api, 32), run(reloaded, 32))


def test_cli_target_rate(cli, tmp_path):
    save_model(tiny(RESNET), tmp_path / "src")
    result = cli("prune", tmp_path / "src", "--target-rate", "0.7", "--size", "64", "-o", tmp_path / "p")
    assert result.code == 0, result.err
    assert 0.70 <= hand_rate(tmp_path / "p", load_model(tmp_path / "src").model, 64) <= 0.71
    prov = ModelManifest.load(tmp_path / "p").provenance
    assert prov["target"] == {"rate": 0.7} and 0 < prov["ratio"] < 1


def test_cli_target_macs(cli, tmp_path):
    budget = 10_000_000
    result = cli("prune", RESNET, "--target-macs", "10M", "--size", "64", "--out", tmp_path / "p")
    assert result.code == 0, result.err
    before = hand_macs(tiny(RESNET), 64)
    assert budget - 0.01 * before <= hand_macs(load_model(tmp_path / "p").model, 64) <= budget
    prov = json.loads((tmp_path / "p" / "model.json").read_text())["provenance"]
    assert prov["target"] == {"macs": budget}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ratio", "1.5"], "--ratio must be between 0 and 1 (exclusive); got 1.5"),
        (["--ratio", "0"], "--ratio must be between 0 and 1"),
        (["--target-rate", "1.2"], "--target-rate must be between 0 and 1"),
        (["--ratio", "0.5", "--target-rate", "0.5"], "exactly one of --ratio, --target-rate or --target-macs"),
        ([], "exactly one of"),
        (["--ratio", "0.5", "--importance", "fisher"], "unknown importance 'fisher'; choose from l1, l2, random,"),
        (["--ratio", "0.5", "--importance", "tayler"], "unknown importance 'tayler' (did you mean taylor?)"),
        (["--ratio", "0.5", "--ignore-layer", "model.99"], "--ignore-layer model.99: resnet9 has no module named"),
        (["--ratio", "0.5", "--size", "64 64"], "--size takes H or HxW"),
        (["--target-macs", "lots"], "bad MAC count 'lots'"),
        (["--target-macs", "1G"], "must be positive and below the model's"),
        (["--ratio", "0.5", "--round-to", "0"], "--round-to must be a positive integer"),
        (["--ratio", "0.5", "--size", "30"], "positive multiples of 4; got 30x30"),
        (["--ratio", "0.95"], "would leave no channels in model.1"),
        (["--target-rate", "0.99"], "without removing whole layers"),
        (["--target-rate", "0.4", "--global"], f"cannot land within 1 pp of 40.0% fewer MACs ({0.6 * RESNET_4_1:,.0f})"),
    ],
)
def test_cli_prune_rejects_bad_input_in_one_line(cli, tmp_path, args, message):
    out = tmp_path / "out"
    torch.manual_seed(0)  # global ranking of these random weights moves in 9-point steps around 40%
    result = cli("prune", "resnet9:ngf=4,n_blocks=1", "--out", out, "--size", "32", *args)
    assert result.code == 2, result.out
    assert result.err.startswith("error: ") and message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert not out.exists()


def test_cli_prune_missing_model_and_bad_out(cli, tmp_path):
    missing = cli("prune", tmp_path / "nope", "--ratio", "0.5", "--out", tmp_path / "o")
    assert missing.code == 2 and "nope: no such file or directory" in missing.err
    (tmp_path / "file").write_text("x")
    bad_out = cli("prune", "resnet9:ngf=4", "--ratio", "0.5", "--out", tmp_path / "file")
    assert bad_out.code == 2 and "exists and is not a directory" in bad_out.err


def test_cli_prune_checkpoint_with_wrong_arch_names_the_keys(cli, tmp_path):
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(tiny("resnet9:ngf=4,n_blocks=1").state_dict(), ckpt)
    result = cli("prune", ckpt, "--arch", "unet128:ngf=4", "--ratio", "0.5", "--size", "128", "--out", tmp_path / "o")
    assert result.code == 2
    assert "does not fit unet128" in result.err and "missing: model.model." in result.err
    assert "unexpected: model.1." in result.err
    ok = cli(
        "prune", ckpt, "--arch", "resnet9:ngf=4,n_blocks=1", "--ratio", "0.5", "--size", "32", "--out", tmp_path / "o"
    )
    assert ok.code == 0, ok.err
    assert ModelManifest.load(tmp_path / "o").provenance["source"] == str(ckpt)


def test_cli_ignore_layer_keeps_that_layer_and_prunes_the_rest(cli, tmp_path):
    save_model(tiny("resnet9:ngf=8,n_blocks=1"), tmp_path / "src")
    args = ("--ratio", "0.5", "--size", "32", "-o", tmp_path / "p")
    result = cli("prune", tmp_path / "src", *args, "--ignore-layer", "model.1", "--ignore-layer", "model.4")
    assert result.code == 0, result.err
    pruned = widths(load_model(tmp_path / "p").model)
    assert (pruned["model.1"], pruned["model.4"]) == (8, 16)  # kept
    assert (pruned["model.7"], pruned["model.10.conv_block.1"], pruned["model.11"]) == (16, 16, 8)  # halved
    assert ModelManifest.load(tmp_path / "p").provenance["ignored_layers"] == ["model.1", "model.4"]
    assert "kept at full width: model.1 (--ignore-layer), model.4 (--ignore-layer)" in result.out
