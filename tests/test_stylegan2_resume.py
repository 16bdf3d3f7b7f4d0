"""StyleGAN2 runs: bit-identical resume (teacher, nickel-dime), logits and snapshots over training, the API and
CLI end to end (teacher → uniformly pruned student), and data-parallel training under torchrun (gloo)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pocketgan.core.contract import ModelManifest
from pocketgan.core.errors import PocketganError
from pocketgan.distill.checkpoint import load_checkpoint
from pocketgan.distill.loop import train
from pocketgan.distill.run_log import list_snapshots, read_run_log

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from ddp_worker import assert_identical_ranks, run_two_ranks  # noqa: E402
from test_stylegan2_distill import (  # noqa: E402
    REF,
    SIZE,
    RealImages,
    make_student_distiller,
    make_teacher_trainer,
)

STEPS = 6


def run(distiller, out: Path, steps: int = STEPS, **kwargs):
    kwargs = {"batch_size": 4, "seed": 0, "checkpoint_every": 2, "log_every": 2, "image_every": 3, **kwargs}
    return train(distiller, RealImages(), out_dir=out, steps=steps, **kwargs)


def crashing(distiller, at: int):
    """``distiller`` dying (like a killed process) at the start of step ``at``."""
    step_fn = distiller.training_step

    def training_step(batch, step):
        if step == at:
            raise RuntimeError("simulated kill")
        return step_fn(batch, step)

    distiller.training_step = training_step
    return distiller


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("make", [make_teacher_trainer, lambda seed=0: make_student_distiller("nickel-dime", seed),
                                  lambda seed=0: make_student_distiller("itgc", seed)],
                         ids=["stylegan2-teacher", "nickel-dime", "itgc"])  # fmt: skip
def test_resume_after_a_kill_is_bit_identical(tmp_path, make):
    straight = make()
    run(straight, tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(crashing(make(), at=3), tmp_path / "killed")
    assert load_checkpoint(tmp_path / "killed" / "train" / "checkpoint.pt").step == 2
    resumed = make(seed=123)  # other initial weights: everything must come from the checkpoint
    assert run(resumed, tmp_path / "killed").resumed_from == 2
    assert_same_state(straight, resumed)  # generators, discriminators (both, for NICKEL), G_ema, buffers
    for a, b in zip(straight.optimizers.values(), resumed.optimizers.values()):
        for sa, sb in zip(a.state_dict()["state"].values(), b.state_dict()["state"].values()):
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the logits logged after the checkpoint were redone, not duplicated
    assert read_run_log(tmp_path / "killed") == read_run_log(tmp_path / "straight")


def test_both_discriminators_logits_are_logged_every_n_steps(tmp_path):
    run(make_student_distiller("nickel", logit_every=2, snapshot_every=4), tmp_path / "s", steps=5, image_every=5)
    log = read_run_log(tmp_path / "s")
    assert [entry["step"] for entry in log] == [2, 4]
    assert all({"D_real", "D_fake", "Dt_real", "Dt_fake"} <= set(e) and np.isfinite(list(e.values())).all() for e in log)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "s" / "train" / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("metrics/Dt_fake")] == [2, 4]
    assert events.Scalars("metrics/D_real")[0].value == pytest.approx(log[0]["D_real"])
    assert events.Tags()["images"]  # real | teacher | student on fixed latents
    assert [step for step, _ in list_snapshots(tmp_path / "s")] == [4, 5]  # every 4 steps and at the end
    final = load_file(str(list_snapshots(tmp_path / "s")[-1][1]))
    saved = load_file(str(tmp_path / "s" / "model.safetensors"))
    assert final.keys() == saved.keys() and all(torch.equal(final[k], saved[k]) for k in saved)


# --------------------------------------------------------------------------- API and CLI


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """An unconditional dataset on disk: ``train/*.png`` single images (layout ``images``)."""
    import cv2

    root = tmp_path_factory.mktemp("faces")
    (root / "train").mkdir()
    for i, image in enumerate(RealImages(n=8).images):
        pixels = ((image.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "train" / f"{i:03d}.png"), pixels[:, :, ::-1])
    (root / "dataset.json").write_text(json.dumps({"layout": "images"}))
    return root


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory) -> Path:
    from pocketgan.distill.features.domain import DomainFeatureNet, save_domain_network
    from pocketgan.distill.checkpoint import seed_everything

    seed_everything(3)
    return save_domain_network(DomainFeatureNet(widths=(4, 8)).freeze(), tmp_path_factory.mktemp("f") / "tiny.safetensors")


ARCH = "stylegan2:" + ",".join(f"{k}={v}" for k, v in REF.items())


@pytest.fixture(scope="module")
def teacher_dir(image_folder, tmp_path_factory) -> Path:
    from pocketgan.distill.api import train_teacher

    out = tmp_path_factory.mktemp("teacher") / "T"
    train_teacher(image_folder, out, arch=ARCH, method="stylegan2", steps=2, batch_size=4,
                  options={"r1_every": 2, "logit_every": 1})  # fmt: skip
    return out


def test_teacher_api_saves_g_ema_and_its_discriminator(teacher_dir):
    from pocketgan.distill.stylegan2.discriminator_io import load_discriminator
    from pocketgan.models import load_model

    teacher = load_model(teacher_dir)
    assert teacher.model.io.input_kind == "latent" and teacher.manifest.provenance["method"] == "stylegan2"
    assert teacher.manifest.provenance["config"]["lr"] == 0.002  # StyleGAN2's lr when --lr is not given
    checkpoint = load_checkpoint(teacher_dir / "train" / "checkpoint.pt").model
    ema = {k.removeprefix("student."): v for k, v in checkpoint.items() if k.startswith("student.")}
    assert all(torch.equal(ema[k], v) for k, v in teacher.model.state_dict().items())  # the saved model is G_ema
    discriminator = load_discriminator(teacher_dir)
    trained = {k.removeprefix("critic.D."): v for k, v in checkpoint.items() if k.startswith("critic.D.")}
    assert all(torch.equal(trained[k], v) for k, v in discriminator.state_dict().items())
    assert discriminator(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, 1)
    assert [e["step"] for e in read_run_log(teacher_dir)] == [1, 2]


def test_nickel_dime_api_prunes_the_teacher_uniformly_and_keeps_training_its_discriminator(
    teacher_dir, image_folder, feature_file, tmp_path
):
    from pocketgan.distill.api import distill_student
    from pocketgan.models import load_model

    out = distill_student("nickel-dime", teacher_dir, None, image_folder, tmp_path / "S", perceptual=str(feature_file),
                          steps=2, batch_size=4, options={"ratio": 0.5, "r1_every": 2, "logit_every": 1})  # fmt: skip
    student = load_model(out)
    widths = student.model.current_widths()
    assert widths["synthesis.b32.conv1.conv"] == 8 and widths["synthesis.b4.const"] == 8  # ceil(0.5 · 16)
    provenance = student.manifest.provenance
    assert provenance["method"] == "nickel-dime" and "pruned uniformly, ratio 0.5" in provenance["student_source"]
    log = read_run_log(out)
    assert [e["step"] for e in log] == [1, 2] and {"Dt_real", "Dt_fake"} <= set(log[0])
    with torch.no_grad():  # same latents: a student close to a copy of its teacher at the start
        image = student.model(torch.randn(2, 32))
    assert image.shape == (2, 3, SIZE, SIZE) and torch.isfinite(image).all()


def test_kd_dispatches_on_the_teachers_input_kind(teacher_dir, image_folder, feature_file, tmp_path):
    from pocketgan.distill.api import _registry_name, distill_student

    assert _registry_name("kd", teacher_dir) == "stylegan2-kd"
    assert _registry_name("kd", None) == "kd"
    out = distill_student("kd", teacher_dir, None, image_folder, tmp_path / "kd", perceptual=str(feature_file), steps=1,
                          batch_size=4, options={"ratio": 0.5})  # fmt: skip
    assert ModelManifest.load(out).provenance["method"] == "stylegan2-kd"


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    """A StyleGAN2 checkpoint file with ``g_ema`` and ``d`` (as people have them), written here."""
    from pocketgan.models import create_discriminator
    from test_stylegan2_distill import tiny_generator

    path = tmp_path_factory.mktemp("ckpt") / "stylegan2-tiny.pt"
    torch.manual_seed(4)
    torch.save({"g_ema": tiny_generator(4).state_dict(), "d": create_discriminator("stylegan2", **REF).state_dict()},
               path)  # fmt: skip
    return path


def test_a_checkpoint_file_is_a_teacher_with_its_discriminator(checkpoint_file, image_folder, tmp_path, cli):
    from pocketgan.distill.api import distill_student
    from pocketgan.distill.stylegan2.discriminator_io import load_discriminator

    checkpoint = torch.load(checkpoint_file, weights_only=True)
    # NICKEL needs the teacher's discriminator: the checkpoint's d
    out = distill_student("nickel", checkpoint_file, None, image_folder, tmp_path / "S", steps=1, batch_size=4,
                          options={"ratio": 0.5})  # fmt: skip
    provenance = ModelManifest.load(out).provenance
    assert provenance["teacher_source"] == str(checkpoint_file) and len(provenance["teacher_sha256"]) == 64
    # import with --steps 0: the generator and its discriminator, for later runs
    result = cli("teacher", "--arch", str(checkpoint_file), "--init-arch", "stylegan2", "--steps", "0", "-o",
                 str(tmp_path / "T"))  # fmt: skip
    assert result.code == 0, result.err
    imported = load_discriminator(tmp_path / "T")
    assert all(torch.equal(imported.state_dict()[k], v) for k, v in checkpoint["d"].items())


def test_bad_stylegan2_distillation_input_is_one_line_and_writes_nothing(teacher_dir, image_folder, tmp_path):
    from pocketgan.distill.api import distill_student

    with pytest.raises(PocketganError, match="needs --option ratio=P .* or --student DIR"):
        distill_student("itgc", teacher_dir, "mobile-resnet:ngf=16", image_folder, tmp_path / "a", steps=1)
    with pytest.raises(PocketganError, match="either --student DIR or --option ratio=P"):
        distill_student("itgc", teacher_dir, str(teacher_dir), image_folder, tmp_path / "b", steps=1,
                        options={"ratio": 0.5})  # fmt: skip
    with pytest.raises(PocketganError, match="StyleGAN2 \\(latent input\\): use --method kd, itgc"):
        distill_student("gan-compression", teacher_dir, "mobile-resnet:ngf=4", image_folder, tmp_path / "c", steps=1)
    with pytest.raises(PocketganError, match=r"option ratio=1.0 must be in \(0, 1\)"):
        distill_student("itgc", teacher_dir, None, image_folder, tmp_path / "d", steps=1, options={"ratio": 1.0})
    with pytest.raises(PocketganError, match="--size 64: this StyleGAN2 makes 32×32 images"):
        distill_student("itgc", teacher_dir, None, image_folder, tmp_path / "e", steps=1, size=64,
                        options={"ratio": 0.5})  # fmt: skip
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_cli_teacher_and_distill_on_an_image_folder(image_folder, feature_file, tmp_path, cli):
    teacher = tmp_path / "T"
    result = cli("teacher", "--method", "stylegan2", "--arch", ARCH, "--data", str(image_folder), "-o", str(teacher),
                 "--steps", "1", "--batch", "4", "--no-progress")  # fmt: skip
    assert result.code == 0, result.err
    assert (teacher / "discriminator" / "discriminator.json").exists()
    result = cli("distill", "--method", "nickel", "--teacher", str(teacher), "--data", str(image_folder), "-o",
                 str(tmp_path / "S"), "--option", "ratio=0.7", "--steps", "1", "--batch", "4", "--no-progress")  # fmt: skip
    assert result.code == 0, result.err
    assert ModelManifest.load(tmp_path / "S").spec.widths["synthesis.b32.conv1.conv"] == 5  # ceil(0.3 · 16)


# --------------------------------------------------------------------------- DDP




def test_ddp_gloo_two_processes_end_with_identical_weights(tmp_path):
    run_two_ranks(
        tmp_path,
        imports="from test_stylegan2_distill import RealImages, make_student_distiller, make_teacher_trainer",
        distillers='("nickel-dime", make_student_distiller("nickel-dime", seed=ctx.rank)), '
        '("stylegan2", make_teacher_trainer(seed=ctx.rank))',
        dataset="RealImages()",
        train_args="steps=3, batch_size=8, checkpoint_every=2, log_every=1, image_every=0",
        timeout=300,
    )
    for name in ("nickel-dime", "stylegan2"):  # generators (G_ema), both discriminators, buffers (w_avg)
        assert_identical_ranks(tmp_path, name)
    manifest = ModelManifest.load(tmp_path / "nickel-dime")
    assert manifest.provenance["world_size"] == 2
    assert [e["step"] for e in read_run_log(tmp_path / "nickel-dime")] == [2]  # rank 0 logs (logit_every 2)
