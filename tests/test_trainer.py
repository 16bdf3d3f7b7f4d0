"""The generic training loop: deterministic batches, LR decay, checkpoints, exact resume, NaN stop, logs.

Helpers at the top (``PairDataset``, ``make_pix2pix``, ``make_kd``, ``run``) are shared with
test_teacher_kd.py and the DDP worker of test_distributed.py.
"""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch.utils.data import Dataset

from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.distill.checkpoint import load_checkpoint, seed_everything
from pocketgan.distill.distributed import DistributedContext
from pocketgan.core.contract import ModelManifest
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressEvent
from pocketgan.distill.api import parse_options
from pocketgan.distill.batching import BatchDrawer
from pocketgan.distill.loop import TrainingInterrupted, TrainResult, linear_decay, make_schedulers, train
from pocketgan.models import create_generator, load_model

SIZE = 32


class PairDataset(Dataset):
    """``n`` fixed pairs: A is a smooth random image, B its colour-inverted, mirrored version."""

    def __init__(self, n: int = 6, size: int = SIZE, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 3, size // 8, size // 8, generator=g) * 2 - 1
        self.a = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        self.b = -self.a.flip(-1)
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> dict:
        return {"A": self.a[index], "B": self.b[index], "name": f"pair{index}"}


def make_pix2pix(seed: int = 0, lr: float = 1e-3, cls=None, **options):
    """A tiny pix2pix trainer (resnet ngf 4, one block; PatchGAN ndf 4), built after seeding."""
    seed_everything(seed)
    generator = create_generator("resnet9", ngf=4, n_blocks=1)
    cls = cls or get_distiller("pix2pix")
    return cls(generator, None, DistillConfig(lr=lr, options={"ndf": 4, **options}))


def make_kd(seed: int = 0, lr: float = 1e-3):
    """A tiny KD distiller: a fixed random resnet teacher (ngf 8) and a mobile-resnet student (ngf 4)."""
    from pocketgan.distill.pix2pix import init_pix2pix_weights

    seed_everything(100)
    teacher = init_pix2pix_weights(create_generator("resnet9", ngf=8, n_blocks=1))
    seed_everything(seed)
    student = create_generator("mobile-resnet", ngf=4, n_blocks=1)
    return get_distiller("kd")(student, teacher, DistillConfig(lr=lr))


def run(distiller, out, steps: int = 8, **kwargs) -> TrainResult:
    kwargs = {"batch_size": 2, "seed": 0, "checkpoint_every": 3, "log_every": 2, "image_every": 4, **kwargs}
    return train(distiller, kwargs.pop("dataset", None) or PairDataset(), out_dir=out, steps=steps, **kwargs)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --------------------------------------------------------------------------- batching and schedule


def test_batches_are_seeded_per_epoch_and_sharded_across_ranks():
    data = PairDataset(n=5)
    drawer = BatchDrawer(data, seed=3)
    names = [drawer.item(p)["name"] for p in range(10)]
    assert sorted(names[:5]) == sorted(names[5:]) == [f"pair{i}" for i in range(5)]  # each epoch is a permutation
    assert names[:5] != names[5:]  # a new order every epoch
    assert data.epochs_seen[:5] == [0] * 5 and data.epochs_seen[5:10] == [1] * 5
    assert [BatchDrawer(data, seed=3).item(p)["name"] for p in range(10)] == names  # same seed, same stream
    assert [BatchDrawer(data, seed=4).item(p)["name"] for p in range(10)] != names

    whole = drawer.batch(3, 4, DistributedContext())  # crosses the epoch boundary (positions 12-15)
    shards = [drawer.batch(3, 4, DistributedContext(rank=r, world_size=2)) for r in (0, 1)]
    stream = [drawer.item(p)["name"] for p in range(12, 16)]
    assert whole["name"] == shards[0]["name"] + shards[1]["name"] == stream
    assert data.epochs_seen[-4:] == [2, 2, 2, 3]
    assert torch.equal(whole["A"], torch.cat([s["A"] for s in shards]))
    with pytest.raises(PocketganError, match="not divisible"):
        drawer.batch(0, 3, DistributedContext(rank=0, world_size=2))


def test_linear_decay_holds_then_falls_to_zero():
    factor = linear_decay(10, 0.5)
    assert [factor(s) for s in (0, 4, 5)] == [1.0, 1.0, 1.0]
    assert factor(6) == pytest.approx(0.8) and factor(9) == pytest.approx(0.2) and factor(10) == 0.0
    distiller = make_pix2pix()
    schedulers = make_schedulers(distiller, 10)
    assert set(schedulers) == {"G", "D"}
    for _ in range(8):
        for opt in distiller.optimizers.values():
            opt.step()
        for sched in schedulers.values():
            sched.step()
    assert distiller.optimizers["D"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.4)


def test_parse_options_types_values():
    assert parse_options(["lambda-cd=100", "agd_weights=10,1e4", "use_deep=false", "mode=hinge", "w=0.5"]) == {
        "lambda_cd": 100, "agd_weights": [10, 1e4], "use_deep": False, "mode": "hinge", "w": 0.5,
    }  # fmt: skip
    with pytest.raises(PocketganError, match="key=value"):
        parse_options(["oops"])


# --------------------------------------------------------------------------- a run and its files


def test_run_writes_model_dir_checkpoint_and_tensorboard(tmp_path):
    result = run(make_pix2pix(), tmp_path / "run", steps=6)
    manifest = ModelManifest.load(tmp_path / "run")
    prov = manifest.provenance
    assert (prov["method"], prov["steps"], prov["batch_size"], prov["seed"]) == ("pix2pix", 6, 2, 0)
    assert set(prov["final_losses"]) == {"G_gan", "G_L1", "D_real", "D_fake"} and prov["wall_time_s"] > 0
    assert manifest.spec.arch == "resnet9" and manifest.spec.config["ngf"] == 4
    reloaded = load_model(tmp_path / "run").model
    x = PairDataset().a[:1]
    with torch.no_grad():
        assert torch.allclose(reloaded(x), result_student_output(tmp_path / "run", x))

    checkpoint = load_checkpoint(result.checkpoint)  # torch.load(weights_only=True) inside
    assert checkpoint.step == 6 and set(checkpoint.optimizers) == {"G", "D"}
    assert checkpoint.rng["torch"].dtype == torch.uint8 and set(checkpoint.schedulers) == {"G", "D"}
    assert any(k.startswith("discriminator.") for k in checkpoint.model)
    assert not list((tmp_path / "run" / "train").glob(".*.tmp"))  # atomic writes leave no temporaries

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "train" / "tb"))
    events.Reload()
    assert {"loss/G_L1", "loss/D_real", "lr/G", "speed/images_per_second"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/G_L1")] == [2, 4, 6]
    assert events.Tags()["images"]  # input | target | output grid


def result_student_output(model_dir, x):
    """The output of the saved weights, read back independently through safetensors."""
    from safetensors.torch import load_file

    generator = create_generator("resnet9", ngf=4, n_blocks=1).eval()
    generator.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    return generator(x)


def test_progress_events_carry_speed_and_the_smoothed_losses(tmp_path):
    events: list[ProgressEvent] = []
    result = run(make_pix2pix(), tmp_path / "run", steps=5, progress=events.append)
    assert {e.task for e in events} == {"pix2pix → run"} and {e.total for e in events} == {5}
    assert [e.completed for e in events] == [0, 1, 2, 3, 4, 5, 5]  # created, one per step, finished
    assert [e.finished for e in events].count(True) == 1 and events[-1].finished
    speed, _, losses = events[-1].status.partition(" · ")
    assert speed.endswith(" img/s") and float(speed.split()[0]) > 0
    shown = dict(zip(losses.split()[::2], map(float, losses.split()[1::2]), strict=True))
    assert shown.keys() == result.losses.keys() == {"G_gan", "G_L1", "D_real", "D_fake"}
    for key, value in result.losses.items():  # the smoothed losses, at the bar's 3 significant digits
        assert shown[key] == pytest.approx(value, rel=5e-3), key

    resumed: list[ProgressEvent] = []
    (tmp_path / "run" / "model.json").unlink()
    run(make_pix2pix(), tmp_path / "run", steps=5, progress=resumed.append)  # resumes at its end: no step to do
    assert resumed[-1].completed == 5 and resumed[-1].status == ""
    run(make_pix2pix(), tmp_path / "silent", steps=2, progress=True)  # old callers' booleans mean silent


def test_same_seed_repeats_and_other_seed_differs(tmp_path):
    first, second, other = make_pix2pix(), make_pix2pix(), make_pix2pix(seed=1)
    run(first, tmp_path / "a", steps=4)
    run(second, tmp_path / "b", steps=4)
    run(other, tmp_path / "c", steps=4, seed=1)
    assert_same_state(first, second)
    assert not torch.equal(first.student.model[1].weight, other.student.model[1].weight)


# --------------------------------------------------------------------------- resume


class CrashingPix2Pix(get_distiller("pix2pix")):
    """Dies (like a killed process) at the start of step ``crash_at``."""

    crash_at = 4

    def training_step(self, batch, step):
        if step == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().training_step(batch, step)


class CtrlCPix2Pix(get_distiller("pix2pix")):
    """Receives a real SIGINT in the middle of step ``interrupt_at``."""

    interrupt_at = 4

    def training_step(self, batch, step):
        losses = super().training_step(batch, step)
        if step == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return losses


def test_resume_after_crash_matches_an_uninterrupted_run(tmp_path):
    straight = make_pix2pix()
    run(straight, tmp_path / "straight", steps=8)

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(make_pix2pix(cls=CrashingPix2Pix), tmp_path / "crashed", steps=8)
    assert load_checkpoint(tmp_path / "crashed" / "train" / "checkpoint.pt").step == 3
    assert not (tmp_path / "crashed" / "model.json").exists()

    resumed = make_pix2pix(seed=123)  # different init: the weights must come from the checkpoint
    result = run(resumed, tmp_path / "crashed", steps=8)
    assert result.resumed_from == 3
    assert_same_state(straight, resumed)
    assert load_model(tmp_path / "crashed").manifest.provenance["final_losses"]


def test_ctrl_c_saves_a_checkpoint_and_resume_is_exact(tmp_path):
    straight = make_pix2pix()
    run(straight, tmp_path / "straight", steps=8)

    events: list[ProgressEvent] = []
    with pytest.raises(TrainingInterrupted, match=r"after step 5/8; checkpoint saved to .*checkpoint.pt") as info:
        run(make_pix2pix(cls=CtrlCPix2Pix), tmp_path / "stopped", steps=8, progress=events.append)
    assert isinstance(info.value, KeyboardInterrupt)
    assert load_checkpoint(tmp_path / "stopped" / "train" / "checkpoint.pt").step == 5  # finished the step first
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    statuses = [e.status for e in events]
    assert statuses.index("stopping after this step to save a checkpoint (again to quit at once)") < statuses.index(
        str(info.value)
    )  # fmt: skip
    assert events[-1].finished and events[-1].completed == 5 and events[-1].status == str(info.value)

    resumed = make_pix2pix(seed=7)
    assert run(resumed, tmp_path / "stopped", steps=8).resumed_from == 5
    assert_same_state(straight, resumed)


def test_finished_run_rerun_is_a_no_op_and_model_is_not_overwritten_by_accident(tmp_path):
    first = make_pix2pix()
    run(first, tmp_path / "run", steps=3)
    again = make_pix2pix(seed=5)
    result = run(again, tmp_path / "run", steps=3)
    assert result.resumed_from == 3
    assert_same_state(first, again)

    (tmp_path / "run" / "train" / "checkpoint.pt").unlink()
    with pytest.raises(PocketganError, match="already holds a model"):
        run(make_pix2pix(), tmp_path / "run", steps=3)

    untrained = make_pix2pix()
    assert run(untrained, tmp_path / "zero", steps=0).resumed_from is None  # saves the initial weights
    assert load_checkpoint(tmp_path / "zero" / "train" / "checkpoint.pt").step == 0
    assert run(make_pix2pix(seed=9), tmp_path / "zero", steps=0).resumed_from == 0


def test_checkpoint_of_a_different_run_is_refused(tmp_path):
    run(make_pix2pix(), tmp_path / "run", steps=3)
    with pytest.raises(PocketganError, match=r"different run \(steps: 3 in the checkpoint, 4 now\).*--no-resume"):
        run(make_pix2pix(), tmp_path / "run", steps=4)
    with pytest.raises(PocketganError, match="lambda_l1"):
        run(make_pix2pix(lambda_l1=10), tmp_path / "run", steps=3)
    with pytest.raises(PocketganError, match="different run.*data"):
        run(make_pix2pix(), tmp_path / "run", steps=3, run_info={"data": "elsewhere"})

    fresh = run(make_pix2pix(), tmp_path / "run", steps=4, resume=False)
    assert fresh.resumed_from is None and load_checkpoint(fresh.checkpoint).step == 4


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "run" / "train").mkdir(parents=True)
    (tmp_path / "run" / "train" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(PocketganError, match="cannot read the training checkpoint.*--no-resume"):
        run(make_pix2pix(), tmp_path / "run", steps=2)


# --------------------------------------------------------------------------- NaN guard


class ExplodingPix2Pix(get_distiller("pix2pix")):
    """Feeds NaN pixels from step ``explode_at`` on, so the losses become NaN."""

    explode_at = 4

    def training_step(self, batch, step):
        if step >= self.explode_at:
            batch = {**batch, "A": batch["A"] * float("nan")}
        return super().training_step(batch, step)


class NaNReportingPix2Pix(get_distiller("pix2pix")):
    """Returns an infinite loss value at step 1 (caught by the trainer's own check)."""

    def training_step(self, batch, step):
        losses = super().training_step(batch, step)
        return {**losses, "G_L1": float("inf")} if step == 1 else losses


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    distiller = make_pix2pix(cls=ExplodingPix2Pix)
    with pytest.raises(PocketganError, match=r"step 5/8: loss D is nan.*last good checkpoint \(step 4\)"):
        run(distiller, out, steps=8, checkpoint_every=2)
    checkpoint = load_checkpoint(out / "train" / "checkpoint.pt")
    assert checkpoint.step == 4
    assert all(torch.isfinite(v).all() for v in checkpoint.model.values() if v.is_floating_point())
    assert not (out / "model.json").exists()

    with pytest.raises(PocketganError, match=r"step 2/8: loss G_L1 is inf.*no checkpoint had been written"):
        run(make_pix2pix(cls=NaNReportingPix2Pix), tmp_path / "other", steps=8)


def test_cli_maps_training_errors_to_one_line(tmp_path, cli):
    result = cli("distill", "--method", "nope", "--teacher", str(tmp_path), "--student", "mobile-resnet:ngf=4",
                 "--data", str(tmp_path), "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.code == 2 and result.err.startswith("error: unknown method 'nope'") and result.err.count("\n") == 1
