"""OMGD: online teachers, a student that learns from the teachers alone, on ResNet and U-Net teachers."""

from __future__ import annotations

import copy
import inspect
import json

import pytest
import torch
from torch import nn

from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.omgd import OMGDDistiller, TeacherSignals
from pocketgan.core.errors import PocketganError
from pocketgan.models import create_generator



TINY = {"ndf": 4, "deep_ngf": 4, "deep_blocks": 2}


class TinyPerceptual(nn.Module):
    """A frozen two-level conv net with the feature-network contract: ``[-1, 1]`` → list of maps."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(123)
        self.levels = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU()),
        ])  # fmt: skip
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


def batch(seed: int = 0, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    return {"A": a, "B": (a.flip(-1) * 0.8).tanh()}  # a learnable, deterministic mapping


def make(teacher="resnet:8", student="mobile-resnet", lr=2e-4, seed=0, **options) -> OMGDDistiller:
    torch.manual_seed(seed)
    family, _, ngf = teacher.partition(":")
    if family == "unet":
        t = create_generator("unet128", num_downs=5, ngf=int(ngf or 8))
    else:
        t = create_generator("resnet9", ngf=int(ngf or 8), n_blocks=2)
    s = (create_generator("unet128", num_downs=5, ngf=4) if student == "unet"
         else create_generator("mobile-resnet", ngf=4, n_blocks=2))  # fmt: skip
    config = DistillConfig(lr=lr, options={**TINY, **options})
    return get_distiller("omgd")(s, t.eval(), config, perceptual=TinyPerceptual())


def student_objective(d: OMGDDistiller, data: dict[str, torch.Tensor]) -> float:
    """The student's loss against the current teachers, without updating anything."""
    with torch.no_grad(), torch.random.fork_rng():
        state = copy.deepcopy(d.channel_distill.state_dict())  # BN running stats
        from pocketgan.models import capture_features

        with capture_features(d.teacher, d.channel_distill.teacher_taps) as feats:
            images = [t(data["A"]) for t in d.teachers]
        value = d.student_losses(data["A"], TeacherSignals.detached(images, feats))["student"].item()
        d.channel_distill.load_state_dict(state)
    return value


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_registered_with_perceptual_and_teacher_needs():
    cls = get_distiller("omgd")
    assert cls is OMGDDistiller and cls.needs_perceptual and cls.needs_teacher


@pytest.mark.parametrize("teacher,student", [("resnet:8", "resnet"), ("unet:8", "unet"), ("unet:8", "resnet")])
def test_a_few_steps_lower_the_student_loss(teacher, student):
    d = make(teacher, student, lr=2e-3)
    data = batch()
    before = student_objective(d, data)
    for step in range(8):
        logs = d.training_step(data, step)
    assert all(v == v and abs(v) != float("inf") for v in logs.values())
    assert {"S_ssim", "S_style", "S_feature", "S_tv", "S_cd", "student", "T_wide_recon", "T_deep_recon"} <= set(logs)
    assert student_objective(d, data) < 0.8 * before


def test_the_student_loss_takes_only_the_input_and_the_teachers():
    assert list(inspect.signature(OMGDDistiller.student_losses).parameters) == ["self", "real_a", "teachers"]


def _run_twice_with_different_targets(steps: int, freeze_teachers: bool, factory=None):
    base = (factory or make)()
    runs = []
    for target_seed in (None, 99):
        d = copy.deepcopy(base)
        if freeze_teachers:
            for name in ("teachers", "D"):
                for group in d.optimizers[name].param_groups:
                    group["lr"] = 0.0
        logs = []
        for step in range(steps):
            data = batch()
            if target_seed is not None:  # garbage ground truth
                data["B"] = torch.randn(data["B"].shape, generator=torch.Generator().manual_seed(target_seed)) * 7
            torch.manual_seed(step)
            logs.append(d.training_step(data, step))
        runs.append((d, logs))
    return runs


def test_the_student_never_sees_ground_truth_one_online_step():
    # Teachers train in this step too: the student learns from their outputs before their update.
    (real, real_logs), (garbage, garbage_logs) = _run_twice_with_different_targets(1, freeze_teachers=False)
    assert real_logs[0]["T_wide_recon"] != garbage_logs[0]["T_wide_recon"]  # B reached the teachers...
    assert not same(params(real.teacher), params(garbage.teacher))
    assert same(params(real.student), params(garbage.student))  # ...and not the student
    assert same(params(real.channel_distill), params(garbage.channel_distill))


def test_the_student_update_is_bit_identical_with_garbage_targets_while_teachers_are_frozen():
    (real, real_logs), (garbage, garbage_logs) = _run_twice_with_different_targets(3, freeze_teachers=True)
    assert all(a["T_deep_recon"] != b["T_deep_recon"] for a, b in zip(real_logs, garbage_logs))
    assert not same(params(real.student), params(make().student))  # the student did train
    assert same(params(real.student), params(garbage.student))
    assert same(params(real.channel_distill), params(garbage.channel_distill))
    assert [a["student"] for a in real_logs] == [b["student"] for b in garbage_logs]


def test_teachers_and_their_discriminators_train_online():
    d = make()
    wide, deep = params(d.teacher), params(d.deep_teacher)
    discs = params(d.discriminators)
    d.training_step(batch(), 0)
    assert not same(wide, params(d.teacher)) and not same(deep, params(d.deep_teacher))
    assert not same(discs, params(d.discriminators))
    assert d.teacher.training and d.deep_teacher.training
    assert all(p.requires_grad for p in d.teacher.parameters())
    assert all(p.requires_grad for p in d.discriminators.parameters())  # frozen only inside the teachers' step


def test_wide_teacher_is_the_given_network_and_deep_teacher_is_narrow_and_deeper():
    teacher = create_generator("resnet9", ngf=8, n_blocks=2)
    d = get_distiller("omgd")(create_generator("mobile-resnet", ngf=4, n_blocks=2), teacher,
                              DistillConfig(options={"ndf": 4}), perceptual=TinyPerceptual())  # fmt: skip
    assert d.teacher is teacher and d.teachers == [teacher, d.deep_teacher]
    assert d.deep_teacher.config["ngf"] == 16 and d.deep_teacher.config["n_blocks"] == 18
    single = make(use_deep="false")
    assert single.deep_teacher is None and len(single.teachers) == 1 and len(single.discriminators) == 1
    logs = single.training_step(batch(), 0)
    assert "T_deep_recon" not in logs and logs["student"] > 0


def test_teacher_discriminators_share_their_first_blocks():
    d = make(d_shared_blocks=2)
    first, second = d.discriminators[0].model, d.discriminators[1].model
    # PatchGAN: [conv, lrelu] + [conv, norm, lrelu] ... : two blocks = the first five modules.
    assert all(first[i] is second[i] for i in range(5)) and first[5] is not second[5]
    unique = {id(p) for p in d.discriminators.parameters()}
    assert len(unique) == sum(1 for _ in d.discriminators.parameters())
    assert sum(p.numel() for p in d.discriminators.parameters()) < 2 * sum(p.numel() for p in first.parameters())
    separate = make(d_shared_blocks=0)
    assert separate.discriminators[0].model[0] is not separate.discriminators[1].model[0]


def test_channel_distillation_uses_adapters_to_the_wide_teachers_widths():
    d = make("resnet:8", "resnet")
    assert [a[0].weight.shape for a in d.channel_distill.adapters] == [(32, 16, 1, 1)] * 3
    u = make("unet:8", "unet")
    pairs = zip(u.channel_distill.pairs, u.channel_distill.adapters)
    assert [(t.stride, a[0].weight.shape[:2]) for (t, _), a in pairs] == [(8, (64, 32)), (4, (32, 16)), (2, (16, 8))]


def test_options_are_read_typed_and_validated():
    d = make(lambda_cd="0", agd_weights="1,0,0,0", feature_layers="0")
    assert d.options.lambda_cd == 0.0 and d.options.weights.ssim == 1 and d.options.layers == (0,)
    logs = d.training_step(batch(), 0)
    assert "S_cd" not in logs and logs["S_style"] == 0
    assert logs["student"] == pytest.approx(logs["S_ssim"] + logs["S_tv"])
    assert make(feature_layers=1).options.layers == (1,) and make().options.layers is None
    with pytest.raises(PocketganError, match="feature_layers"):
        make(feature_layers="first")
    with pytest.raises(PocketganError, match="unknown option lamda_cd"):
        make(lamda_cd=1)
    with pytest.raises(PocketganError, match="use_deep"):
        make(use_deep="maybe")
    with pytest.raises(PocketganError, match="agd_weights"):
        make(agd_weights="1,2")
    with pytest.raises(PocketganError, match="gan"):
        make(gan_mode="wgan")


def test_options_as_the_command_line_parses_them():
    from pocketgan.distill.trainer import parse_options

    options = parse_options(["agd_weights=20,1e3,5,0", "lambda_cd=5e2", "use-deep=false", "feature_layers=0,1",
                             "deep_blocks=3"])  # fmt: skip
    opts = make(**options).options
    assert opts.weights.ssim == 20 and opts.weights.style == 1e3 and opts.weights.tv == 0
    assert opts.lambda_cd == 500 and opts.use_deep is False and opts.layers == (0, 1) and opts.deep_blocks == 3


def test_clear_errors_without_perceptual_network_or_targets():
    with pytest.raises(PocketganError, match="perceptual"):
        get_distiller("omgd")(create_generator("mobile-resnet", ngf=4, n_blocks=2),
                              create_generator("resnet9", ngf=4, n_blocks=2), DistillConfig())  # fmt: skip
    with pytest.raises(PocketganError, match="paired"):
        make().training_step({"A": batch()["A"]}, 0)


def test_training_mode_keeps_the_perceptual_network_frozen():
    d = make()
    d.eval()
    d.train()
    assert d.student.training and not d.perceptual.training
    assert not any(p.requires_grad for p in d.perceptual.parameters())
    running = d.perceptual.levels[0][1].running_mean.clone()
    d.training_step(batch(), 0)
    assert torch.equal(running, d.perceptual.levels[0][1].running_mean)


def test_the_run_records_the_perceptual_networks_key_not_its_name(tmp_path):
    """Two perceptual networks with the same name are two runs: resuming with the other one is refused."""
    from test_teacher_kd import write_aligned_dataset

    from pocketgan.distill import distill_student
    from pocketgan.distill.checkpoint import load_checkpoint
    from pocketgan.distill.features import DomainConfig, load_domain_network, save_domain_network, train_domain_network
    from pocketgan.models import save_model

    data, teacher = tmp_path / "data", tmp_path / "teacher"
    write_aligned_dataset(data, count=4)
    torch.manual_seed(0)
    save_model(create_generator("resnet9", ngf=4, n_blocks=1), teacher)
    photos = torch.rand(4, 3, 32, 32) * 2 - 1
    networks = []
    for seed in (0, 1):  # same name, different weights
        config = DomainConfig(widths=(4, 8), crop=16, steps=2, batch_size=4, seed=seed)
        trained = train_domain_network(photos, config, name="pocketgan-data")
        path = save_domain_network(trained, tmp_path / f"{seed}.safetensors")
        networks.append((path, load_domain_network(path)))
    assert networks[0][1].name == networks[1][1].name and networks[0][1].key != networks[1][1].key

    def distill(perceptual):
        return distill_student("omgd", teacher, "mobile-resnet:ngf=4,n_blocks=1", data, tmp_path / "student",
                               perceptual=str(perceptual), steps=1, batch_size=2, size=32, options=TINY)  # fmt: skip

    out = distill(networks[0][0])
    identity = load_checkpoint(out / "train" / "checkpoint.pt").identity
    assert identity["perceptual"] == networks[0][1].key
    provenance = json.loads((out / "model.json").read_text())["provenance"]
    assert provenance["perceptual"] == networks[0][1].key and provenance["perceptual_network"] == "pocketgan-data"
    (out / "model.json").unlink()  # pretend the run was interrupted at its end
    with pytest.raises(PocketganError, match=r"different run \(perceptual: "):
        distill(networks[1][0])


# --------------------------------------------------------------------------- unpaired data (OMGD's CycleGAN setting)


def make_unpaired(seed: int = 0, g_b=None, **options) -> OMGDDistiller:
    """OMGD on unpaired data: one resnet teacher (ngf 8) trained online as a CycleGAN, a 2-image pool."""
    torch.manual_seed(seed)
    t = create_generator("resnet9", ngf=8, n_blocks=2)
    s = create_generator("mobile-resnet", ngf=4, n_blocks=2)
    config = DistillConfig(unpaired=True, options={"ndf": 4, "pool_size": 2, **options})
    return get_distiller("omgd")(s, t.eval(), config, perceptual=TinyPerceptual(),
                                 companions={"G_B": g_b} if g_b is not None else None)  # fmt: skip


def test_unpaired_mode_is_one_cyclegan_teacher_with_the_horse2zebra_defaults():
    given = create_generator("resnet9", ngf=8, n_blocks=2)
    d = make_unpaired(g_b=given)
    assert d.teachers == [d.teacher] and d.deep_teacher is None and d.discriminators is None
    assert d.cycle.G_B is given and d.options.lambda_cd == 5e2 and d.cycle.settings.gan_mode == "lsgan"
    assert d.cycle.D_A.model[0].in_channels == 3  # unconditional: single images, not (A, B) pairs
    teacher_params = {id(p) for p in d.optimizers["teachers"].param_groups[0]["params"]}
    assert {id(p) for p in given.parameters()} <= teacher_params
    assert make_unpaired(lambda_cd=7).options.lambda_cd == 7.0  # the user's options win
    with pytest.raises(PocketganError, match="one .CycleGAN. teacher"):
        make_unpaired(use_deep=True)
    logs = d.training_step(batch(), 0)
    assert {"T_G_A", "T_cycle_A", "T_idt_B", "T_D_A", "S_ssim", "S_cd", "student"} <= set(logs)


def test_unpaired_student_never_sees_b_one_online_step():
    (real, real_logs), (garbage, garbage_logs) = _run_twice_with_different_targets(1, False, make_unpaired)
    assert real_logs[0]["T_cycle_B"] != garbage_logs[0]["T_cycle_B"]  # B reached the CycleGAN teacher...
    assert not same(params(real.teacher), params(garbage.teacher))
    assert not same(params(real.cycle.G_B), params(garbage.cycle.G_B))
    assert same(params(real.student), params(garbage.student))  # ...and not the student
    assert same(params(real.channel_distill), params(garbage.channel_distill))


def test_unpaired_student_update_is_bit_identical_with_garbage_b_while_the_teacher_is_frozen():
    (real, real_logs), (garbage, garbage_logs) = _run_twice_with_different_targets(3, True, make_unpaired)
    assert all(a["T_D_A"] != b["T_D_A"] for a, b in zip(real_logs, garbage_logs))
    assert not same(params(real.student), params(make_unpaired().student))  # the student did train
    assert same(params(real.student), params(garbage.student))
    assert [a["student"] for a in real_logs] == [b["student"] for b in garbage_logs]
