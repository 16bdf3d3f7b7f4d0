"""Bring your own generator: user models in styles pocketgan does not use, through every stage.

(a) :class:`AnimeStyle`: GroupNorm, PixelShuffle upsampling and a long input-to-output skip.
(b) :class:`CutStyle`: a CUT-style ResNet with antialiased down/upsampling: a blur kernel kept in
    a buffer and applied with ``F.conv2d(groups=C)``, which torch-pruning cannot shrink.

Each goes through profile, prune (ratio and MAC target), save, bit-identical reload, ONNX export
with parity and ``pocketgan-bench``, from Python and from the stock CLI (``test_byo:build_anime``).
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from pocketgan.core.contract import GeneratorSpec, ModelManifest
from pocketgan.core.errors import PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import (
    LAYER_PRUNERS,
    IOSpec,
    LoadedModel,
    load_model,
    profile_model,
    prune_model,
    register_pruner,
    save_model,
    wrap,
)
from pocketgan.models.prune_check import PrunedModelError

from conftest import FAST
from hand_macs import hand_macs


# ---------------------------------------------------------------------------------------- (a)


class AnimeStyle(nn.Module):
    """GroupNorm everywhere, a PixelShuffle ×2 upsampling and ``tanh(head(h) + x)``."""

    def __init__(self, ch: int = 8, groups: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, ch, 3, padding=1), nn.GroupNorm(groups, ch), nn.LeakyReLU(0.2))
        self.down = nn.Sequential(
            nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.GroupNorm(groups, 2 * ch), nn.LeakyReLU(0.2)
        )
        self.body = nn.Sequential(
            nn.Conv2d(2 * ch, 2 * ch, 3, padding=1), nn.GroupNorm(groups, 2 * ch), nn.LeakyReLU(0.2)
        )
        self.up = nn.Sequential(
            nn.Conv2d(2 * ch, 4 * ch, 3, padding=1), nn.PixelShuffle(2), nn.GroupNorm(groups, ch), nn.LeakyReLU(0.2)
        )
        self.head = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.up(self.body(self.down(self.stem(x))))) + x)


def build_anime(ch: int = 8) -> nn.Module:
    """A factory that declares its I/O by wrapping (the CLI reference ``test_byo:build_anime``)."""
    return wrap(AnimeStyle(ch), io=IOSpec(size_multiple=2))


def build_anime_plain(ch: int = 8) -> nn.Module:
    """A factory that returns a plain module (what a ``pocketgan.generators`` entry point may give)."""
    return AnimeStyle(ch)


# ---------------------------------------------------------------------------------------- (b)


def blur_kernel(size: int) -> torch.Tensor:
    row = torch.tensor({3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[size])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class Downsample(nn.Module):
    """CUT's antialiased stride-2 blur: a per-channel kernel in a buffer, ``F.conv2d(groups=C)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("filt", blur_kernel(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """CUT's antialiased ×2 upsampling: ``F.conv_transpose2d`` with a buffered 4×4 kernel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (blur_kernel(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])
        return out[:, :, 1:-1, 1:-1]


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class CutStyle(nn.Module):
    """c7s1-ngf, conv + blur-downsample to 2ngf, residual blocks, blur-upsample + conv, c7s1-3, tanh."""

    def __init__(self, ngf: int = 4, n_blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True))
        self.down = nn.Sequential(
            nn.Conv2d(ngf, 2 * ngf, 3, padding=1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(True), Downsample(2 * ngf)
        )
        self.blocks = nn.Sequential(*[ResBlock(2 * ngf) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            Upsample(2 * ngf), nn.Conv2d(2 * ngf, ngf, 3, padding=1), nn.InstanceNorm2d(ngf), nn.ReLU(True)
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))


def build_cut(ngf: int = 4, n_blocks: int = 2) -> nn.Module:
    """A plain factory: pocketgan gives it the default IOSpec (3 → 3 channels, multiples of 4)."""
    return CutStyle(ngf, n_blocks)


class BlurPruner:
    """torch-pruning pruner for Downsample/Upsample: slice the kernel buffer with the channels."""

    def prune_out_channels(self, layer: nn.Module, idxs: list[int]) -> nn.Module:
        drop = set(int(i) for i in idxs)
        layer.filt = layer.filt[[i for i in range(layer.filt.shape[0]) if i not in drop]]
        return layer

    prune_in_channels = prune_out_channels  # a blur keeps its channel count: inputs and outputs are coupled

    def get_out_channels(self, layer: nn.Module) -> int:
        return int(layer.filt.shape[0])

    get_in_channels = get_out_channels


def blur_pruner():
    """:class:`BlurPruner` as torch-pruning's ``BasePruningFunc`` (imported lazily, like pocketgan does)."""
    import torch_pruning as tp

    return type("BlurPruningFunc", (BlurPruner, tp.pruner.function.BasePruningFunc), {})()


GLUE = '''
"""The user's glue, next to CUT's code they do not patch: a factory and a pruner for its blur layers."""
from pocketgan.models import register_pruner
import test_byo

register_pruner(test_byo.Downsample, test_byo.blur_pruner())
register_pruner(test_byo.Upsample, test_byo.blur_pruner())


def build(ngf=4, n_blocks=2):
    return test_byo.CutStyle(ngf, n_blocks)
'''


# ---------------------------------------------------------------------------------------- helpers


def seeded(factory, **config) -> nn.Module:
    torch.manual_seed(0)
    return factory(**config)


def run(model: nn.Module, size: int = 32) -> torch.Tensor:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        return model.eval()(x)


def widths(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.fixture
def blur_pruners():
    """Downsample/Upsample pruners registered for one test (the registry is global)."""
    register_pruner(Downsample, blur_pruner())
    register_pruner(Upsample, blur_pruner())
    yield
    for cls in (Downsample, Upsample):
        LAYER_PRUNERS._entries.pop(f"{cls.__module__}.{cls.__qualname__}")


@pytest.fixture
def glue(tmp_path, monkeypatch):
    """``cut_glue.py`` in the current directory, imported by reference like uvicorn does (cwd on sys.path)."""
    (tmp_path / "cut_glue.py").write_text(GLUE)
    monkeypatch.chdir(tmp_path)
    yield "cut_glue:build"
    sys.modules.pop("cut_glue", None)
    for cls in (Downsample, Upsample):
        LAYER_PRUNERS._entries.pop(f"{cls.__module__}.{cls.__qualname__}", None)


def export_and_bench(bench, model_dir, out_dir, size: int = 32) -> dict:
    """ONNX export of ``model_dir`` with its parity check, then ``pocketgan-bench`` on the artifact."""
    sidecar = export_model(load_model(model_dir), "onnx", out_dir, ExportOptions(size=(size, size)))
    assert sidecar.parity is not None and sidecar.parity.passed and sidecar.parity.max_abs < 1e-4
    result = bench("pocketgan-bench", out_dir / sidecar.file, *FAST)
    assert result.code == 0, result.err
    assert result.results and result.results[0]["input_shape"] == [1, 3, size, size]
    return sidecar.source


# ---------------------------------------------------------------------------------------- profile

ANIME_8_MACS = (  # AnimeStyle(ch=8) at 32x32, by hand: convs Cout*Cin*9*positions, GroupNorm (affine) 5/element
    1024 * 8 * 3 * 9 + 5 * 8 * 1024  # stem
    + 256 * 16 * 8 * 9 + 5 * 16 * 256  # stride-2 down
    + 256 * 16 * 16 * 9 + 5 * 16 * 256  # body
    + 256 * 32 * 16 * 9 + 5 * 8 * 1024  # conv to 4ch at 16x16, PixelShuffle (0), GroupNorm at 32x32
    + 1024 * 3 * 8 * 9  # head (the skip add and tanh count 0)
)
ANIME_8_HALVED_MACS = (  # the same after ratio 0.5: every width halved except up.0 (it feeds the PixelShuffle)
    1024 * 4 * 3 * 9 + 5 * 4 * 1024
    + 256 * 8 * 4 * 9 + 5 * 8 * 256
    + 256 * 8 * 8 * 9 + 5 * 8 * 256
    + 256 * 32 * 8 * 9 + 5 * 8 * 1024
    + 1024 * 3 * 8 * 9
)
# CutStyle(ngf=4)'s functional blurs: Downsample at its 16x16 output; Upsample over its 18x18 padded input
BLUR_MACS = 8 * 3 * 3 * 16 * 16 + 8 * 4 * 4 * 18 * 18


def test_profile_counts_user_layers_and_functional_blurs():
    assert profile_model(build_anime(8), (1, 3, 32, 32)).macs == ANIME_8_MACS == 2_629_632
    cut = build_cut()
    report = profile_model(cut, (1, 3, 32, 32))  # a plain module profiles as it is
    assert report.macs == hand_macs(cut, 32) + BLUR_MACS
    assert report.by_module["down.3"] == 8 * 3 * 3 * 16 * 16  # the F.conv2d inside Downsample, not its pad
    assert report.by_module["up.0"] == 8 * 4 * 4 * 18 * 18
    assert report.module_types["down.3"] == "Downsample"
    assert sum(report.by_module.values()) == report.macs


# ---------------------------------------------------------------------------------------- (a) through the API


def test_anime_ratio_keeps_the_pixel_shuffle_input_and_the_group_norms():
    model = seeded(build_anime, ch=8)
    result = prune_model(model, ratio=0.5, input_size=(32, 32))
    pruned = widths(result.model)
    assert pruned == {"stem.0": 4, "down.0": 8, "body.0": 8, "up.0": 32, "head": 3}
    assert result.kept_layers == {"up.0": "a pixel shuffle regroups its channels"}
    norms = [(m.num_groups, m.num_channels) for m in result.model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms == [(2, 4), (2, 8), (2, 8), (2, 8)]
    assert (result.macs_before, result.macs_after) == (ANIME_8_MACS, ANIME_8_HALVED_MACS)
    assert run(result.model).shape == (2, 3, 32, 32)
    assert widths(model)["stem.0"] == 8  # the input is untouched


def test_anime_target_rate_lands_within_one_point():
    model = seeded(build_anime, ch=16)
    result = prune_model(model, target_rate=0.4, input_size=(32, 32))
    assert 0.40 <= 1 - hand_macs(result.model, 32) / hand_macs(model, 32) <= 0.41
    assert widths(result.model)["up.0"] == 64


def test_anime_save_reload_export_bench(tmp_path, bench):
    result = prune_model(seeded(build_anime, ch=8), ratio=0.5, input_size=(32, 32))
    manifest = save_model(result.model, tmp_path / "pruned", provenance=result.provenance())
    assert manifest.spec.arch == "test_byo:AnimeStyle" and manifest.spec.widths["stem.0"] == 4
    reloaded = load_model(tmp_path / "pruned").model
    assert torch.equal(run(result.model), run(reloaded))
    assert reloaded.io.size_multiple == 2  # the I/O the model was wrapped with, from model.json
    source = export_and_bench(bench, tmp_path / "pruned", tmp_path / "onnx")
    assert source["spec"]["arch"] == "test_byo:AnimeStyle"


def test_the_weights_load_into_the_users_own_class(tmp_path):
    model = seeded(build_anime, ch=8)
    save_model(model, tmp_path / "m")
    mine = AnimeStyle(8)  # not wrapped: the module names and the state dict are the user's own
    mine.load_state_dict(load_file(str(tmp_path / "m" / "model.safetensors")), strict=True)
    assert torch.equal(run(mine), run(model))


def test_a_recipe_that_does_not_rebuild_the_model_is_refused_before_writing(tmp_path):
    model = seeded(build_anime, ch=16)  # wrapped without factory=: recorded as AnimeStyle(), which is ch=8
    with pytest.raises(PocketganError, match=r"test_byo:AnimeStyle\(\) does not rebuild the model .*wrong shape"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    wrap(model, factory=build_anime, config={"ch": 16})
    assert save_model(model, tmp_path / "m").spec.arch == "test_byo:build_anime"
    assert torch.equal(run(load_model(tmp_path / "m").model), run(model))


# ---------------------------------------------------------------------------------------- (a) through the CLI


def test_cli_anime_from_factory_reference_to_benchmark(cli, bench, tmp_path):
    ref = "test_byo:build_anime:ch=16"
    report = cli("profile", ref, "--size", "32", "-o", tmp_path / "p.json")
    assert report.code == 0, report.err
    assert json.loads((tmp_path / "p.json").read_text())["macs"] == hand_macs(build_anime(16), 32)
    pruned = cli("prune", ref, "--target-rate", "0.4", "--size", "32", "-o", tmp_path / "pruned")
    assert pruned.code == 0, pruned.err
    assert "kept at full width: up.0 (a pixel shuffle regroups its channels)" in pruned.out
    manifest = ModelManifest.load(tmp_path / "pruned")
    assert (manifest.spec.arch, manifest.spec.config) == ("test_byo:build_anime", {"ch": 16})
    reopened = cli("profile", tmp_path / "pruned", "--size", "32")  # the stock CLI rebuilds it from model.json
    assert reopened.code == 0, reopened.err
    assert f"{manifest.profile.macs:,}" in reopened.out
    exported = cli("export", tmp_path / "pruned", "-o", tmp_path / "onnx", "--size", "32")
    assert exported.code == 0, exported.err
    result = bench("pocketgan-bench", tmp_path / "onnx" / "model.onnx", *FAST)
    assert result.code == 0 and result.results[0]["input_shape"] == [1, 3, 32, 32]


def test_cli_checkpoint_with_a_factory_arch(cli, tmp_path):
    torch.save(AnimeStyle(8).state_dict(), tmp_path / "latest_net_G.pth")
    ok = cli("profile", tmp_path / "latest_net_G.pth", "--arch", "test_byo:build_anime:ch=8", "--size", "32")
    assert ok.code == 0, ok.err
    assert f"{ANIME_8_MACS:,}" in ok.out
    wrong = cli("profile", tmp_path / "latest_net_G.pth", "--arch", "test_byo:build_anime:ch=4", "--size", "32")
    assert wrong.code == 2 and "does not fit test_byo:build_anime" in wrong.err and "wrong shape" in wrong.err


@pytest.mark.parametrize(
    "ref, message",
    [
        ("no_such_module_xyz:build", "no module named no_such_module_xyz (looked in the current directory"),
        ("test_byo:build_anim", "test_byo has no attribute 'build_anim' (did you mean build_anime?)"),
        ("test_byo:blur_kernel:size=5", "building test_byo:blur_kernel(size=5) failed: KeyError"),
        ("test_byo:GLUE", "test_byo:GLUE: str is not callable"),
    ],
)
def test_cli_bad_factory_references_fail_in_one_line(cli, ref, message):
    result = cli("profile", ref, "--size", "32")
    assert result.code == 2, result.out
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_an_entry_point_generator_goes_through_the_cli(cli, tmp_path, monkeypatch):
    from pocketgan.models.registry import GENERATORS

    dist = tmp_path / "plugins" / "byo_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: byo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pocketgan.generators]\nbyo-anime = test_byo:build_anime_plain\n")
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setattr(GENERATORS, "_plugins", None)  # re-read the installed entry points
    monkeypatch.setattr(GENERATORS, "_entries", dict(GENERATORS._entries))
    result = cli("prune", "byo-anime:ch=8", "--ratio", "0.5", "--size", "32", "-o", tmp_path / "p")
    assert result.code == 0, result.err
    manifest = ModelManifest.load(tmp_path / "p")
    assert (manifest.spec.arch, manifest.spec.config) == ("byo-anime", {"ch": 8})
    assert widths(load_model(tmp_path / "p").model) == {"stem.0": 4, "down.0": 8, "body.0": 8, "up.0": 32, "head": 3}


# ---------------------------------------------------------------------------------------- (b) the blur buffer


BLUR_FAULT = (
    "the pruned model no longer runs: module down.3 (Downsample): buffer 'filt' (8×1×3×3) is still sized for 8 "
    "channels but the input now has 4: torch-pruning does not prune buffers; keep its input unpruned with "
    "--ignore-layer down.0, or register a custom pruner for Downsample (pocketgan.models.register_pruner)"
)


@pytest.mark.parametrize("goal", [{"ratio": 0.5}, {"target_rate": 0.4}])
def test_cut_unpruned_buffer_is_named_in_one_line(goal):
    with pytest.raises(PrunedModelError) as caught:
        prune_model(wrap(seeded(build_cut)), input_size=(32, 32), **goal)
    assert str(caught.value) == BLUR_FAULT


def test_cli_cut_fails_then_prunes_with_ignore_layer(cli, tmp_path, bench):
    out = tmp_path / "pruned"
    torch.manual_seed(0)
    failed = cli("prune", "test_byo:build_cut", "--ratio", "0.5", "--size", "32", "-o", out)
    assert failed.code == 2 and failed.err.strip() == f"error: {BLUR_FAULT}"
    assert not out.exists()
    torch.manual_seed(0)
    ok = cli("prune", "test_byo:build_cut", "--ratio", "0.5", "--size", "32", "-o", out, "--ignore-layer", "down.0")
    assert ok.code == 0, ok.err
    pruned = load_model(out).model
    assert widths(pruned) == {  # the trunk is coupled with down.0 (residual adds), so it keeps 8 channels too
        "stem.1": 2, "down.0": 8, "blocks.0.block.1": 4, "blocks.0.block.5": 8,
        "blocks.1.block.1": 4, "blocks.1.block.5": 8, "up.1": 2, "head.1": 3,
    }  # fmt: skip
    assert pruned.down[3].filt.shape == (8, 1, 3, 3) and pruned.up[0].filt.shape == (8, 1, 4, 4)
    assert ModelManifest.load(out).provenance["ignored_layers"] == ["down.0"]
    api = prune_model(wrap(seeded(build_cut)), ratio=0.5, input_size=(32, 32), ignored_layers=["down.0"])
    assert torch.equal(run(pruned), run(api.model))  # the reload equals the Python API's result, bit for bit
    export_and_bench(bench, out, tmp_path / "onnx")


def test_cut_with_registered_blur_pruners_prunes_everything(tmp_path, blur_pruners):
    model = wrap(seeded(build_cut))
    result = prune_model(model, ratio=0.5, input_size=(32, 32))
    assert set(widths(result.model).values()) == {2, 4, 3}  # ngf 4 -> 2, 2ngf 8 -> 4, output 3
    assert result.model.down[3].filt.shape == (4, 1, 3, 3) and result.model.up[0].filt.shape == (4, 1, 4, 4)
    assert result.layer_pruners == ["test_byo.Downsample", "test_byo.Upsample"]
    save_model(result.model, tmp_path / "p")
    assert torch.equal(run(result.model), run(load_model(tmp_path / "p").model))


def test_cut_with_unregistered_pruners_prunes_but_refuses_to_save(tmp_path):
    model = wrap(seeded(build_cut))
    pruners = {Downsample: blur_pruner(), Upsample: blur_pruner()}  # torch-pruning's customized_pruners
    result = prune_model(model, ratio=0.5, input_size=(32, 32), pruners=pruners)
    assert run(result.model).shape == (2, 3, 32, 32) and result.model.down[3].filt.shape[0] == 4
    with pytest.raises(PocketganError, match=r"wrong shape: down\.3\.filt .*register_pruner"):
        save_model(result.model, tmp_path / "p")  # a later load_model could not rebuild it
    assert not (tmp_path / "p").exists()


def test_cli_cut_with_the_users_glue_module(cli, tmp_path, bench, glue):
    result = cli("prune", glue, "--target-rate", "0.6", "--size", "32", "-o", tmp_path / "p")
    assert result.code == 0, result.err
    assert "custom pruners: test_byo.Downsample, test_byo.Upsample" in result.out
    model = load_model(tmp_path / "p").model
    before = wrap(seeded(build_cut))
    macs = lambda m, blur: hand_macs(m, 32) + blur  # noqa: E731
    pruned_blur = BLUR_MACS * model.down[3].filt.shape[0] // 8  # the blurs shrink with their channels
    assert 0.60 <= 1 - macs(model, pruned_blur) / macs(before, BLUR_MACS) <= 0.61
    assert ModelManifest.load(tmp_path / "p").spec.arch == "cut_glue:build"
    export_and_bench(bench, tmp_path / "p", tmp_path / "onnx")


# ---------------------------------------------------------------------------------------- plain modules


def test_plain_modules_get_one_line_saying_to_wrap_them(tmp_path):
    plain = AnimeStyle(8)
    hint = r"AnimeStyle is a plain torch module: wrap it first: pocketgan\.models\.wrap\(module, io=IOSpec\(\.\.\.\)\)"
    for call in (
        lambda: save_model(plain, tmp_path / "m"),
        lambda: export_model(plain, "onnx", tmp_path / "onnx"),
        lambda: export_model(LoadedModel(plain, ModelManifest(GeneratorSpec("mine"))), "onnx", tmp_path / "onnx"),
        lambda: prune_model(plain, ratio=0.5, input_size=(32, 32)),
    ):
        with pytest.raises(PocketganError, match=hint):
            call()
    assert list(tmp_path.iterdir()) == []  # no empty output directory left behind


def test_wrap_refuses_what_it_cannot_wrap():
    with pytest.raises(PocketganError, match="wrap\\(\\) takes a torch.nn.Module; got str"):
        wrap("resnet9")  # type: ignore[arg-type]
    clash = AnimeStyle(8)
    clash.io = "mine"
    with pytest.raises(PocketganError, match="cannot wrap AnimeStyle: it already has io"):
        wrap(clash)
    model = build_anime(8)
    assert wrap(model, io=IOSpec(size_multiple=8)) is model and model.io.size_multiple == 8  # re-wrapping updates
    assert type(model).wrapped_class is AnimeStyle and isinstance(model, AnimeStyle)
    buffer = io.BytesIO()
    torch.save(model, buffer)  # a whole-module pickle still works (through the user's class)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    assert again.io.size_multiple == 8 and again.spec() == model.spec() and torch.equal(run(again), run(model))


# ---------------------------------------------------------------------------------------- the README


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block in the README's "Bring your own generator" section."""
    text = README.read_text()
    section = text.split("## Bring your own generator", 1)[1].split("\n## ", 1)[0]
    return [(lang, textwrap.dedent(code)) for lang, code in re.findall(r"```(\w+)\n(.*?)^\s*```", section, re.S | re.M)]


def test_the_readme_example_runs_as_written(cli, bench, tmp_path, monkeypatch):
    blocks = readme_blocks()
    module = next(code for lang, code in blocks if lang == "python" and code.startswith("# mynets.py"))
    commands = next(code for lang, code in blocks if lang == "console")
    script = next(code for lang, code in blocks if lang == "python" and "create_generator(" in code)
    (tmp_path / "mynets.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    try:
        for line in (ln[2:] for ln in commands.splitlines() if ln.startswith("$ ")):
            program, *args = shlex.split(line)
            result = bench(program, *args, *FAST, json_out=False) if program == "pocketgan-bench" else cli(*args)
            assert result.code == 0, f"{line}: {result.err}"
        assert ModelManifest.load(tmp_path / "pruned").spec.config == {"channels": 32}
        fresh = subprocess.run(  # a new process reopens the directory from model.json (mynets imported from cwd)
            [sys.executable, "-m", "pocketgan", "profile", "pruned", "--size", "64"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert fresh.returncode == 0, fresh.stderr
        assert f"{ModelManifest.load(tmp_path / 'pruned').profile.macs:,}" in fresh.stdout
        exec(compile(script, "README.md", "exec"), {"__name__": "readme"})
        assert (tmp_path / "onnx" / "model.onnx").exists()
    finally:
        sys.modules.pop("mynets", None)


def test_the_readme_blur_pruner_works_on_the_cut_style_model(tmp_path):
    snippet = next(code for lang, code in readme_blocks() if lang == "python" and "class BlurPruner" in code)
    snippet = snippet.replace("from cut.models import", "from test_byo import")
    try:
        exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})
        result = prune_model(wrap(seeded(build_cut)), ratio=0.5, input_size=(32, 32))
        assert result.model.down[3].filt.shape == (4, 1, 3, 3)
        save_model(result.model, tmp_path / "p")
        assert torch.equal(run(result.model), run(load_model(tmp_path / "p").model))
    finally:
        for cls in (Downsample, Upsample):
            LAYER_PRUNERS._entries.pop(f"{cls.__module__}.{cls.__qualname__}", None)
