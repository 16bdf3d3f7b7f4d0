"""The generic training loop that drives any registered :class:`~pocketgan.distill.base.Distiller`.

:func:`train` draws batches itself (step ``k`` always sees the same samples for a
seed, so a resumed run matches an uninterrupted one exactly), decays every
optimizer's learning rate linearly (pix2pix style), shows a progress bar, logs
TensorBoard scalars and image grids, writes atomic checkpoints, resumes from them,
stops cleanly on Ctrl-C or a NaN loss, and finally saves the student as a model
directory. Under ``torchrun`` it runs data-parallel (see
:mod:`pocketgan.distill.distributed`).

Files of a run ``OUT``: ``OUT/model.safetensors`` + ``OUT/model.json`` (the result),
``OUT/train/checkpoint.pt`` and ``OUT/train/tb/`` (TensorBoard).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from pocketgan.console import console
from pocketgan.distill.base import Distiller, NonFiniteLossError, check_finite
from pocketgan.distill.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    capture_rng_state,
    check_identity,
    load_checkpoint,
    normalize,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from pocketgan.distill.distributed import DistributedContext
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import MODEL_JSON
from pocketgan.core.options import parse_key_values

TRAIN_DIR = "train"
IMAGE_SAMPLES = 4
LOSS_SMOOTHING = 0.9  # exponential moving average of the losses shown and recorded


@dataclass
class TrainResult:
    """What :func:`train` produced: the model directory and how the run went."""

    model_dir: Path
    steps: int
    losses: dict[str, float]
    wall_time: float
    resumed_from: int | None
    checkpoint: Path


# --------------------------------------------------------------------------- batches


class BatchDrawer:
    """Deterministic batches: one permutation per epoch from a generator seeded by ``(seed, epoch)``.

    The samples form an endless stream (epoch after epoch); global batch ``k`` is
    stream positions ``[k·B, (k+1)·B)`` and each rank takes its contiguous shard.
    ``dataset.set_epoch(epoch)`` is called before each item when the dataset has it,
    so augmentation is a function of (seed, epoch, index) too.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.size = len(dataset)  # type: ignore[arg-type]
        if self.size == 0:
            raise PocketganError("the training dataset is empty")
        self.seed = seed
        self._permutations: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            state = np.random.SeedSequence([self.seed, epoch]).generate_state(2, dtype=np.uint32)
            generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            self._permutations = {e: p for e, p in self._permutations.items() if e >= epoch - 1}
            self._permutations[epoch] = torch.randperm(self.size, generator=generator)
        return self._permutations[epoch]

    def item(self, position: int) -> dict[str, Any]:
        epoch, offset = divmod(position, self.size)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        return self.dataset[int(self.permutation(epoch)[offset])]

    def batch(self, step: int, global_batch: int, context: DistributedContext) -> dict[str, Any]:
        offset, size = context.shard(global_batch)
        start = step * global_batch + offset
        return default_collate([self.item(p) for p in range(start, start + size)])


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# --------------------------------------------------------------------------- schedule


def linear_decay(steps: int, decay_from: float) -> Callable[[int], float]:
    """LR factor: 1 until ``decay_from · steps``, then linear towards 0 at ``steps`` (pix2pix's ``linear``)."""
    start = int(round(min(max(decay_from, 0.0), 1.0) * steps))
    span = max(1, steps - start)
    return lambda step: 1.0 - max(0, step - start) / span


def make_schedulers(distiller: Distiller, steps: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One :class:`LambdaLR` with :func:`linear_decay` per optimizer of ``distiller``."""
    factor = linear_decay(steps, distiller.config.decay_from)
    return {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in distiller.optimizers.items()}


# --------------------------------------------------------------------------- monitoring


class TrainingMonitor:
    """Progress bar, smoothed losses, images/second and TensorBoard, all on rank 0 only."""

    def __init__(self, log_dir: Path, *, total: int, start: int, enabled: bool, progress: bool, title: str) -> None:
        self.enabled = enabled
        self.losses: dict[str, float] = {}
        self.images_per_second = 0.0
        self._window_images, self._window_start = 0, time.perf_counter()
        self.writer = None
        self.progress = None
        if not enabled:
            return
        from pocketgan.core.optional import require

        tensorboard = require("torch.utils.tensorboard", "train", "TensorBoard logs")
        self.writer = tensorboard.SummaryWriter(str(log_dir), purge_step=start + 1 if start else None)
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            from rich.table import Column

            status = Column(ratio=1, no_wrap=True, overflow="ellipsis")  # the losses give way, not the bar
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[status]}", table_column=status),
                console=console, expand=True,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task(title, total=total, completed=start, status="")

    def step(self, done: int, losses: dict[str, float], images: int, lrs: dict[str, float], log_every: int) -> None:
        """Record one finished step; every ``log_every`` steps write scalars and refresh the status."""
        for key, value in losses.items():
            previous = self.losses.get(key, value)
            self.losses[key] = LOSS_SMOOTHING * previous + (1 - LOSS_SMOOTHING) * value
        self._window_images += images
        now = time.perf_counter()
        self.images_per_second = self._window_images / max(now - self._window_start, 1e-9)
        if log_every > 0 and done % log_every == 0:
            self._window_images, self._window_start = 0, now
            if self.writer is not None:
                for key, value in losses.items():
                    self.writer.add_scalar(f"loss/{key}", value, done)
                for key, value in lrs.items():
                    self.writer.add_scalar(f"lr/{key}", value, done)
                self.writer.add_scalar("speed/images_per_second", self.images_per_second, done)
        if self.progress is not None:
            status = " ".join(f"{k} {v:.3g}" for k, v in self.losses.items())
            self.progress.update(self.task, completed=done, status=f"{self.images_per_second:.1f} img/s · {status}")

    def images(self, done: int, student: nn.Module, samples: dict[str, Any], device: torch.device) -> None:
        """Log a grid with one row per sample: input | target | student output."""
        if self.writer is None:
            return
        was_training = student.training
        student.eval()
        with torch.no_grad():
            output = student(samples["A"].to(device)).cpu()
        student.train(was_training)
        columns = [samples["A"], samples["B"], output] if "B" in samples else [samples["A"], output]
        grid = torch.cat([torch.cat(list(column), dim=1) for column in columns], dim=2)  # rows of samples
        self.writer.add_image("samples/input|target|output", ((grid + 1) / 2).clamp(0, 1), done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()


class StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM: finish the step, checkpoint, stop. A second one: stop at once."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            console.print("[yellow]stopping after this step to save a checkpoint (again to quit at once)[/]")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- the loop


def run_identity(distiller: Distiller, *, steps: int, batch_size: int, seed: int, run_info: dict[str, Any]) -> dict:
    """What must match for a run to resume from a checkpoint: method, student, schedule, config, data..."""
    config = {k: v for k, v in asdict(distiller.config).items() if k not in ("steps", "batch_size", "seed")}
    spec = distiller.student.spec() if hasattr(distiller.student, "spec") else type(distiller.student).__name__
    student = asdict(spec) if not isinstance(spec, str) else spec
    return normalize(
        {"method": distiller.name, "student": student, "steps": steps, "batch_size": batch_size, "seed": seed,
         "config": config, **run_info}  # fmt: skip
    )


def set_train_mode(distiller: Distiller) -> None:
    """Train mode, except for frozen parts (no trainable parameter: teachers, feature networks) kept in eval."""
    distiller.train()
    for child in distiller.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            child.eval()


def train(
    distiller: Distiller,
    dataset: Dataset,
    *,
    out_dir: str | Path,
    steps: int,
    batch_size: int,
    seed: int = 0,
    checkpoint_every: int = 500,
    log_every: int = 10,
    image_every: int = 200,
    resume: bool = True,
    progress: bool = True,
    run_info: dict[str, Any] | None = None,
    context: DistributedContext | None = None,
) -> TrainResult:
    """Train ``distiller`` for ``steps`` steps of ``batch_size`` samples and save its student to ``out_dir``.

    ``resume=True`` continues from ``out_dir/train/checkpoint.pt`` when it exists
    (a checkpoint of a different run is an error); ``resume=False`` starts over.
    ``run_info`` (data fingerprint, teacher source, ...) is part of the run's identity
    and of the model's provenance. ``context`` defaults to the current process group
    (or a single CPU/CUDA process).
    """
    if steps < 0 or batch_size < 1:
        raise PocketganError("--steps must be >= 0 and --batch >= 1")
    if seed < 0:
        raise PocketganError("--seed must be >= 0")
    context = context or DistributedContext.current()
    out_dir = Path(out_dir)
    ckpt_path = out_dir / TRAIN_DIR / CHECKPOINT_NAME
    run_info = dict(run_info or {})
    identity = run_identity(distiller, steps=steps, batch_size=batch_size, seed=seed, run_info=run_info)
    drawer = BatchDrawer(dataset, seed)
    context.shard(batch_size)  # fail early on an indivisible batch

    distiller.to(context.device)
    schedulers = make_schedulers(distiller, steps)
    seed_everything(seed)
    resumed = _resume_or_start(distiller, schedulers, out_dir, ckpt_path, identity, resume, context)
    start, wall_time = (resumed.step, resumed.wall_time) if resumed else (0, 0.0)
    resumed_from = saved_step = resumed.step if resumed else None
    context.broadcast_module(distiller)
    if context.is_distributed:
        distiller.grad_sync = context.average_gradients
    set_train_mode(distiller)

    monitor = TrainingMonitor(
        out_dir / TRAIN_DIR / "tb", total=steps, start=start, enabled=context.is_main, progress=progress,
        title=f"{distiller.name} → {out_dir.name}",
    )  # fmt: skip
    monitor.losses = dict(resumed.losses) if resumed else {}
    samples = _image_samples(drawer) if context.is_main and image_every > 0 else None
    session_start = time.perf_counter()

    def save(done: int) -> None:
        nonlocal saved_step
        if context.is_main:
            elapsed = wall_time + time.perf_counter() - session_start
            save_checkpoint(snapshot(distiller, schedulers, done, identity, elapsed, monitor.losses), ckpt_path)
        saved_step = done

    try:
        with StopRequest(announce=context.is_main) as stop:
            for step in range(start, steps):
                batch = to_device(drawer.batch(step, batch_size, context), context.device)
                losses = _guarded_step(distiller, batch, step, steps, _kept(saved_step, ckpt_path))
                for scheduler in schedulers.values():
                    scheduler.step()
                context.sync_buffers(distiller)
                done = step + 1
                lrs = {name: opt.param_groups[0]["lr"] for name, opt in distiller.optimizers.items()}
                monitor.step(done, losses, batch_size, lrs, log_every)
                if samples is not None and (done % image_every == 0 or done == steps):
                    monitor.images(done, distiller.student, samples, context.device)
                if done == steps or (checkpoint_every > 0 and done % checkpoint_every == 0):
                    save(done)
                if context.any(stop.requested):
                    if saved_step != done:
                        save(done)
                    if context.is_main:
                        console.print(f"interrupted after step {done}/{steps}; checkpoint saved, run again to resume")
                    raise KeyboardInterrupt
        if saved_step != steps:  # a 0-step run: record it, so running it again is a no-op
            save(steps)
    finally:
        monitor.close()

    total_time = wall_time + time.perf_counter() - session_start
    if context.is_main:
        _save_result(distiller, out_dir, identity, run_info, monitor.losses, total_time, context)
    return TrainResult(out_dir, steps, dict(monitor.losses), total_time, resumed_from, ckpt_path)


def _resume_or_start(
    distiller: Distiller,
    schedulers: dict[str, Any],
    out_dir: Path,
    ckpt_path: Path,
    identity: dict[str, Any],
    resume: bool,
    context: DistributedContext,
) -> Checkpoint | None:
    """Restore the run's checkpoint (returned) when resuming, else prepare a fresh start (``None``)."""
    if resume and ckpt_path.exists():
        checkpoint = load_checkpoint(ckpt_path)
        check_identity(checkpoint, identity, ckpt_path)
        restore(distiller, schedulers, checkpoint)
        return checkpoint
    _prepare_fresh_run(out_dir, ckpt_path, resume, context)
    return None


def _guarded_step(distiller: Distiller, batch: dict[str, Any], step: int, steps: int, kept: str) -> dict[str, float]:
    """One ``training_step``; a NaN/Inf loss (raised or returned) becomes an error naming the step."""
    try:
        losses = distiller.training_step(batch, step)
        check_finite(losses)
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(f"step {step + 1}/{steps}: {exc}; {kept}") from None
    return {k: float(v) for k, v in losses.items()}


def _prepare_fresh_run(out_dir: Path, ckpt_path: Path, resume: bool, context: DistributedContext) -> None:
    """Refuse to overwrite a finished model by accident; ``--no-resume`` discards the old checkpoint and logs."""
    if resume and (out_dir / MODEL_JSON).exists():
        raise PocketganError(f"{out_dir} already holds a model; use a new --out, or --no-resume to overwrite it")
    if context.is_main and not resume:
        import shutil

        ckpt_path.unlink(missing_ok=True)
        shutil.rmtree(out_dir / TRAIN_DIR / "tb", ignore_errors=True)
    context.barrier()


def _kept(saved_step: int | None, path: Path) -> str:
    if saved_step is None:
        return "no checkpoint had been written yet"
    return f"the last good checkpoint (step {saved_step}) is kept in {path}"


def _image_samples(drawer: BatchDrawer) -> dict[str, Any]:
    """The first few items of epoch 0, fixed for the whole run."""
    items = [drawer.item(position) for position in range(min(IMAGE_SAMPLES, drawer.size))]
    return {k: v for k, v in default_collate(items).items() if isinstance(v, torch.Tensor)}


def snapshot(
    distiller: Distiller,
    schedulers: dict[str, Any],
    step: int,
    identity: dict[str, Any],
    wall_time: float,
    losses: dict[str, float],
) -> Checkpoint:
    """The resumable state of ``distiller`` after ``step`` steps."""
    return Checkpoint(
        step=step,
        identity=identity,
        model={k: v.detach() for k, v in distiller.trainable_state().items()},
        optimizers={name: opt.state_dict() for name, opt in distiller.optimizers.items()},
        schedulers={name: sched.state_dict() for name, sched in schedulers.items()},
        rng=capture_rng_state(),
        wall_time=wall_time,
        losses=dict(losses),
    )


def restore(distiller: Distiller, schedulers: dict[str, Any], checkpoint: Checkpoint) -> None:
    """Load weights, optimizer and scheduler states and RNG states from ``checkpoint``."""
    expected = set(distiller.trainable_state())
    missing = sorted(expected - set(checkpoint.model))
    unexpected = sorted(set(checkpoint.model) - set(distiller.state_dict()))
    if missing or unexpected or set(checkpoint.optimizers) != set(distiller.optimizers):
        names = ", ".join((missing + unexpected)[:3]) or "optimizers"
        raise PocketganError(f"the checkpoint does not fit this run ({names}); use a new --out or --no-resume")
    distiller.load_state_dict(checkpoint.model, strict=False)
    for name, optimizer in distiller.optimizers.items():
        optimizer.load_state_dict(checkpoint.optimizers[name])
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(checkpoint.schedulers[name])
    restore_rng_state(checkpoint.rng)


def _save_result(
    distiller: Distiller,
    out_dir: Path,
    identity: dict[str, Any],
    run_info: dict[str, Any],
    losses: dict[str, float],
    wall_time: float,
    context: DistributedContext,
) -> None:
    from pocketgan.models import save_model

    provenance = {
        **run_info,
        "method": identity["method"],
        "steps": identity["steps"],
        "batch_size": identity["batch_size"],
        "seed": identity["seed"],
        "config": identity["config"],
        "wall_time_s": round(wall_time, 2),
        "final_losses": {k: round(v, 6) for k, v in losses.items()},
        "world_size": context.world_size,
        "device": context.device.type,
    }
    save_model(distiller.student, out_dir, provenance=provenance)


# --------------------------------------------------------------------------- the API behind the CLI

DEFAULT_STEPS = 1000
DEFAULT_CHECKPOINT_EVERY = 250


@dataclass
class RunSettings:
    """How long and how to train: shared by :func:`train_teacher` and :func:`distill_student`."""

    steps: int | None = None  # None: ``epochs`` or DEFAULT_STEPS
    epochs: float | None = None
    batch_size: int = 4
    lr: float = 2e-4
    gan_mode: str = "lsgan"
    seed: int = 0
    size: int | None = None
    direction: str = "AtoB"
    augment: bool = True
    resume: bool = True
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    device: str = "auto"
    options: dict[str, Any] | None = None
    progress: bool = True

    def validate(self) -> RunSettings:
        """Raise a one-line error for inconsistent settings (before any data is read)."""
        if self.steps is not None and self.epochs is not None:
            raise PocketganError("give either --steps or --epochs, not both")
        checks = [
            (self.steps is None or self.steps >= 0, "--steps must be >= 0"),
            (self.epochs is None or self.epochs > 0, "--epochs must be > 0"),
            (self.batch_size >= 1, "--batch must be >= 1"),
            (self.lr > 0, "--lr must be > 0"),
            (self.seed >= 0, "--seed must be >= 0"),
            (self.size is None or self.size > 0, "--size must be > 0"),
            (self.direction in ("AtoB", "BtoA"), f"--direction {self.direction}: expected AtoB or BtoA"),
        ]
        for ok, message in checks:
            if not ok:
                raise PocketganError(message)
        return self

    def total_steps(self, dataset_size: int) -> int:
        """``steps``, or ``ceil(epochs · dataset_size / batch)``, or :data:`DEFAULT_STEPS`."""
        self.validate()
        if self.epochs is not None:
            return max(1, int(np.ceil(self.epochs * dataset_size / self.batch_size)))
        return DEFAULT_STEPS if self.steps is None else self.steps

    def config(self, steps: int) -> Any:
        from pocketgan.distill.base import DistillConfig

        return DistillConfig(
            steps=steps, batch_size=self.batch_size, lr=self.lr, gan_mode=self.gan_mode, seed=self.seed,
            options=dict(self.options or {}),
        )  # fmt: skip


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``--option key=value`` items as a typed dict (see :func:`pocketgan.core.options.parse_key_values`)."""
    return parse_key_values(items)


def train_teacher(
    data: str | Path | None,
    out: str | Path,
    *,
    arch: str = "resnet9:ngf=64",
    init_arch: str | None = None,
    settings: RunSettings | None = None,
    **overrides: Any,
) -> Path:
    """Train a pix2pix teacher on ``data`` and save it as the model directory ``out``.

    ``arch`` is an architecture reference (trained from scratch, pix2pix init), a
    model directory, or a checkpoint file (``latest_net_G.pth``/``.safetensors``) whose
    architecture is ``init_arch``; those initialise the teacher. With ``steps=0`` the
    model is only imported into ``out`` (no data needed). ``overrides`` are
    :class:`RunSettings` fields (``steps=1200, batch_size=4, size=64, ...``).
    """
    settings = _settings(settings, overrides)
    if settings.steps == 0:
        return _import_model(arch, init_arch, out)
    from pocketgan.distill.base import get_distiller

    return _run(get_distiller("pix2pix"), data, out, settings, student_ref=arch, student_arch=init_arch)


def distill_student(
    method: str,
    teacher: str | Path | None,
    student: str,
    data: str | Path,
    out: str | Path,
    *,
    perceptual: str | None = None,
    settings: RunSettings | None = None,
    **overrides: Any,
) -> Path:
    """Distill ``teacher`` (a model directory) into ``student`` with ``method`` and save it to ``out``.

    ``student`` is an architecture reference (from scratch) or a model directory
    (e.g. a pruned teacher). ``perceptual`` names the feature network for methods that
    need one (``None``: the dataset's own network); other methods ignore it.
    ``overrides`` are :class:`RunSettings` fields, as for :func:`train_teacher`.
    """
    from pocketgan.distill.base import get_distiller

    distiller_cls = get_distiller(_registry_name(method))
    return _run(distiller_cls, data, out, _settings(settings, overrides), student_ref=student,
                teacher_ref=teacher, perceptual=perceptual)  # fmt: skip


def _settings(settings: RunSettings | None, overrides: dict[str, Any]) -> RunSettings:
    from dataclasses import fields, replace

    unknown = sorted(set(overrides) - {f.name for f in fields(RunSettings)})
    if unknown:
        raise TypeError(f"unknown training setting(s): {', '.join(unknown)}")
    return replace(settings or RunSettings(), **overrides).validate()


def _registry_name(method: str) -> str:
    from pocketgan.distill.base import list_distillers

    return method if method in list_distillers() else method.replace("_", "-")


def _run(
    distiller_cls: type[Distiller],
    data: str | Path | None,
    out: str | Path,
    settings: RunSettings,
    *,
    student_ref: str,
    student_arch: str | None = None,
    teacher_ref: str | Path | None = None,
    perceptual: str | None = None,
) -> Path:
    """The one implementation behind both commands: open data, build networks, train, save."""
    settings.validate()
    if data is None or not Path(data).is_dir():
        raise PocketganError(f"--data {data}: no such dataset directory")
    if teacher_ref is not None:
        check_teacher_dir(teacher_ref)
    elif distiller_cls.needs_teacher:
        raise PocketganError(f"{distiller_cls.name} needs a teacher (--teacher DIR)")
    from pocketgan.distill.data import dataset_fingerprint, open_dataset
    from pocketgan.distill.distributed import distributed_session

    with distributed_session(settings.device) as context:
        seed_everything(settings.seed)
        dataset = open_dataset(data, split="train", size=settings.size, direction=settings.direction,
                               augment=settings.augment, seed=settings.seed)  # fmt: skip
        steps = settings.total_steps(len(dataset))
        student, student_source = load_trainable_generator(student_ref, student_arch)
        teacher = load_teacher(teacher_ref) if teacher_ref is not None else None
        run_info: dict[str, Any] = {
            "student_source": student_source,
            "teacher_source": str(teacher_ref) if teacher is not None else None,
            "teacher_sha256": teacher.manifest.weights_sha256 if teacher is not None else None,
            "data": str(data),
            "data_fingerprint": context.main_first(lambda: dataset_fingerprint(data)),
            "size": settings.size,
            "direction": settings.direction,
            "augment": settings.augment,
        }
        feature_net = None
        if distiller_cls.needs_perceptual:
            from pocketgan.distill.features import load_feature_network

            show = settings.progress and context.is_main
            feature_net = context.main_first(lambda: load_feature_network(perceptual, data=data, progress=show))
            run_info["perceptual"] = getattr(feature_net, "name", str(perceptual))
        elif perceptual is not None and context.is_main:
            console.print(f"note: --perceptual is not used by {distiller_cls.name}")
        teacher_net = teacher.model if teacher is not None else None
        distiller = distiller_cls(student, teacher_net, settings.config(steps), perceptual=feature_net)
        result = train(
            distiller, dataset, out_dir=out, steps=steps, batch_size=settings.batch_size, seed=settings.seed,
            checkpoint_every=settings.checkpoint_every, resume=settings.resume, progress=settings.progress,
            run_info=run_info, context=context,
        )  # fmt: skip
    return result.model_dir


def load_trainable_generator(ref: str, arch: str | None = None) -> tuple[nn.Module, str]:
    """A generator to train: from a model dir or checkpoint (its weights), or an arch reference (pix2pix init)."""
    from pocketgan.distill.pix2pix import init_pix2pix_weights
    from pocketgan.models import load_model

    loaded = load_model(ref, arch)
    if not Path(str(ref)).exists():
        init_pix2pix_weights(loaded.model)
    return loaded.model, str(ref)


def check_teacher_dir(ref: str | Path) -> None:
    """A teacher must be a trained model directory (import a ``.pth`` first with ``pocketgan teacher --steps 0``)."""
    if not Path(str(ref)).is_dir():
        raise PocketganError(
            f"--teacher {ref}: expected a model directory (train one with `pocketgan teacher`, or import a .pth "
            "with `pocketgan teacher --arch FILE --init-arch ARCH --steps 0 --out DIR`)"
        )


def load_teacher(ref: str | Path) -> Any:
    """The teacher model directory ``ref`` as a :class:`~pocketgan.models.LoadedModel`."""
    from pocketgan.models import load_model

    check_teacher_dir(ref)
    return load_model(ref)


def _import_model(ref: str, arch: str | None, out: str | Path) -> Path:
    """``--steps 0``: copy a model directory or checkpoint into ``out`` as a model directory."""
    from pocketgan.models import load_model, save_model

    if not Path(ref).exists():
        raise PocketganError(
            f"--steps 0 imports an existing model: give --arch a model directory or a checkpoint file "
            f"with --init-arch (got {ref!r})"
        )
    loaded = load_model(ref, arch)
    provenance = {**loaded.manifest.provenance, "method": "import", "source": str(ref), "steps": 0}
    provenance.pop("created_at", None)
    provenance.pop("name", None)
    save_model(loaded.model, out, provenance=provenance)
    return Path(out)
