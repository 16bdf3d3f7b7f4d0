"""MAC counting conventions: fvcore's (ConvTranspose over input positions) and the papers' (over output positions).

Every expected number is worked out by hand in the test from the layer shapes.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pocketgan.core.contract import ModelManifest
from pocketgan.core.errors import PocketganError
from pocketgan.models import create_generator
from pocketgan.models.profile import profile_model


class ConvThenUp(nn.Module):
    """3→4 3×3 conv at 8×8, then a 4→2 4×4 stride-2 ConvTranspose to 16×16 (no norms: only convs count)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.conv(x)))


CONV = 3 * 4 * 3 * 3 * 8 * 8  # weights × output positions = 6,912
UP_OVER_INPUT = 4 * 2 * 4 * 4 * 8 * 8  # weights × input positions = 8,192
UP_OVER_OUTPUT = 4 * 2 * 4 * 4 * 16 * 16  # weights × output positions = 32,768


def test_fvcore_counts_the_conv_transpose_over_its_input_positions():
    report = profile_model(ConvThenUp(), (1, 3, 8, 8), "fvcore")
    assert report.macs == CONV + UP_OVER_INPUT == 15_104
    assert report.by_module == {"conv": 6_912, "up": 8_192}
    assert report.counter == "fvcore"
    assert "ConvTranspose counted over input positions" in report.convention


def test_output_convention_counts_it_over_its_output_positions_and_the_rest_alike():
    report = profile_model(ConvThenUp(), (1, 3, 8, 8), "output")
    assert report.macs == CONV + UP_OVER_OUTPUT == 39_680
    assert report.by_module == {"conv": 6_912, "up": 32_768}  # the ordinary conv counts the same in both
    assert report.counter == "fvcore:output-positions"
    assert "over output positions" in report.convention


def test_the_default_is_fvcore_and_batch_scales_both():
    assert profile_model(ConvThenUp(), (1, 3, 8, 8)).macs == 15_104
    assert profile_model(ConvThenUp(), (2, 3, 8, 8), "output").macs == 2 * 39_680


def test_norm_layers_count_the_same_in_both_conventions():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.InstanceNorm2d(2))  # 3*2 weights × 16 positions; norm 4/element
    expected = 3 * 2 * 4 * 4 + 2 * 4 * 4 * 4
    assert profile_model(model, (1, 3, 4, 4), "fvcore").macs == expected == 224
    assert profile_model(model, (1, 3, 4, 4), "output").macs == expected


def test_resnet9_in_the_output_convention_is_the_papers_56_8_g():
    model = create_generator("resnet9", ngf=64)
    fvcore, output = (profile_model(model, (1, 3, 256, 256), c).macs for c in ("fvcore", "output"))
    # the two ConvTranspose layers: 256→128 at 64→128 px and 128→64 at 128→256 px, 3×3 kernels
    extra = 256 * 128 * 9 * (128 * 128 - 64 * 64) + 128 * 64 * 9 * (256 * 256 - 128 * 128)
    assert fvcore == 49_681_530_880
    assert output == fvcore + extra == 56_929_288_192
    assert output == pytest.approx(56.8e9, rel=0.003)  # torchprofile, which skips the 0.13 G of norm layers


def test_an_unknown_convention_is_one_line():
    with pytest.raises(PocketganError, match="unknown MAC counting convention 'outptu' \\(did you mean output\\?\\)"):
        profile_model(ConvThenUp(), (1, 3, 8, 8), "outptu")


def test_profile_cli_reports_both_conventions(cli, tmp_path):
    out = tmp_path / "p.json"
    result = cli("profile", "resnet9:ngf=8", "--size", "64", "--convention", "both", "-o", out, "--top", "2")
    assert result.code == 0, result.err
    model = create_generator("resnet9", ngf=8)
    # ngf 8 at 64 px: ConvTranspose 32→16 channels at 16→32 px and 16→8 at 32→64 px, 3×3 kernels
    extra = 32 * 16 * 9 * (32 * 32 - 16 * 16) + 16 * 8 * 9 * (64 * 64 - 32 * 32)
    fvcore = profile_model(model, (1, 3, 64, 64)).macs
    assert "MACs (fvcore)" in result.out and f"{fvcore:,}" in result.out
    assert "MACs (output positions)" in result.out and f"{fvcore + extra:,}" in result.out
    data = json.loads(out.read_text())
    assert data["macs"] == fvcore and data["counter"] == "fvcore"
    assert data["by_convention"]["fvcore"]["macs"] == fvcore
    assert data["by_convention"]["fvcore:output-positions"]["macs"] == fvcore + extra


def test_profile_cli_one_convention_and_a_bad_one(cli):
    result = cli("profile", "resnet9:ngf=8", "--size", "64", "--convention", "output", "--top", "0")
    assert result.code == 0, result.err
    assert "fvcore:output-positions" in result.out and "MACs (fvcore)" not in result.out
    bad = cli("profile", "resnet9:ngf=8", "--convention", "papers")
    assert bad.code == 2
    assert bad.err.strip().splitlines() == ["error: --convention papers: unknown; choose fvcore, output, both"]


def test_the_manifest_profile_records_counter_and_convention(cli, tmp_path):
    result = cli("prune", "resnet9:ngf=8,n_blocks=1", "--uniform", "0.5", "--size", "32", "-o", tmp_path / "p")
    assert result.code == 0, result.err
    profile = ModelManifest.load(tmp_path / "p").profile
    assert profile.counter == "fvcore"
    assert "ConvTranspose counted over input positions" in profile.convention
    output = profile_model(ConvThenUp(), (1, 3, 8, 8), "output").to_profile()
    assert (output.counter, output.macs) == ("fvcore:output-positions", 39_680)


def stylegan2_hand_macs(widths: dict[int, int], *, z_dim: int, w_dim: int, n_mlp: int, convention: str) -> int:
    """MACs of one z through our StyleGAN2 generator, from its layer shapes (``widths``: channels per resolution).

    Mapping: ``n_mlp`` Linears. Per modulated conv (cin → cout at resolution r): the affine
    ``w_dim × cin``, the demodulation ``linear(s², ΣW²)`` ``cin × cout``, the 3×3 conv over r² output
    positions, or for the upsampling one a stride-2 ConvTranspose (over (r/2)² inputs in fvcore, over its
    (r+1)² outputs in the output convention) followed by the 4×4 blur on r² positions. toRGB: affine and a
    1×1 conv to 3 channels; the skip image is upsampled by a 4×4 depthwise ConvTranspose (3 channels).
    """
    over_output = convention == "output"
    total = z_dim * w_dim + (n_mlp - 1) * w_dim * w_dim
    previous = widths[4]
    for res, channels in sorted(widths.items()):
        layers = [(previous, channels, False)] if res == 4 else [(previous, channels, True), (channels, channels, False)]
        for cin, cout, up in layers:
            total += w_dim * cin + cin * cout
            if up:
                total += cin * cout * 9 * ((res + 1) ** 2 if over_output else (res // 2) ** 2) + cout * 16 * res * res
            else:
                total += cin * cout * 9 * res * res
        total += w_dim * channels + channels * 3 * res * res
        if res > 4:
            total += 3 * 16 * (res * res if over_output else (res // 2) ** 2)
        previous = channels
    return total


@pytest.mark.parametrize("convention", ["fvcore", "output"])
def test_a_tiny_stylegan2_counts_as_by_hand(convention):
    model = create_generator("stylegan2", size=32, channel_base=512, channel_max=32, z_dim=32, w_dim=32, n_mlp=2)
    expected = stylegan2_hand_macs({4: 32, 8: 32, 16: 32, 32: 16}, z_dim=32, w_dim=32, n_mlp=2, convention=convention)
    assert expected == {"fvcore": 7_914_496, "output": 14_473_984}[convention]
    assert profile_model(model, (1, 32), convention).macs == expected


def test_stylegan2_256_is_45_g_in_fvcore_and_84_g_over_output_positions():
    """METHODS.md "Counting StyleGAN2": CAGC's 45.1 G and the ~84 G of the output-position count (config F, 256 px)."""
    model = create_generator("stylegan2", size=256, channel_multiplier=2)
    widths = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
    for convention, quoted in (("fvcore", 45.1e9), ("output", 84e9)):
        expected = stylegan2_hand_macs(widths, z_dim=512, w_dim=512, n_mlp=8, convention=convention)
        assert profile_model(model, (1, 512), convention).macs == expected
        assert expected == pytest.approx(quoted, rel=0.015)  # the rest: the FIR blurs, which CAGC does not count
