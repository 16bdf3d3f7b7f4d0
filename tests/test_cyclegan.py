"""CycleGAN teachers: the losses, the history pool, exact resume, G_B beside G_A, and the unpaired builder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.checkpoint import load_checkpoint, save_checkpoint, seed_everything
from pocketgan.distill.cyclegan import CycleGANCore, CycleGANTrainer, CycleSettings, cycle_loss, identity_loss
from pocketgan.distill.image_pool import ImagePool
from pocketgan.models import create_generator, load_model
from test_trainer import assert_same_state, run

TINY = {"ndf": 4, "pool_size": 2}


def make_cyclegan(seed: int = 0, cls=None, lr: float = 1e-3, **options) -> CycleGANTrainer:
    """A tiny CycleGAN (resnet ngf 4, one block; PatchGANs ndf 4; a 2-image pool), built after seeding."""
    seed_everything(seed)
    generator = create_generator("resnet9", ngf=4, n_blocks=1)
    cls = cls or get_distiller("cyclegan")
    return cls(generator, None, DistillConfig(lr=lr, seed=0, unpaired=True, options={**TINY, **options}))


def images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --------------------------------------------------------------------------- losses


def test_cycle_and_identity_losses_by_hand():
    real = torch.zeros(1, 1, 2, 2)
    other = torch.tensor([[[[0.1, -0.2], [0.3, -0.4]]]])  # mean |difference| = 0.25
    assert cycle_loss(real, other, 10.0).item() == pytest.approx(2.5)
    assert identity_loss(real, other, 10.0, 0.5).item() == pytest.approx(1.25)  # 0.25 × λ_cycle 10 × λ_idt 0.5
    assert identity_loss(real, real, 10.0, 0.5).item() == 0.0


def test_generator_losses_on_tiny_models_are_the_cycle_and_identity_of_both_directions():
    torch.manual_seed(0)
    g_a = create_generator("resnet9", ngf=4, n_blocks=1)
    core = CycleGANCore(g_a, None, CycleSettings(ndf=4, pool_size=2), seed=0)
    a, b = images(2, 1), images(2, 2)
    with torch.no_grad():
        losses, fake_a = core.generator_losses(g_a, a, b, g_a(a))
        g_b = core.G_B
        assert torch.equal(fake_a, g_b(b))
        assert losses["cycle_A"].item() == pytest.approx(10 * (g_b(g_a(a)) - a).abs().mean().item(), rel=1e-5)
        assert losses["cycle_B"].item() == pytest.approx(10 * (g_a(g_b(b)) - b).abs().mean().item(), rel=1e-5)
        assert losses["idt_A"].item() == pytest.approx(5 * (g_a(b) - b).abs().mean().item(), rel=1e-5)
        assert losses["idt_B"].item() == pytest.approx(5 * (g_b(a) - a).abs().mean().item(), rel=1e-5)
        # LSGAN generator term: mean (D(fake) - 1)^2
        assert losses["G_A"].item() == pytest.approx(((core.D_A(g_a(a)) - 1) ** 2).mean().item(), rel=1e-5)
    no_identity = CycleGANCore(g_a, None, CycleSettings(ndf=4, lambda_identity=0.0), seed=0)
    assert {"idt_A", "idt_B"}.isdisjoint(no_identity.generator_losses(g_a, a, b, g_a(a))[0])


def test_discriminators_are_unconditional_instance_norm_patchgans_and_g_b_is_a_fresh_copy():
    d = make_cyclegan()
    assert d.cycle.D_A.model[0].in_channels == 3 and d.cycle.D_B.model[0].in_channels == 3
    assert any(isinstance(m, nn.InstanceNorm2d) for m in d.cycle.D_A.modules())
    assert d.cycle.G_B.state_dict().keys() == d.student.state_dict().keys()
    assert not torch.equal(d.cycle.G_B.model[1].weight, d.student.model[1].weight)
    assert set(d.optimizers) == {"G", "D"} and d.extra_outputs() == {"G_B": d.cycle.G_B}


def test_a_few_steps_train_both_generators_and_both_discriminators():
    d = make_cyclegan(lr=2e-3)
    before = {name: [p.detach().clone() for p in m.parameters()]
              for name, m in (("G_A", d.student), ("G_B", d.cycle.G_B), ("D_A", d.cycle.D_A), ("D_B", d.cycle.D_B))}
    batch = {"A": images(2, 1), "B": images(2, 2)}
    first = d.training_step(batch, 0)
    for step in range(1, 6):
        logs = d.training_step(batch, step)
    assert set(logs) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    assert logs["cycle_A"] < first["cycle_A"] and logs["cycle_B"] < first["cycle_B"]
    for name, module in (("G_A", d.student), ("G_B", d.cycle.G_B), ("D_A", d.cycle.D_A), ("D_B", d.cycle.D_B)):
        assert any(not torch.equal(p, q) for p, q in zip(module.parameters(), before[name])), name


def test_pix2pix_refuses_unpaired_data():
    generator = create_generator("resnet9", ngf=4, n_blocks=1)
    with pytest.raises(PocketganError, match="pix2pix needs paired data"):
        get_distiller("pix2pix")(generator, None, DistillConfig(unpaired=True, options={"ndf": 4}))


# --------------------------------------------------------------------------- the history pool


def test_pool_returns_its_input_until_full_then_a_stored_image_half_of_the_time():
    pool = ImagePool(3, seed=0)
    first = images(3, 0)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 3
    seen = {tuple(img.flatten()[:4].tolist()) for img in first}
    from_pool = 0
    for i in range(400):
        new = images(1, 100 + i)
        out = pool.query(new)
        if not torch.equal(out, new):
            assert tuple(out[0].flatten()[:4].tolist()) in seen  # an image stored earlier, not a new one
            from_pool += 1
        seen.add(tuple(new[0].flatten()[:4].tolist()))
    assert 160 <= from_pool <= 240  # p = 1/2 (binomial sd 10)
    assert int(pool.queries) == 401


def test_pool_is_deterministic_under_its_seed_and_leaves_the_global_rng_alone():
    def outputs(seed: int) -> list[torch.Tensor]:
        pool = ImagePool(2, seed=seed)
        return [pool.query(images(2, i)) for i in range(12)]

    state = torch.get_rng_state()
    a, b, c = outputs(0), outputs(0), outputs(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert torch.equal(ImagePool(0).query(images(2, 0)), images(2, 0))  # size 0: no history


def test_pool_state_round_trips_through_a_checkpoint_file(tmp_path):
    from pocketgan.distill.checkpoint import Checkpoint

    pool = ImagePool(2, seed=3)
    for i in range(5):
        pool.query(images(2, i))
    path = save_checkpoint(Checkpoint(step=5, identity={}, model=pool.state_dict(), optimizers={}, schedulers={}),
                           tmp_path / "checkpoint.pt")  # fmt: skip
    restored = ImagePool(2, seed=3)  # fresh: nothing stored, the images not even allocated
    restored.load_state_dict(load_checkpoint(path).model)
    assert torch.equal(restored.images, pool.images) and int(restored.count) == 2 and int(restored.queries) == 5
    for i in range(5, 12):
        assert torch.equal(restored.query(images(2, i)), pool.query(images(2, i)))


# --------------------------------------------------------------------------- resume and outputs


class CrashingCycleGAN(CycleGANTrainer):
    """Dies (like a killed process) at the start of step ``crash_at``."""

    crash_at = 4

    def training_step(self, batch, step):
        if step == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().training_step(batch, step)


def test_resume_after_crash_is_bit_identical_pool_included(tmp_path):
    straight = make_cyclegan()
    run(straight, tmp_path / "straight", steps=8)
    assert int(straight.cycle.pool_fake_b.count) == 2  # full: the later steps drew from it

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(make_cyclegan(cls=CrashingCycleGAN), tmp_path / "crashed", steps=8)
    checkpoint = load_checkpoint(tmp_path / "crashed" / "train" / "checkpoint.pt")
    assert checkpoint.step == 3 and "cycle.pool_fake_b.images" in checkpoint.model

    resumed = make_cyclegan(seed=123)  # different init: everything must come from the checkpoint
    assert run(resumed, tmp_path / "crashed", steps=8).resumed_from == 3
    assert_same_state(straight, resumed)  # G_A, G_B, D_A, D_B and both pools


@pytest.fixture(scope="module")
def unpaired_data(tmp_path_factory):
    from pocketgan.distill.data import build_dataset

    return build_dataset("photos2stylized-unpaired", tmp_path_factory.mktemp("data") / "unpaired", size=32,
                         count=8, val_count=4)  # fmt: skip


def test_teacher_api_saves_g_a_with_g_b_beside_it_and_omgd_starts_from_both(unpaired_data, tmp_path):
    from pocketgan.distill.api import distill_student, train_teacher
    from pocketgan.distill.features.domain import DomainConfig, train_domain_network

    out = train_teacher(unpaired_data, tmp_path / "teacher", method="cyclegan", arch="resnet9:ngf=4,n_blocks=1",
                        steps=2, batch_size=2, size=32, options={"ndf": 4})  # fmt: skip
    g_a, g_b = load_model(out), load_model(out / "G_B")
    assert g_a.manifest.provenance["method"] == "cyclegan" and g_a.manifest.provenance["config"]["unpaired"]
    assert g_b.manifest.provenance["role"] == "G_B"
    assert g_a.model.state_dict().keys() == create_generator("resnet9", ngf=4, n_blocks=1).state_dict().keys()

    feature = train_domain_network(torch.rand(8, 3, 32, 32) * 2 - 1, DomainConfig(widths=(4, 8), steps=2, crop=32))
    weights = tmp_path / "feature.safetensors"
    from pocketgan.distill.features.domain import save_domain_network

    save_domain_network(feature, weights)
    student = distill_student("omgd", out, "mobile-resnet:ngf=4,n_blocks=1", unpaired_data, tmp_path / "omgd",
                              perceptual=str(weights), steps=1, batch_size=2, size=32,
                              options={"ndf": 4, "pool_size": 2})  # fmt: skip
    provenance = load_model(student).manifest.provenance
    assert provenance["G_B_sha256"] == g_b.manifest.weights_sha256
    assert provenance["config"]["unpaired"] is True


# --------------------------------------------------------------------------- the unpaired builder


def _rect(crop: dict) -> tuple[int, int, int, int]:
    return crop["x"], crop["y"], crop["x"] + crop["side"], crop["y"] + crop["side"]


def _overlap(r: tuple[int, int, int, int], s: tuple[int, int, int, int]) -> bool:
    return r[0] < s[2] and s[0] < r[2] and r[1] < s[3] and s[1] < r[3]


def test_unpaired_builder_no_b_crop_overlaps_any_a_crop(tmp_path):
    from pocketgan.distill.data import build_dataset, open_dataset

    root = build_dataset("photos2stylized-unpaired", tmp_path / "d", size=32, count=40, val_count=12)
    info = json.loads((root / "dataset.json").read_text())
    assert info["layout"] == "unaligned" and info["counts"] == {"trainA": 40, "trainB": 40, "valA": 12, "valB": 12}
    crops = json.loads((root / "crops.json").read_text())
    a_crops = crops["trainA"] + crops["valA"]
    b_crops = crops["trainB"] + crops["valB"]
    for b in b_crops:
        for a in a_crops:
            assert not (a["photo"] == b["photo"] and _overlap(_rect(a), _rect(b))), (a, b)
    for train in crops["trainA"] + crops["trainB"]:  # and train shares no pixel with val
        for val in crops["valA"] + crops["valB"]:
            assert not (train["photo"] == val["photo"] and _overlap(_rect(train), _rect(val)))
    dataset = open_dataset(root, split="val")
    assert dataset.layout == "unaligned" and len(dataset) == 12 and dataset[0]["B"].shape == (3, 32, 32)
    again = build_dataset("photos2stylized-unpaired", tmp_path / "e", size=32, count=40, val_count=12)
    assert json.loads((again / "dataset.json").read_text())["content_hash"] == info["content_hash"]


def test_unpaired_builder_b_images_are_stylized(tmp_path):
    from pocketgan.distill.data import build_dataset, read_rgb

    root = build_dataset("photos2stylized-unpaired", tmp_path / "d", size=32, count=6, val_count=2)
    a = np.stack([read_rgb(p) for p in sorted((root / "trainA").glob("*.png"))]).astype(float)
    b = np.stack([read_rgb(p) for p in sorted((root / "trainB").glob("*.png"))]).astype(float)
    # stylization flattens colour regions: B images have markedly less fine detail than photo crops
    detail = lambda x: np.abs(np.diff(x, axis=2)).mean()  # noqa: E731
    assert detail(b) < 0.8 * detail(a)


def test_junyanz_g_a_and_g_b_checkpoints_import_together_and_initialise_training(unpaired_data, tmp_path, cli):
    torch.manual_seed(0)
    g_a, g_b = (create_generator("resnet9", ngf=4, n_blocks=1) for _ in range(2))
    torch.save(g_a.state_dict(), tmp_path / "latest_net_G_A.pth")
    torch.save(g_b.state_dict(), tmp_path / "latest_net_G_B.pth")
    imported = tmp_path / "imported"
    result = cli("teacher", "--arch", tmp_path / "latest_net_G_A.pth", "--init-arch", "resnet9:ngf=4,n_blocks=1",
                 "--steps", "0", "-o", imported)  # fmt: skip
    assert result.code == 0, result.err
    for directory, model in ((imported, g_a), (imported / "G_B", g_b)):
        loaded = load_model(directory).model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())

    result = cli("teacher", "--method", "cyclegan", "--data", unpaired_data, "--arch", imported, "-o",
                 tmp_path / "trained", "--steps", "1", "--batch", "2", "--size", "32", "--option", "ndf=4",
                 "--no-progress")  # fmt: skip
    assert result.code == 0, result.err
    provenance = load_model(tmp_path / "trained").manifest.provenance
    assert provenance["G_B_sha256"] == load_model(imported / "G_B").manifest.weights_sha256  # G_B started from it

    refused = cli("teacher", "--data", unpaired_data, "-o", tmp_path / "p2p", "--steps", "1", "--size", "32")
    assert refused.code == 2 and "pix2pix needs paired data" in refused.err and refused.err.count("\n") == 1


def test_evaluation_on_unpaired_data_skips_the_ground_truth_scores_and_keeps_fid(unpaired_data):
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.features.domain import DomainConfig, train_domain_network
    from pocketgan.distill.metrics import evaluate

    feature = train_domain_network(torch.rand(8, 3, 32, 32) * 2 - 1, DomainConfig(widths=(4, 8), steps=2, crop=32))
    dataset = open_dataset(unpaired_data, split="val", size=32)
    torch.manual_seed(0)
    model, teacher = (create_generator("resnet9", ngf=4, n_blocks=1) for _ in range(2))
    report = evaluate(model, dataset, feature=feature, teacher=teacher, batch_size=4)
    assert report.value("psnr") is None and report.value("ssim") is None and report.value("lpips_style") is None
    assert report.value("psnr", "teacher") is not None and report.value("fid") is not None
    assert any("unpaired data" in note for note in report.notes)
