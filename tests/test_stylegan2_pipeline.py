"""`pocketgan run stylegan2` end to end on a tiny recipe: digits → StyleGAN2 teacher → pruned students → report.

The recipe is the built-in one shrunk (16-wide layers, a few steps): every stage runs on real
components (the digits builder, the StyleGAN2 trainer and distillers, torch-pruning, ONNX export
with parity, onnxruntime latency, FID with the digits' own feature network), and the report must
carry the papers' panels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pocketgan.config import STYLEGAN2_RATES, load_config

TINY_ARCH = "stylegan2:size=32,channel_base=256,channel_max=16,z_dim=16,w_dim=16,n_mlp=1"
TINY_STUDENTS = [
    {"name": "nd-p70", "method": "nickel-dime", "steps": 3, "batch": 4, "lr": 0.002,
     "options": {"ratio": 0.7, "logit_every": 1, "snapshot_every": 2}},
    {"name": "kd-p90", "method": "kd", "steps": 3, "batch": 4, "lr": 0.002,
     "options": {"ratio": 0.9, "logit_every": 1}},
]  # fmt: skip
TINY = [
    "data.count=24",
    "data.val_count=8",
    f"teacher.arch={TINY_ARCH}",
    "teacher.steps=4",
    "teacher.batch=4",
    "features.steps=5",
    f"students={json.dumps(TINY_STUDENTS)}",
    "eval.batch=8",
    "bench.iterations=3",
    "bench.duration=0",
    "bench.warmup_ms=0",
    "bench.threads=1",
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def read_png(path):
    import cv2

    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a PNG"
    return image


def test_the_built_in_stylegan2_recipe_prunes_the_teacher_at_the_papers_rates():
    config = load_config("stylegan2")
    assert config.teacher.method == "stylegan2" and config.teacher.arch.startswith("stylegan2:")
    assert config.data.builder == "digits" and config.size == 32
    assert [s.options["ratio"] for s in config.students] == [0.7, 0.8, 0.9, 0.95] == list(STYLEGAN2_RATES)
    assert {s.method for s in config.students} == {"nickel-dime"} and all(s.student is None for s in config.students)


def test_a_student_needs_an_architecture_or_a_ratio():
    from pocketgan.core.errors import PocketganError

    with pytest.raises(PocketganError, match="students.0 needs student"):
        load_config("stylegan2", ["students.0.options={}"])


def test_tiny_stylegan2_recipe_runs_every_stage_and_draws_the_papers_panels(cli, cache, tmp_path):
    out = tmp_path / "run"
    result = cli("run", "stylegan2", "-o", out, *TINY)
    assert result.code == 0, result.err
    results = json.loads((out / "results.json").read_text())
    teacher, *students = results["models"]
    assert [row["model"] for row in results["models"]] == ["teacher", "nd-p70", "kd-p90"]
    assert results["latent"] == {"z_dim": 16, "samples": 8}
    assert teacher["compression"] == 0
    previous = 0.0
    for row in students:  # uniform pruning: the higher P, the fewer MACs
        assert previous < row["compression"] < 1 and row["macs"] < teacher["macs"]
        previous = row["compression"]
        assert row["latency_p50_ms"] > 0 and row["parity_max_abs"] < 1e-3
        assert row["fid"] is not None and row["psnr_teacher"] is not None and row["psnr"] is None  # no targets
        assert row["feature_network"] == "pocketgan-digits"
    for name in ("nd-p70", "kd-p90"):  # the discriminator logits each student's run logged
        logits = results["training"][name]["logits"]
        assert [entry["step"] for entry in logits] == [1, 2, 3]
        assert all(np.isfinite([entry["D_real"], entry["D_fake"]]).all() for entry in logits)
    assert [point["step"] for point in results["training"]["nd-p70"]["fid"]] == [2, 3]  # snapshot_every 2, and the end
    assert results["training"]["kd-p90"]["fid"] == []  # no snapshots asked for
    assert read_png(out / "fid_curve.png").std() > 0
    grid = read_png(out / "grid.png")
    # 6 latents × (held-out, teacher, 2 students)
    assert grid.shape[0] / grid.shape[1] == pytest.approx(6 / 4, rel=0.1)
    logits_panel = read_png(out / "logits.png")
    assert logits_panel.std() > 0
    report = (out / "report.md").read_text()
    assert "![samples: the same latents for every model](grid.png)" in report
    assert "![discriminator logits over training](logits.png)" in report
    assert "![FID over training](fid_curve.png)" in report
    assert "| nd-p70 |" in report and "logit gap" in report and "pocketgan-digits" in report
    assert "pocketgan teacher --data data -o teacher --method stylegan2" in report
    assert "--option ratio=0.7" in report
    (network,) = (cache / "features").glob("pocketgan-digits-*.safetensors")
    models = out / "models"
    again = cli("eval", models / "kd-p90", "--data", results["dataset"], "--teacher", models / "teacher",
                "--feature", network, "--batch", "8")  # fmt: skip
    assert again.code == 0, again.err
    assert f"{students[1]['fid']:.3f}" in again.out  # the verb measures what the run measured


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from pocketgan.distill.data import build_dataset

    return build_dataset("digits", tmp_path_factory.mktemp("digits") / "digits", size=32, count=16, val_count=8)


@pytest.fixture(scope="module")
def feature(digits, tmp_path_factory):
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.features.domain import DomainConfig

    return load_feature_network(None, data=digits, cache_dir=tmp_path_factory.mktemp("features"),
                                domain_config=DomainConfig(steps=5, batch_size=8))  # fmt: skip


def tiny_generator(seed: int = 0):
    import torch

    from pocketgan.models import create_generator

    torch.manual_seed(seed)
    return create_generator("stylegan2", size=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16,
                            n_mlp=1).eval()  # fmt: skip


def test_a_latent_generator_is_evaluated_on_fixed_latents_against_the_real_images(digits, feature):
    import torch

    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.evaluation import eval_latents, evaluate

    torch.testing.assert_close(eval_latents(3, 16), eval_latents(5, 16)[:3])  # more samples only append
    val = open_dataset(digits, "val")
    model, other = tiny_generator(0), tiny_generator(1)
    itself = evaluate(model, val, feature=feature, teacher=model, batch_size=4)
    assert itself.n == 8 and itself.value("psnr") is None  # no image is the target of a latent
    assert itself.value("psnr", "teacher") == float("inf")  # same latents, same noise: the same images
    assert itself.value("fid") > 0
    against = evaluate(other, val, feature=feature, teacher=model, batch_size=4)
    assert against.value("psnr", "teacher") < 40
    with torch.inference_mode():  # FID is computed on the model's images of eval_latents, whatever the batching
        again = evaluate(model, val, feature=feature, batch_size=3)
    assert again.value("fid") == pytest.approx(itself.value("fid"), rel=1e-6)


def test_fid_over_training_reads_each_snapshot_into_the_architecture(digits, feature, tmp_path):
    import torch

    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.evaluation import evaluate, evaluate_over_training
    from pocketgan.distill.run_log import list_snapshots, snapshot_path, write_snapshot

    model, other = tiny_generator(0), tiny_generator(1)
    for step, source in ((20, model), (10, other)):
        write_snapshot(source, snapshot_path(tmp_path / "student", step))
    snapshots = list_snapshots(tmp_path / "student")
    assert [step for step, _ in snapshots] == [10, 20]
    val = open_dataset(digits, "val")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = evaluate_over_training(model, snapshots, val, feature=feature, batch_size=4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model itself is untouched
    assert [point["step"] for point in curve] == [10, 20]
    assert curve[0]["fid"] == pytest.approx(evaluate(other, val, feature=feature).value("fid"), rel=1e-6)
    assert curve[1]["fid"] == pytest.approx(evaluate(model, val, feature=feature).value("fid"), rel=1e-6)
    assert curve[0]["fid"] != curve[1]["fid"]
