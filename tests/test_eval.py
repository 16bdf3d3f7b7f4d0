"""Metrics (PSNR, SSIM, FID, KID, LPIPS-style) and `pocketgan eval`, on tiny real datasets and networks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pocketgan.distill.features import DomainConfig, load_feature_network, train_domain_network
from pocketgan.core.errors import PocketganError
from pocketgan.distill.metrics import (
    METRICS,
    PairedMetric,
    ReportColumn,
    evaluate,
    frechet_distance,
    get_metric,
    kernel_inception_distance,
    list_metrics,
    psnr_per_image,
    ssim_per_image,
)

SIZE = 32
TINY = DomainConfig(widths=(8, 16, 32, 64), crop=32, steps=30, batch_size=16, seed=0)


def photo_crops(count: int, size: int = SIZE, seed: int = 0) -> list[np.ndarray]:
    """Random ``size``-px crops of scikit-image's sample photographs (uint8 RGB)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    crops = []
    for i in range(count):
        photo = sources[i % len(sources)]
        side = int(rng.integers(96, 160))
        top, left = (int(rng.integers(0, photo.shape[k] - side)) for k in (0, 1))
        crop = photo[top : top + side, left : left + side]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


def write_identity_dataset(root, count: int = 12):
    """A pix2pix aligned dataset whose input equals its target (A | A), so ``nn.Identity`` is a perfect model."""
    for split, seed in (("train", 0), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i, image in enumerate(photo_crops(count, seed=seed)):
            pair = cv2.cvtColor(np.concatenate([image, image], axis=1), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(root / split / f"{i:03d}.png"), pair)
    return root


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture(scope="module")
def feature():
    return train_domain_network(to_tensor(photo_crops(16, seed=5)), TINY, name="pocketgan-crops")


class Degraded(nn.Module):
    """The identity followed by a Gaussian blur of ``sigma`` px and fixed noise of ``noise`` std (on [-1, 1])."""

    def __init__(self, sigma: float, noise: float) -> None:
        super().__init__()
        self.sigma, self.noise = sigma, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        radius = max(1, int(3 * self.sigma))
        taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / self.sigma) ** 2)
        kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(3, 1, -1, -1)
        blurred = F.conv2d(F.pad(x, [radius] * 4, mode="reflect"), kernel, groups=3)
        generator = torch.Generator().manual_seed(0)
        return blurred + self.noise * torch.randn(x.shape, generator=generator)


# ---------------------------------------------------------------- metric functions


def test_psnr_and_ssim_of_identical_images_are_inf_and_one():
    x = to_tensor(photo_crops(3))
    assert torch.isinf(psnr_per_image(x, x)).all()
    assert torch.allclose(ssim_per_image(x, x), torch.ones(3))
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)
    assert (psnr_per_image(noisy, x) < 30).all() and (ssim_per_image(noisy, x) < 0.95).all()


def test_fid_and_kid_are_near_zero_for_a_set_against_itself_and_large_against_noise(feature):
    photos = to_tensor(photo_crops(16))
    others = to_tensor(photo_crops(16, seed=9))
    noise = torch.rand_like(photos) * 2 - 1
    with torch.no_grad():
        real, similar, junk = feature.embed(photos), feature.embed(others), feature.embed(noise)
    fid_self, fid_similar, fid_noise = (frechet_distance(real, x) for x in (real, similar, junk))
    assert abs(fid_self) < 1e-3 * fid_noise
    assert fid_self < fid_similar < fid_noise
    kid_self, kid_similar, kid_noise = (kernel_inception_distance(real, x)[0] for x in (real, similar, junk))
    # KID's unbiased estimate is negative for a set against itself (it assumes independent samples).
    assert kid_self < kid_similar < kid_noise and max(abs(kid_self), abs(kid_similar)) < 0.5 * kid_noise
    assert kernel_inception_distance(real, junk) == kernel_inception_distance(real, junk)  # seeded subsets
    with pytest.raises(PocketganError, match="at least 2 images"):
        frechet_distance(real[:1], junk)


# ---------------------------------------------------------------- evaluate()


@pytest.fixture(scope="module")
def identity_data(tmp_path_factory):
    from pocketgan.distill.data import open_dataset

    return open_dataset(write_identity_dataset(tmp_path_factory.mktemp("identity") / "same"), "val")


def test_metrics_move_the_right_way_as_the_output_degrades(identity_data, feature):
    models = {"perfect": nn.Identity(), "slight": Degraded(0.6, 0.02), "strong": Degraded(1.5, 0.15)}
    reports = {
        name: evaluate(m, identity_data, feature=feature, teacher=nn.Identity(), batch_size=5)
        for name, m in models.items()
    }
    perfect, slight, strong = (reports[k] for k in ("perfect", "slight", "strong"))
    assert perfect.value("psnr") == float("inf") and perfect.value("ssim") == pytest.approx(1.0, abs=1e-5)
    assert perfect.value("lpips_style") == pytest.approx(0.0, abs=1e-6)
    assert abs(perfect.value("fid")) < 1e-3 * strong.value("fid")
    assert float("inf") > slight.value("psnr") > strong.value("psnr")
    assert 1 > slight.value("ssim") > strong.value("ssim")
    for key in ("fid", "kid", "lpips_style"):
        assert perfect.value(key) < slight.value(key) < strong.value(key), key
    # The teacher here reproduces the ground truth, so both columns agree.
    for key in ("psnr", "ssim", "fid", "lpips_style"):
        assert slight.value(key, "teacher") == pytest.approx(slight.value(key), rel=1e-6), key
    assert strong.n == 12 and strong.image_size == [SIZE, SIZE] and strong.seconds > 0


def test_psnr_and_the_teacher_column_agree_with_a_direct_computation(identity_data, feature):
    """PSNR = 10·log10(range² / MSE) per image, on [-1, 1] (range 2), averaged over the images."""
    model, teacher = Degraded(0.8, 0.05), Degraded(1.2, 0.0)
    report = evaluate(model, identity_data, feature=feature, teacher=teacher, batch_size=12)  # one batch: same noise
    truth = torch.stack([identity_data[i]["B"] for i in range(len(identity_data))])
    with torch.no_grad():
        output, guide = model(truth).clamp(-1, 1), teacher(truth).clamp(-1, 1)

    def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
        mse = ((a.double() - b.double()) ** 2).mean(dim=(1, 2, 3))
        return float((10 * torch.log10(4.0 / mse)).mean())

    assert report.value("psnr") == pytest.approx(psnr(output, truth), abs=1e-4)
    assert report.value("psnr", "teacher") == pytest.approx(psnr(output, guide), abs=1e-4)
    assert report.value("psnr", "teacher") != pytest.approx(report.value("psnr"), abs=0.1)


def test_the_registry_drives_evaluate_and_its_order(identity_data, feature, monkeypatch):
    assert list_metrics() == ["psnr", "ssim", "fid", "kid", "lpips_style"]
    assert [get_metric(k).direction for k in list_metrics()] == ["↑", "↑", "↓", "↓", "↓"]
    mae = PairedMetric(key="mae", label="MAE", direction="↓", format="{:.3f}", order=15,
                       compute=lambda pair: (pair.output - pair.reference).abs().mean(dim=(1, 2, 3)),
                       columns=(ReportColumn("MAE (GT)", order=12),))  # fmt: skip
    monkeypatch.setitem(METRICS._entries, "mae", mae)  # as a plugin's entry point would register it
    report = evaluate(Degraded(1.0, 0.1), identity_data, feature=feature, teacher=nn.Identity(), batch_size=12)
    assert list(report.metrics) == ["psnr", "mae", "ssim", "fid", "kid", "lpips_style"]
    truth = torch.stack([identity_data[i]["B"] for i in range(len(identity_data))])
    with torch.no_grad():
        expected = (Degraded(1.0, 0.1)(truth).clamp(-1, 1) - truth).abs().mean().item()
    assert report.value("mae") == pytest.approx(expected, rel=1e-5) and report.value("mae", "teacher") > 0
    assert report.metrics["mae"].network is None and report.row()["mae_teacher"] == report.value("mae", "teacher")
    only = evaluate(nn.Identity(), identity_data, feature=feature, metrics=["ssim", "psnr"])
    assert list(only.metrics) == ["psnr", "ssim"] and only.notes == []  # no FID/KID: no note about them
    with pytest.raises(PocketganError, match="unknown metric 'psnrr' \\(did you mean psnr\\?\\)"):
        evaluate(nn.Identity(), identity_data, feature=feature, metrics=["psnrr"])

    from pocketgan.report import markdown_table

    table = markdown_table([{"model": "m", "psnr": float("inf"), "mae": 0.12345, "ssim": 0.5, "kid": None}])
    header, _, row = table.splitlines()
    assert header == ("| model | method | MACs | params | compression | ORT p50 ms | ORT p90 ms | FPS "
                      "| % of compute limit | speedup ÷ MAC reduction "
                      "| PSNR (GT) | MAE (GT) | SSIM (GT) | PSNR (teacher) | FID | KID |")  # fmt: skip
    assert row == "| m | – | – | – | – | – | – | – | – | – | ∞ | 0.123 | 0.500 | – | – | – |"


def test_every_feature_metric_is_labelled_with_its_network(identity_data, feature):
    report = evaluate(nn.Identity(), identity_data, feature=feature, model_name="identity")
    assert report.feature_network == "pocketgan-crops"
    assert report.metrics["fid"].label == "FID (pocketgan-crops)"
    assert report.metrics["kid"].label == "KID (pocketgan-crops)"
    assert report.metrics["lpips_style"].label.startswith("LPIPS-style distance (pocketgan-crops")
    assert report.metrics["psnr"].network is None and report.metrics["fid"].network == "pocketgan-crops"
    assert report.value("psnr", "teacher") is None  # no teacher given
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))  # strict JSON: inf is written as "inf"
    assert data["values"]["psnr"] == "inf" and data["values"]["feature_network"] == "pocketgan-crops"
    assert data["metrics"]["fid"]["label"] == "FID (pocketgan-crops)" and data["n"] == 12
    assert any("n=12" in note for note in data["notes"])


def test_evaluate_rejects_mismatched_outputs_and_reports_small_sets(identity_data, feature):
    gray = nn.Conv2d(3, 1, 1)
    with pytest.raises(PocketganError, match="outputs"):
        evaluate(gray, identity_data, feature=feature)
    single = torch.utils.data.Subset(identity_data, [0])
    report = evaluate(nn.Identity(), single, feature=feature)
    assert report.value("fid") is None and report.value("kid") is None and report.n == 1
    assert report.value("psnr") == float("inf")


# ---------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory):
    """A tiny edges2photos dataset, a saved mobile-resnet student and a cached tiny domain network."""
    from pocketgan.distill.data import build_dataset
    from pocketgan.models import create_generator, save_model

    root = tmp_path_factory.mktemp("cli")
    data = build_dataset("edges2photos", root / "e2p", size=SIZE, count=10, val_count=6)
    torch.manual_seed(0)
    save_model(create_generator("mobile-resnet", ngf=4, n_blocks=2), root / "student")
    cache = root / "cache"
    small = DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=3, batch_size=4)
    load_feature_network(None, data=data, cache_dir=cache / "features", domain_config=small)
    return root, data, cache


def test_eval_cli_prints_a_labelled_table_and_writes_json(cli, cli_setup, monkeypatch):
    root, data, cache = cli_setup
    monkeypatch.setenv("POCKETGAN_CACHE", str(cache))
    (network,) = (cache / "features").glob("pocketgan-edges2photos-*.safetensors")
    out = root / "results" / "eval.json"
    result = cli("eval", root / "student", "--data", data, "--teacher", "resnet9:ngf=4,n_blocks=1",
                 "--feature", network.stem, "--batch", "4", "-o", out, "--no-progress")  # fmt: skip
    assert result.code == 0, result.err
    for text in ("FID (pocketgan-edges2photos) ↓", "KID (pocketgan-edges2photos) ↓", "PSNR (dB) ↑", "SSIM ↑",
                 "vs ground truth", "vs teacher", "n=6"):  # fmt: skip
        assert text in result.out, text
    saved = json.loads(out.read_text())
    assert saved["feature_network"] == "pocketgan-edges2photos" and saved["n"] == 6
    assert saved["feature_key"] == json.loads(network.with_name(network.name + ".json").read_text())["key"]
    assert f"(key {saved['feature_key']})" in result.out
    assert saved["model"] == "student" and saved["teacher"] == "resnet9:ngf=4,n_blocks=1"
    values = saved["values"]
    assert 0 < values["psnr"] < 100 and -1 <= values["ssim"] <= 1 and values["fid"] > 0
    assert values["psnr_teacher"] is not None and values["fid_teacher"] > 0
    # The table shows each value in its metric's registered format.
    assert f"{values['kid']:.5f}" in result.out and f"{values['psnr']:.2f}" in result.out

    again = root / "results" / "again.json"  # the old spelling still writes the same figures
    assert cli("eval", root / "student", "--data", data, "--feature", str(network), "--json", again,
               "--no-progress", "--size", "32x32").code == 0  # fmt: skip
    assert json.loads(again.read_text())["values"]["psnr"] == values["psnr"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{root}/student", "--data", "{root}/nowhere"], "no such dataset directory"),
        (["{root}/nowhere", "--data", "{data}"], "not an architecture"),
        (["{root}/student", "--data", "{data}", "--split", "test"], "test"),
        (["{root}/student", "--data", "{data}", "--feature", "vgg16"], "unknown feature network"),
        (["{root}/student", "--data", "{data}", "--batch", "0"], "--batch must be at least 1"),
        (["{root}/student", "--data", "{data}", "--size", "30"], "multiples of 4"),
        (["{root}/student", "--data", "{data}", "--size", "32x64"], "--size must be square"),
    ],
)
def test_eval_cli_bad_input_is_one_line(cli, cli_setup, monkeypatch, args, message):
    root, data, cache = cli_setup
    monkeypatch.setenv("POCKETGAN_CACHE", str(cache))
    out = root / "bad.json"
    result = cli("eval", *[a.format(root=root, data=data) for a in args], "--out", out, "--no-progress")
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.err
    assert not out.exists()
