"""`pocketgan profile` and `profile_model`: fvcore MACs, params, per-layer breakdown, JSON, size checks."""

from __future__ import annotations

import json

import pytest
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import Profile
from pocketgan.models import create_generator, save_model
from pocketgan.models.profile import parse_macs, profile_model


def test_resnet9_matches_the_published_fvcore_count():
    report = profile_model(create_generator("resnet9", ngf=64), (1, 3, 256, 256))
    assert report.macs == 49_681_530_880  # 49.68 GMACs (METHODS.md, fvcore convention)
    assert report.params == 11_378_179
    assert report.counter == "fvcore"
    assert set(report.by_operator) == {"conv", "instance_norm"}  # pads, adds, ReLU, tanh count 0


def test_mobile_resnet_student_is_about_one_gmac():
    report = profile_model(create_generator("mobile-resnet", ngf=16))  # default input 256x256
    assert report.input_shape == (1, 3, 256, 256)
    assert report.macs == pytest.approx(1.01e9, rel=0.01)
    assert report.params == 137_347


def test_per_module_breakdown_adds_up_and_ranks_layers():
    model = create_generator("resnet9", ngf=4, n_blocks=2)
    report = profile_model(model, (1, 3, 32, 32))
    assert sum(report.by_module.values()) == report.macs
    assert all(name in dict(model.named_modules()) for name in report.by_module)
    top = report.top_modules(3)
    assert [macs for _, _, macs in top] == sorted(report.by_module.values(), reverse=True)[:3]
    assert {kind for _, kind, _ in top} <= {"Conv2d", "ConvTranspose2d"}


def test_macs_scale_with_input_area_and_conv_transpose_counts_input_positions():
    model = create_generator("resnet9", ngf=4, n_blocks=1)
    square = profile_model(model, (1, 3, 64, 64))
    half = profile_model(model, (1, 3, 64, 32))
    assert half.macs * 2 == square.macs
    up = model.model[11]  # first ConvTranspose2d: trunk (4ngf) -> 2ngf, 16x16 -> 32x32 at 64 px
    assert isinstance(up, torch.nn.ConvTranspose2d)
    assert square.by_module["model.11"] == 16 * 16 * up.in_channels * up.out_channels * 3 * 3


def test_to_profile_gives_the_manifest_record():
    report = profile_model(create_generator("mobile-resnet", ngf=4, n_blocks=1), (1, 3, 32, 32))
    profile = report.to_profile()
    assert isinstance(profile, Profile)
    assert (profile.macs, profile.params, profile.input_shape) == (report.macs, report.params, [1, 3, 32, 32])
    assert "ConvTranspose counted over input positions" in profile.convention


def test_profiling_keeps_batchnorm_statistics_and_the_training_mode():
    model = create_generator("unet128", ngf=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model, (1, 3, 128, 128))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_profile_cli_prints_tables_and_writes_json(cli, tmp_path):
    out = tmp_path / "reports" / "p.json"
    result = cli("profile", "resnet9:ngf=8", "--size", "64", "-o", out, "--top", "3")
    assert result.code == 0, result.err
    expected = profile_model(create_generator("resnet9", ngf=8), (1, 3, 64, 64))
    assert f"{expected.macs:,}" in result.out and f"{expected.params:,}" in result.out
    assert "top 3 layers by MACs" in result.out and "model.10.conv_block.1" in result.out
    assert "1 fused multiply-add = 1 MAC" in result.out
    assert "Unsupported operator" not in result.err + result.out  # fvcore warnings are silenced
    data = json.loads(out.read_text())
    assert {"macs", "params", "counter", "input_shape", "by_module"} <= set(data)
    assert (data["macs"], data["params"], data["input_shape"]) == (expected.macs, expected.params, [1, 3, 64, 64])
    assert data["by_module"] == expected.by_module
    assert [p.name for p in out.parent.iterdir()] == ["p.json"]  # no temporary file left behind


def test_profile_cli_takes_height_by_width(cli, tmp_path):
    out = tmp_path / "p.json"
    assert cli("profile", "mobile-resnet:ngf=4", "--size", "64x32", "--out", out).code == 0
    assert json.loads(out.read_text())["input_shape"] == [1, 3, 64, 32]
    former = tmp_path / "former.json"  # --json, the former spelling, still works
    assert cli("profile", "mobile-resnet:ngf=4", "--size", "64x32", "--json", former).code == 0
    assert json.loads(former.read_text()) == json.loads(out.read_text())


def test_profile_cli_reads_model_directories(cli, tmp_path):
    model = create_generator("unet128", ngf=4)
    save_model(model, tmp_path / "unet")
    result = cli("profile", tmp_path / "unet", "--size", "128")
    assert result.code == 0, result.err
    assert f"{profile_model(model, (1, 3, 128, 128)).macs:,}" in result.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet9:ngf=4", "--size", "30"], "positive multiples of 4; got 30x30"),
        (["unet256:ngf=4", "--size", "128"], "positive multiples of 256; got 128x128"),
        (["resnet9:ngf=4", "--size", "big"], "--size takes H or HxW (e.g. 256 or 256x320); got 'big'"),
        (["resnet9:ngf=4", "--size", "64 64"], "--size takes H or HxW"),
        (["resnet9:ngf=4", "--size", "0"], "--size needs positive sizes; got '0'"),
        (["/no/such/model"], "/no/such/model: no such file or directory"),
    ],
)
def test_profile_cli_rejects_bad_input_in_one_line(cli, args, message):
    result = cli("profile", *args)
    assert result.code == 2
    assert result.err.startswith("error: ") and message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_profile_cli_json_into_a_directory_fails_cleanly(cli, tmp_path):
    result = cli("profile", "resnet9:ngf=4", "--size", "32", "-o", tmp_path)
    assert result.code == 2 and "is a directory" in result.err
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_whose_keys_do_not_fit_the_arch_is_named(cli, tmp_path):
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(create_generator("resnet9", ngf=4).state_dict(), ckpt)
    assert cli("profile", ckpt, "--arch", "resnet9:ngf=4", "--size", "32").code == 0
    result = cli("profile", ckpt, "--arch", "mobile-resnet:ngf=4", "--size", "32")
    assert result.code == 2
    assert "does not fit mobile-resnet" in result.err
    assert "missing: model.10.conv_block.1.conv.0." in result.err
    assert "unexpected: model.10.conv_block.1." in result.err
    no_arch = cli("profile", ckpt)
    assert no_arch.code == 2 and "needs --arch" in no_arch.err


def test_parse_macs():
    assert parse_macs("1.2G") == 1_200_000_000
    assert parse_macs("800M") == 800_000_000 and parse_macs("800m") == 800_000_000
    assert parse_macs("5e8") == 500_000_000 and parse_macs("123456") == 123_456
    assert parse_macs("2.5 GMACs") == 2_500_000_000
    for bad in ("abc", "-5", "0", "1.2X"):
        with pytest.raises(PocketganError, match="bad MAC count"):
            parse_macs(bad)
