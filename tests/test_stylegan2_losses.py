"""The loss building blocks of the StyleGAN2 distillers, on tiny tensors and tiny real modules.

MMD (DiME) for every kernel, per batch and against accumulated teacher statistics; the Haar
DWT (NICKEL); ITGC's energy-based model, its Langevin sampler and which parameters each of its
losses reaches; DiME's teacher-statistics script on a tiny latent generator, from Python and
from its command line. Expected values are computed by hand in the comments, not by the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import Tensor, nn

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.distill.features.base import FEATURE_NETWORKS, FeatureNetwork
from pocketgan.distill.stylegan2 import ebm as itgc
from pocketgan.distill.stylegan2.encoders import DimeEncoder, dime_loss
from pocketgan.distill.stylegan2.haar import haar_dwt, haar_highs, haar_idwt, wavelet_mse
from pocketgan.distill.stylegan2.mmd import KERNELS, MOMENT_WEIGHTS, TeacherStats, median_bandwidth, mmd
from pocketgan.distill.stylegan2.teacher_stats import compute_teacher_stats, main as stats_main
from pocketgan.models import save_model, wrap

SHIFTS = (0.0, 0.25, 0.5, 1.0, 2.0)


def randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- MMD


@pytest.mark.parametrize("kernel", KERNELS)
def test_mmd_is_zero_for_identical_sets(kernel: str) -> None:
    x = randn(16, 8)
    assert abs(float(mmd(x, x.clone(), kernel))) < 1e-6
    assert abs(float(mmd(x, x.clone(), kernel, unbiased=False))) < 1e-6


@pytest.mark.parametrize("kernel", KERNELS)
def test_mmd_grows_with_the_shift_per_batch_and_against_accumulated_stats(kernel: str) -> None:
    x = randn(32, 8)
    per_batch = [float(mmd(x + shift, x, kernel)) for shift in SHIFTS]
    assert per_batch[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(per_batch, per_batch[1:])), per_batch

    stats = TeacherStats(8, reservoir=256)
    for batch in randn(2048, 8, seed=1).split(64):  # the same distribution, many more samples
        stats.update(batch)
    accumulated = [float(mmd(x + shift, stats, kernel)) for shift in SHIFTS]
    assert all(a < b for a, b in zip(accumulated, accumulated[1:])), accumulated
    assert all(math.isfinite(v) for v in accumulated)


def test_median_bandwidth_of_three_points() -> None:
    # distances: |(0,0)-(3,0)| = 3, |(0,0)-(0,4)| = 4, |(3,0)-(0,4)| = 5 -> median 4
    assert float(median_bandwidth(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]))) == pytest.approx(4.0)


# X = {0, 2}, Y = {1, 5} in one dimension (hand computations below).
X, Y = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [5.0]])


def test_kernel_estimates_match_hand_computed_values() -> None:
    # moments: |E x - E y| + |E x² - E y²| = |1 - 3| + |2 - 13| = 13
    assert float(mmd(X, Y, "moments")) == pytest.approx(13.0)
    # linear, biased: (E x - E y)² = 4; unbiased paired: K_xx off-diagonal 0, K_yy off-diagonal 5,
    # cross without i = j: (0·5 + 2·1) / 2 = 1  ->  0 + 5 - 2 = 3
    assert float(mmd(X, Y, "linear", unbiased=False)) == pytest.approx(4.0)
    assert float(mmd(X, Y, "linear")) == pytest.approx(3.0)
    # polynomial (xy + 1)³, biased: K_xx mean (1+1+1+125)/4 = 32, K_yy (8+216+216+17576)/4 = 4504,
    # K_xy (1+1+27+1331)/4 = 340  ->  32 + 4504 - 680 = 3856
    assert float(mmd(X, Y, "polynomial", unbiased=False)) == pytest.approx(3856.0)
    # rbf with σ = 1, biased: exp(-d²/2) over the pairs
    e = math.exp
    kxx = (2 + 2 * e(-2)) / 4
    kyy = (2 + 2 * e(-8)) / 4
    kxy = (e(-0.5) + e(-12.5) + e(-0.5) + e(-4.5)) / 4
    assert float(mmd(X, Y, "rbf", unbiased=False, bandwidth=1.0)) == pytest.approx(kxx + kyy - 2 * kxy)


def test_accumulated_statistics_are_the_exact_moments_and_survive_a_save(tmp_path: Path) -> None:
    data = randn(300, 6, seed=3)
    stats = TeacherStats(6, reservoir=50, seed=7, metadata={"encoder": "tiny"})
    for batch in data.split(32):
        stats.update(batch)
    assert stats.count == 300 and stats.reservoir.shape == (50, 6)
    torch.testing.assert_close(stats.mean, data.double().mean(0))
    torch.testing.assert_close(stats.second_moment, data.double().pow(2).mean(0))
    reservoir_rows = {tuple(row.tolist()) for row in stats.reservoir}
    assert reservoir_rows <= {tuple(row.tolist()) for row in data}  # a sample of what was seen
    assert len(reservoir_rows) == 50

    x = randn(10, 6, seed=4)
    torch.testing.assert_close(mmd(x, stats, "moments"), mmd(x, data, "moments"))
    assert float(mmd(x, stats, "linear", unbiased=False)) == pytest.approx(
        float((x.mean(0) - data.mean(0)).pow(2).sum()), rel=1e-5
    )

    path = stats.save(tmp_path / "stats.safetensors")
    loaded = TeacherStats.load(path)
    assert loaded.count == 300 and loaded.metadata == {"encoder": "tiny"}
    for name in ("sum", "sum_sq", "reservoir"):
        assert torch.equal(getattr(loaded, name), getattr(stats, name))
    more = randn(100, 6, seed=5)
    stats.update(more), loaded.update(more)  # the reservoir's random state was saved too
    assert torch.equal(loaded.reservoir, stats.reservoir)


def test_bad_mmd_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PocketganError, match="unknown MMD kernel 'cosine'"):
        mmd(X, Y, "cosine")
    with pytest.raises(PocketganError, match="N×1 embeddings"):
        mmd(X, torch.zeros(2, 3), "linear")
    with pytest.raises(PocketganError, match="empty"):
        mmd(X, TeacherStats(1), "moments")
    (tmp_path / "other.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PocketganError, match="cannot read teacher statistics"):
        TeacherStats.load(tmp_path / "other.safetensors")


# ------------------------------------------------------------------------------------------ Haar


def test_haar_one_level_by_hand() -> None:
    # [[1, 2], [3, 4]]: LL = 10/2 = 5, LH = (3 - 7)/2 = -2, HL = (-1 - 1)/2 = -1, HH = (-1 + 1)/2 = 0
    pyramid = haar_dwt(torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2), levels=1)
    assert pyramid.low.flatten().tolist() == [5.0]
    assert pyramid.highs[0].flatten().tolist() == [-2.0, -1.0, 0.0]


@pytest.mark.parametrize("size", [(32, 32), (37, 30)])
def test_haar_inverts_and_is_orthonormal(size: tuple[int, int]) -> None:
    x = randn(2, 3, *size)
    pyramid = haar_dwt(x, levels=4)
    assert len(pyramid.highs) == 4 and pyramid.highs[0].shape[:3] == (2, 3, 3)
    assert (haar_idwt(pyramid) - x).abs().max() < 1e-6
    if size == (32, 32):  # no padding: the energy of the sub-bands is the image's
        assert [h.shape[-1] for h in pyramid.highs] == [16, 8, 4, 2]
        energy = pyramid.low.pow(2).sum() + sum(h.pow(2).sum() for h in pyramid.highs)
        assert float(energy) == pytest.approx(float(x.pow(2).sum()), rel=1e-5)


def test_haar_high_bands_of_a_constant_image_are_zero() -> None:
    for band in haar_highs(torch.full((1, 2, 32, 32), 0.7), levels=4):
        assert band.abs().max() < 1e-6


def test_wavelet_mse_reaches_the_student_feature_only() -> None:
    student = randn(2, 4, 16, 16).requires_grad_(True)
    teacher = randn(2, 4, 16, 16, seed=1).requires_grad_(True)
    assert float(wavelet_mse(teacher.detach(), teacher)) == 0.0
    loss = wavelet_mse(student, teacher)
    assert float(loss.detach()) > 0
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


# ------------------------------------------------------------------------------------------- EBM


class TinyStudent(nn.Module):
    """A one-layer "generator": latent → 3×16×16 image."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3 * 16 * 16)

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.fc(z)).view(-1, 3, 16, 16)


def tiny_ebm() -> itgc.ResnetEBM:
    torch.manual_seed(0)
    return itgc.ResnetEBM(input_nc=8, n_blocks=3)


def test_ebm_energy_shape_and_block_limit() -> None:
    ebm = tiny_ebm()
    energy = ebm(randn(2, 3, 16, 16), randn(2, 3, 16, 16, seed=1))
    assert energy.shape == (2, 1) and torch.isfinite(energy).all()
    assert (itgc.max_blocks(32), itgc.max_blocks(256)) == (4, 7)  # 32 → 16 → 8 → 4 → 2 → 1
    with pytest.raises(PocketganError, match="n_blocks ≤ 3"):
        itgc.ResnetEBM(input_nc=8, n_blocks=4)(randn(1, 3, 16, 16), randn(1, 3, 16, 16))


def test_spectral_norm_scales_the_largest_singular_value_to_one() -> None:
    layer = itgc.spectral_norm(nn.Linear(6, 5))
    for _ in range(30):  # power iterations, one per training-mode call
        weight = layer.weight
    assert float(torch.linalg.matrix_norm(weight.detach(), ord=2)) == pytest.approx(1.0, abs=1e-3)


def test_langevin_lowers_the_energy_of_its_samples() -> None:
    ebm = tiny_ebm().eval()  # eval: the power iteration holds still, energies are comparable
    student = randn(4, 3, 16, 16).tanh().requires_grad_(True)
    sample = itgc.langevin_sample(ebm, student, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = ebm(student, student).flatten(), ebm(sample, student).flatten()
    assert (after < before).all(), (before, after)
    assert not sample.requires_grad and not torch.equal(sample, student.detach())
    assert student.grad is None and all(p.grad is None for p in ebm.parameters())


def test_ebm_loss_reaches_only_the_ebm_and_mi_term_only_the_student() -> None:
    ebm = tiny_ebm()
    generator = TinyStudent()
    teacher_image = randn(2, 3, 16, 16, seed=2).tanh().requires_grad_(True)
    student_image = generator(randn(2, 4, seed=3))
    sample = itgc.langevin_sample(ebm, student_image)

    itgc.ebm_loss(ebm, teacher_image, student_image, sample).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ebm.parameters())
    assert all(p.grad is None for p in generator.parameters()) and teacher_image.grad is None

    ebm.zero_grad(set_to_none=True)
    mi = itgc.mi_loss(ebm, teacher_image, student_image, sample)
    assert torch.isfinite(mi)
    (itgc.MI_WEIGHT * mi).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None for p in ebm.parameters()) and teacher_image.grad is None
    assert all(p.requires_grad for p in ebm.parameters())  # unfrozen again


class MeanEnergy(nn.Module):
    """E(x, condition) = scale · mean(x): energies known by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.scale * x.flatten(1).mean(1, keepdim=True)


def test_ebm_loss_and_mi_term_signs_by_hand() -> None:
    energy = MeanEnergy()
    teacher, student, sample = (torch.full((2, 3, 4, 4), v) for v in (1.0, 0.0, 3.0))
    # E⁺ = 1, E⁻ = 3: E⁺ - E⁻ + 0.05 (E⁺² + E⁻²) = -2 + 0.5 = -1.5
    assert float(itgc.ebm_loss(energy, teacher, student, sample).detach()) == pytest.approx(-1.5)
    # E(teacher, student) - E(sample, student) = 1 - 3
    assert float(itgc.mi_loss(energy, teacher, student, sample).detach()) == pytest.approx(-2.0)
    # one Langevin step on E = mean(x) of 48 values: x - 50 · 1/48 (no noise)
    stepped = itgc.langevin_sample(energy, student, steps=1, noise=0.0)
    torch.testing.assert_close(stepped, torch.full_like(student, -50 / 48))


# ------------------------------------------------------------------------------ DiME and its stats


class TinyEncoder(FeatureNetwork):
    """A 4-d embedding: one conv, global average pool."""

    def __init__(self, name: str = "tiny-encoder") -> None:
        super().__init__()
        self.name, self.num_features, self.level_channels = name, 4, (4,)
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def features(self, x: Tensor) -> list[Tensor]:
        return [torch.relu(self.conv(x))]

    def pool(self, features: list[Tensor]) -> Tensor:
        return features[-1].mean(dim=(2, 3))


class TinyLatentGenerator(nn.Module):
    """z (8) → 3×16×16 image in [-1, 1]."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(8, 3 * 16 * 16)

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.fc(z)).view(-1, 3, 16, 16)


def build_tiny_latent(seed: int = 0) -> nn.Module:
    """The factory the saved teacher records (``test_stylegan2_losses:build_tiny_latent``)."""
    return wrap(TinyLatentGenerator(seed), IOSpec.latent(8, 16), factory=build_tiny_latent, config={"seed": seed})


def test_dime_loss_is_zero_on_the_teachers_images_and_reaches_only_the_student() -> None:
    encoder = DimeEncoder(TinyEncoder().freeze(), weight=MOMENT_WEIGHTS["dino-resnet50"])
    student, teacher = TinyStudent(), TinyStudent()
    z = randn(6, 4)
    teacher_images = teacher(z)
    for kernel in KERNELS:
        loss = dime_loss(teacher_images, [encoder], teacher_images=teacher_images, kernel=kernel)
        assert abs(float(loss.detach())) < 1e-5
    loss = dime_loss(student(z), [encoder], teacher_images=teacher(z), kernel="moments")
    assert float(loss.detach()) > 0
    loss.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is None for p in encoder.network.parameters())


def test_teacher_stats_of_a_tiny_generator_load_back_equal(tmp_path: Path) -> None:
    teacher, encoder = build_tiny_latent(), TinyEncoder().freeze()
    events = []
    stats = compute_teacher_stats(teacher, encoder, samples=40, batch_size=16, reservoir=16, progress=events.append)
    assert stats.count == 40 and stats.reservoir.shape == (16, 4)
    assert events[-1].finished and events[-1].completed == 40
    z = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))  # seed 0: the latents it drew
    with torch.no_grad():
        expected = encoder.embed(teacher(z)).double()
    torch.testing.assert_close(stats.mean, expected.mean(0))
    torch.testing.assert_close(stats.second_moment, expected.pow(2).mean(0))
    assert stats.metadata["encoder"] == "tiny-encoder" and stats.metadata["encoder_key"] == encoder.key

    loaded = TeacherStats.load(stats.save(tmp_path / "stats.safetensors"))
    assert loaded.count == 40 and loaded.metadata == stats.metadata
    assert torch.equal(loaded.sum, stats.sum) and torch.equal(loaded.reservoir, stats.reservoir)
    DimeEncoder(encoder, 1.0).check_stats(loaded)
    with pytest.raises(PocketganError, match="computed with encoder tiny-encoder"):
        DimeEncoder(TinyEncoder().freeze().double(), 1.0).check_stats(loaded)  # other weights: other key


def test_teacher_stats_of_a_stylegan2_draw_random_noise_reproducibly() -> None:
    from pocketgan.models import create_generator

    teacher = create_generator("stylegan2", size=32, channel_base=512, channel_max=16, z_dim=32, w_dim=32, n_mlp=2)
    encoder = TinyEncoder().freeze()
    first, again = (compute_teacher_stats(teacher, encoder, samples=8, batch_size=8, reservoir=4) for _ in range(2))
    assert first.metadata["noise_mode"] == "random" and torch.equal(first.sum, again.sum)
    const = compute_teacher_stats(teacher, encoder, samples=8, batch_size=8, noise_mode="const", truncation=0.5)
    assert (const.metadata["noise_mode"], const.metadata["truncation"]) == ("const", "0.5")
    assert not torch.equal(const.sum, first.sum)


@pytest.fixture
def tiny_encoder_registered():
    FEATURE_NETWORKS.register("tiny-encoder", lambda **_: TinyEncoder().freeze())
    yield "tiny-encoder"
    FEATURE_NETWORKS._entries.pop("tiny-encoder", None)


def test_teacher_stats_script_writes_a_file_that_loads_back(tmp_path: Path, tiny_encoder_registered, capsys) -> None:
    model_dir = tmp_path / "teacher"
    save_model(build_tiny_latent(), model_dir)
    out = tmp_path / "stats" / "teacher.safetensors"
    argv = [str(model_dir), "--encoder", tiny_encoder_registered, "--samples", "24", "--batch-size", "8",
            "--reservoir", "8", "-o", str(out)]  # fmt: skip
    assert stats_main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)
    loaded = TeacherStats.load(out)
    assert loaded.count == 24 and loaded.metadata["teacher"] == "teacher" and loaded.metadata["samples"] == "24"
    with safe_open(str(out), framework="pt") as handle:
        assert set(handle.keys()) == {"sum", "sum_sq", "reservoir"}
    assert [p.name for p in out.parent.iterdir()] == ["teacher.safetensors"]  # no temporary left behind
    again = tmp_path / "again.safetensors"
    assert stats_main([*argv[:-1], str(again)]) == 0
    assert torch.equal(TeacherStats.load(again).sum, loaded.sum)  # seeded: the same statistics


def test_teacher_stats_script_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, tiny_encoder_registered, capsys
) -> None:
    out = tmp_path / "out.safetensors"
    assert stats_main(["resnet9:ngf=8", "--encoder", tiny_encoder_registered, "--samples", "4", "-o", str(out)]) == 2
    assert "need a latent-input (StyleGAN2) generator" in capsys.readouterr().err
    assert stats_main([str(tmp_path / "missing"), "--encoder", "tiny-encoder", "-o", str(out)]) == 2
    teacher = tmp_path / "teacher"
    save_model(build_tiny_latent(), teacher)
    assert stats_main([str(teacher), "--encoder", "tiny-encoder", "--truncation", "0.7", "-o", str(out)]) == 2
    assert "does not take truncation" in capsys.readouterr().err
    assert stats_main([str(teacher), "--encoder", "tiny-encoder", "-o", str(tmp_path / "stats.pt")]) == 2
    assert not out.exists() and not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".*.tmp"))
