"""The pix2pix teacher recipe, the KD floor, and `pocketgan teacher` / `pocketgan distill` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_trainer import PairDataset, make_kd, make_pix2pix, run

from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.checkpoint import load_checkpoint
from pocketgan.distill.pix2pix import init_pix2pix_weights
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import ModelManifest
from pocketgan.models import create_generator, load_model

TINY_TEACHER = "resnet9:ngf=4,n_blocks=1"
TINY_STUDENT = "mobile-resnet:ngf=4,n_blocks=1"


def mean_l1(model, x, target) -> float:
    with torch.no_grad():
        return (model(x) - target).abs().mean().item()


# --------------------------------------------------------------------------- the distillers


def test_pix2pix_steps_lower_the_l1_to_ground_truth(tmp_path):
    data = PairDataset()
    distiller = make_pix2pix(lr=1e-3)
    before = mean_l1(distiller.student, data.a, data.b)
    losses = run(distiller, tmp_path / "t", steps=20, dataset=data).losses
    assert mean_l1(distiller.student, data.a, data.b) < 0.85 * before
    assert set(losses) == {"G_gan", "G_L1", "D_real", "D_fake"}


def test_pix2pix_follows_the_recipe():
    distiller = get_distiller("pix2pix")(create_generator("resnet9", ngf=4, n_blocks=1), None, DistillConfig())
    assert not distiller.needs_teacher
    for opt in distiller.optimizers.values():
        group = opt.param_groups[0]
        assert isinstance(opt, torch.optim.Adam) and group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)
    first_conv = distiller.discriminator.model[0]
    assert first_conv.in_channels == 6 and first_conv.out_channels == 64  # sees cat(A, B); ndf 64
    assert abs(first_conv.weight.std().item() - 0.02) < 0.003 and distiller.lambda_l1 == 100.0
    assert distiller.gan_loss.mode == "lsgan"
    vanilla = get_distiller("pix2pix")(create_generator("resnet9", ngf=4, n_blocks=1), None,
                                       DistillConfig(gan_mode="vanilla"))  # fmt: skip
    assert vanilla.gan_loss.mode == "vanilla"
    with pytest.raises(PocketganError, match="needs paired data"):
        make_pix2pix().training_step({"A": torch.zeros(1, 3, 32, 32)}, 0)


def test_init_pix2pix_weights_draws_from_n0_002():
    net = init_pix2pix_weights(create_generator("resnet9", ngf=8, n_blocks=1))
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and all((m.bias == 0).all() for m in convs if m.bias is not None)


def test_kd_lowers_the_distance_to_a_frozen_teacher(tmp_path):
    data = PairDataset()
    distiller = make_kd(lr=1e-3)
    teacher_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    with torch.no_grad():
        target = distiller.teacher(data.a)
    before = mean_l1(distiller.student, data.a, target)
    result = run(distiller, tmp_path / "s", steps=20, dataset=data)
    assert mean_l1(distiller.student, data.a, target) < 0.85 * before
    assert set(result.losses) == {"G_kd"}
    assert all(torch.equal(v, teacher_before[k]) for k, v in distiller.teacher.state_dict().items())
    assert not distiller.teacher.training and distiller.student.training
    assert not any(k.startswith("teacher.") for k in load_checkpoint(result.checkpoint).model)  # not re-saved


def test_kd_needs_a_teacher():
    with pytest.raises(PocketganError, match="kd needs a teacher"):
        get_distiller("kd")(create_generator("mobile-resnet", ngf=4, n_blocks=1), None, DistillConfig())


# --------------------------------------------------------------------------- the commands


def test_teacher_steps_0_imports_an_official_checkpoint(tmp_path, cli):
    net = create_generator("resnet9", ngf=4, n_blocks=1)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "latest_net_G.pth")
    result = cli("teacher", "--arch", tmp_path / "latest_net_G.pth", "--init-arch", TINY_TEACHER, "--steps", "0",
                 "--out", tmp_path / "teacher")  # fmt: skip
    assert result.code == 0, result.err
    imported = load_model(tmp_path / "teacher")
    assert imported.manifest.provenance["method"] == "import"
    assert imported.manifest.provenance["source"].endswith("latest_net_G.pth")
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in imported.model.state_dict().items())

    from pocketgan.distill.trainer import train_teacher  # the same through the Python API

    out = train_teacher(None, tmp_path / "api", arch=str(tmp_path / "teacher"), steps=0)
    assert out == tmp_path / "api" and load_model(out).manifest.spec == imported.manifest.spec
    with pytest.raises(TypeError, match="unknown training setting"):
        train_teacher(None, tmp_path / "api2", arch=str(tmp_path / "teacher"), step=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["teacher", "--steps", "0", "--arch", TINY_TEACHER], "--steps 0 imports an existing model"),
        (["teacher", "--steps", "3", "--epochs", "1"], "either --steps or --epochs"),
        (["teacher", "--gan-mode", "hinge"], "--gan-mode hinge: expected lsgan or vanilla"),
        (["teacher", "--direction", "up"], "--direction up: expected AtoB or BtoA"),
        (["teacher", "--option", "ndf"], "--option 'ndf': expected key=value"),
        (["teacher", "--size", "32x48", "--data", "."], "--size must be square here"),
        (["teacher", "--size", "big", "--data", "."], "--size takes H or HxW"),
        (["teacher", "--data", "/nonexistent"], "--data /nonexistent: no such dataset directory"),
        (["distill", "--method", "kd", "--teacher", TINY_TEACHER, "--data", "."], "expected a model directory"),
        (["distill", "--method", "kd", "--data", "."], "kd needs a teacher (--teacher DIR)"),
    ],
)
def test_commands_reject_bad_input_in_one_line(tmp_path, cli, args, message):
    result = cli(*args, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith("error: ") and message in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def write_aligned_dataset(root, count: int = 6, size: int = 32) -> None:
    """A pix2pix *aligned* folder: train/*.png with A | B side by side (B = inverted, mirrored A)."""
    import cv2

    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    for i in range(count):
        a = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
        b = 255 - a[:, ::-1]
        assert cv2.imwrite(str(root / "train" / f"{i}.png"), np.concatenate([a, b], axis=1))


def test_cli_trains_a_teacher_then_distills_a_kd_student(tmp_path, cli):
    from pocketgan.distill.data import dataset_fingerprint

    data, teacher, student = tmp_path / "data", tmp_path / "teacher", tmp_path / "student"
    write_aligned_dataset(data)
    common = ["--data", data, "--batch", "2", "--checkpoint-every", "2", "--no-progress"]

    result = cli("teacher", "--arch", TINY_TEACHER, "-o", teacher, "--steps", "4", "--option", "ndf=4",
                 "--size", "32x32", *common)  # fmt: skip
    assert result.code == 0, result.err
    prov = ModelManifest.load(teacher).provenance
    assert (prov["method"], prov["steps"], prov["batch_size"], prov["size"]) == ("pix2pix", 4, 2, 32)
    assert prov["config"]["options"] == {"ndf": 4} and prov["data"] == str(data)
    assert prov["data_fingerprint"] == dataset_fingerprint(data) and len(prov["data_fingerprint"]) == 64
    assert load_checkpoint(teacher / "train" / "checkpoint.pt").step == 4
    assert result.out.startswith(f"saved {teacher} (pix2pix, 4 steps")

    common += ["--size", "32"]
    distill = ["distill", "--method", "kd", "--teacher", teacher, "--student", TINY_STUDENT, "--out", student, *common]
    result = cli(*distill, "--epochs", "1")  # 6 images / batch 2 = 3 steps
    assert result.code == 0, result.err
    manifest = ModelManifest.load(student)
    assert manifest.spec.arch == "mobile-resnet" and manifest.provenance["method"] == "kd"
    assert manifest.provenance["steps"] == 3 and manifest.provenance["teacher_source"] == str(teacher)
    assert manifest.provenance["teacher_sha256"] == ModelManifest.load(teacher).weights_sha256
    weights = (student / "model.safetensors").read_bytes()

    again = cli(*distill, "--epochs", "1", "--perceptual", "domain")  # resumes: nothing left to do
    assert again.code == 0 and "warning: --perceptual is not used by kd" in again.err
    assert (student / "model.safetensors").read_bytes() == weights
    result = cli(*distill, "--steps", "5")
    assert result.code == 2 and "--no-resume" in result.err and "steps: 3 in the checkpoint, 5 now" in result.err
    assert cli(*distill, "--steps", "5", "--no-resume").code == 0
    assert json.loads((student / "model.json").read_text())["provenance"]["steps"] == 5
