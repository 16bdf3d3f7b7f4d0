"""The generic training loop that drives any registered :class:`~pocketgan.distill.base.Distiller`.

:func:`train` draws batches itself (:mod:`pocketgan.distill.batching`: step ``k`` always sees the
same samples for a seed, so a resumed run matches an uninterrupted one exactly), decays every
optimizer's learning rate linearly (pix2pix style), reports progress through a callback, logs
TensorBoard scalars and image grids (:mod:`pocketgan.distill.monitor`), writes atomic checkpoints
and resumes from them (:mod:`pocketgan.distill.resume`), stops cleanly on Ctrl-C or a NaN loss, and
finally saves the student as a model directory. Under ``torchrun`` it runs data-parallel (see
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

import torch
from torch.utils.data import Dataset

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.base import Distiller, NonFiniteLossError, check_finite
from pocketgan.distill.batching import BatchDrawer, latent_inputs, to_device
from pocketgan.distill.checkpoint import CHECKPOINT_NAME, normalize, save_checkpoint, seed_everything
from pocketgan.distill.distributed import DistributedContext
from pocketgan.distill.monitor import TrainingMonitor
from pocketgan.distill.progress import as_callback
from pocketgan.distill.run_log import METRICS_LOG, RunLog, snapshot_path, write_snapshot
from pocketgan.distill.resume import TENSORBOARD_DIR, TRAIN_DIR, kept_checkpoint, resume_or_start, snapshot

STOPPING = "stopping after this step to save a checkpoint (again to quit at once)"


@dataclass
class TrainResult:
    """What :func:`train` produced: the model directory and how the run went."""

    model_dir: Path
    steps: int
    losses: dict[str, float]
    wall_time: float
    resumed_from: int | None
    checkpoint: Path


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run after its checkpoint was saved; the message says how to resume."""

    def __init__(self, step: int, steps: int, checkpoint: Path) -> None:
        super().__init__(
            f"interrupted after step {step}/{steps}; checkpoint saved to {checkpoint}, run again to resume"
        )
        self.step, self.steps, self.checkpoint = step, steps, checkpoint


# --------------------------------------------------------------------------- schedule and modes


def linear_decay(steps: int, decay_from: float) -> Callable[[int], float]:
    """LR factor: 1 until ``decay_from · steps``, then linear towards 0 at ``steps`` (pix2pix's ``linear``)."""
    start = int(round(min(max(decay_from, 0.0), 1.0) * steps))
    span = max(1, steps - start)
    return lambda step: 1.0 - max(0, step - start) / span


def make_schedulers(distiller: Distiller, steps: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One :class:`LambdaLR` with :func:`linear_decay` per optimizer of ``distiller``."""
    factor = linear_decay(steps, distiller.config.decay_from)
    return {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in distiller.optimizers.items()}


def set_train_mode(distiller: Distiller) -> None:
    """Train mode, except for frozen parts (no trainable parameter: teachers, feature networks) kept in eval."""
    distiller.train()
    for child in distiller.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            child.eval()


def run_identity(distiller: Distiller, *, steps: int, batch_size: int, seed: int, run_info: dict[str, Any]) -> dict:
    """What must match for a run to resume from a checkpoint: method, student, schedule, config, data..."""
    config = {k: v for k, v in asdict(distiller.config).items() if k not in ("steps", "batch_size", "seed")}
    spec = distiller.student.spec() if hasattr(distiller.student, "spec") else type(distiller.student).__name__
    student = asdict(spec) if not isinstance(spec, str) else spec
    return normalize(
        {"method": distiller.name, "student": student, "steps": steps, "batch_size": batch_size, "seed": seed,
         "config": config, **run_info}  # fmt: skip
    )


class StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM: finish the step, checkpoint, stop. A second one: stop at once.

    ``on_request`` is called on the first one (the loop shows it in the progress status).
    """

    def __init__(self, on_request: Callable[[], None] | None = None) -> None:
        self.requested = False
        self.on_request = on_request
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
        if self.on_request is not None:
            self.on_request()

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- one session of a run


@dataclass(frozen=True)
class Cadence:
    """How long a run is and how often it logs, draws sample grids and checkpoints."""

    steps: int
    batch_size: int
    checkpoint_every: int = 500
    log_every: int = 10
    image_every: int = 200

    def checkpoint_due(self, done: int) -> bool:
        return done == self.steps or (self.checkpoint_every > 0 and done % self.checkpoint_every == 0)

    def images_due(self, done: int) -> bool:
        return self.image_every > 0 and (done % self.image_every == 0 or done == self.steps)


class Session:
    """This process's part of a run, from its checkpoint (or step 0) on: model state, schedulers, saving."""

    def __init__(
        self, distiller: Distiller, drawer: BatchDrawer, *, context: DistributedContext, out_dir: Path,
        identity: dict[str, Any], cadence: Cadence, seed: int, resume: bool,
    ) -> None:  # fmt: skip
        self.distiller, self.drawer, self.context, self.cadence = distiller, drawer, context, cadence
        self.identity = identity
        self.ckpt_path = out_dir / TRAIN_DIR / CHECKPOINT_NAME
        distiller.to(context.device)
        self.schedulers = make_schedulers(distiller, cadence.steps)
        seed_everything(seed)
        resumed = resume_or_start(distiller, self.schedulers, out_dir, self.ckpt_path, identity, resume, context)
        self.start, self.wall_time = (resumed.step, resumed.wall_time) if resumed else (0, 0.0)
        self.resumed_from = self.saved_step = resumed.step if resumed else None
        self.losses = dict(resumed.losses) if resumed else {}
        self.seed, self.out_dir = seed, out_dir
        self.run_log = RunLog(out_dir / TRAIN_DIR / METRICS_LOG)
        if context.is_main:
            self.run_log.truncate_after(self.start)  # lines written after the checkpoint are redone
        context.broadcast_module(distiller)
        if context.is_distributed:
            distiller.grad_sync = context.average_gradients
        set_train_mode(distiller)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Training wall time of the whole run so far (earlier sessions included)."""
        return self.wall_time + time.perf_counter() - self.started

    def step(self, step: int) -> dict[str, float]:
        """Optimise on global batch ``step`` (this rank's shard); the losses as floats."""
        batch = self.drawer.batch(step, self.cadence.batch_size, self.context)
        shape = self.distiller.latent_shape()
        if shape is not None:
            count, z_dim = shape
            batch.update(latent_inputs(self.seed, step, self.cadence.batch_size, self.context, z_dim=z_dim,
                                       count=count))  # fmt: skip
        losses = guarded_step(self.distiller, to_device(batch, self.context.device), step, self.cadence.steps,
                              self.kept())  # fmt: skip
        for scheduler in self.schedulers.values():
            scheduler.step()
        self.context.sync_buffers(self.distiller)
        return losses

    def record(self, done: int, monitor: TrainingMonitor) -> None:
        """After step ``done``: the distiller's metrics to ``OUT/train/metrics.jsonl`` and TensorBoard, and the
        student's snapshot when ``snapshot_every`` says so (rank 0; nothing here touches an RNG)."""
        metrics = self.distiller.pop_metrics()
        if not self.context.is_main:
            return
        if metrics:
            self.run_log.append(done, metrics)
            monitor.metrics(done, metrics)
        every = self.distiller.snapshot_every
        if every > 0 and (done % every == 0 or done == self.cadence.steps):
            write_snapshot(self.distiller.student, snapshot_path(self.out_dir, done))

    def learning_rates(self) -> dict[str, float]:
        return {name: opt.param_groups[0]["lr"] for name, opt in self.distiller.optimizers.items()}

    def save(self, done: int, losses: dict[str, float]) -> None:
        """Checkpoint after ``done`` steps (written by rank 0)."""
        if self.context.is_main:
            state = snapshot(self.distiller, self.schedulers, done, self.identity, self.elapsed(), losses)
            save_checkpoint(state, self.ckpt_path)
        self.saved_step = done

    def kept(self) -> str:
        return kept_checkpoint(self.saved_step, self.ckpt_path)


def guarded_step(distiller: Distiller, batch: dict[str, Any], step: int, steps: int, kept: str) -> dict[str, float]:
    """One ``training_step``; a NaN/Inf loss (raised or returned) becomes an error naming the step."""
    try:
        losses = distiller.training_step(batch, step)
        check_finite(losses)
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(f"step {step + 1}/{steps}: {exc}; {kept}") from None
    return {k: float(v) for k, v in losses.items()}


def run_steps(session: Session, monitor: TrainingMonitor, samples: dict[str, Any] | None) -> None:
    """Steps ``session.start`` → ``steps``: log, draw grids, checkpoint; a stop request checkpoints and raises
    :class:`TrainingInterrupted`."""
    cadence, context = session.cadence, session.context
    with StopRequest(on_request=lambda: monitor.note(STOPPING)) as stop:
        for step in range(session.start, cadence.steps):
            losses = session.step(step)
            done = step + 1
            monitor.step(done, losses, cadence.batch_size, session.learning_rates(), cadence.log_every)
            session.record(done, monitor)
            if samples is not None and cadence.images_due(done):
                monitor.images(done, session.distiller, samples, context.device)
            if cadence.checkpoint_due(done):
                session.save(done, monitor.losses)
            if context.any(stop.requested):
                if session.saved_step != done:
                    session.save(done, monitor.losses)
                raise TrainingInterrupted(done, cadence.steps, session.ckpt_path)
    if session.saved_step != cadence.steps:  # a 0-step run: record it, so running it again is a no-op
        session.save(cadence.steps, monitor.losses)


# --------------------------------------------------------------------------- the loop


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
    progress: ProgressCallback | None = None,
    run_info: dict[str, Any] | None = None,
    context: DistributedContext | None = None,
    provenance: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``distiller`` for ``steps`` steps of ``batch_size`` samples and save its student to ``out_dir``.

    ``resume=True`` continues from ``out_dir/train/checkpoint.pt`` when it exists
    (a checkpoint of a different run is an error); ``resume=False`` starts over.
    ``run_info`` (data fingerprint, teacher source, ...) is part of the run's identity
    and of the model's provenance; ``provenance`` is recorded in the model only (labels).
    ``progress`` receives the run's progress events (rank 0; status: images/s and smoothed
    losses). ``context`` defaults to the current process group (or a single CPU/CUDA process).
    Ctrl-C checkpoints and raises :class:`TrainingInterrupted`.
    """
    if steps < 0 or batch_size < 1:
        raise PocketganError("--steps must be >= 0 and --batch >= 1")
    if seed < 0:
        raise PocketganError("--seed must be >= 0")
    context = context or DistributedContext.current()
    out_dir, run_info = Path(out_dir), dict(run_info or {})
    identity = run_identity(distiller, steps=steps, batch_size=batch_size, seed=seed, run_info=run_info)
    drawer = BatchDrawer(dataset, seed)
    context.shard(batch_size)  # fail early on an indivisible batch
    cadence = Cadence(steps, batch_size, checkpoint_every, log_every, image_every)
    session = Session(distiller, drawer, context=context, out_dir=out_dir, identity=identity, cadence=cadence,
                      seed=seed, resume=resume)  # fmt: skip
    monitor = TrainingMonitor(
        out_dir / TRAIN_DIR / TENSORBOARD_DIR, total=steps, start=session.start, enabled=context.is_main,
        progress=as_callback(progress), title=f"{distiller.name} → {out_dir.name}", losses=session.losses,
    )  # fmt: skip
    samples = drawer.samples() if context.is_main and image_every > 0 else None
    session.started = time.perf_counter()
    try:
        run_steps(session, monitor, samples)
    except TrainingInterrupted as stopped:
        monitor.note(str(stopped))
        raise
    finally:
        monitor.close()
    wall_time = session.elapsed()
    if context.is_main:
        save_result(distiller, out_dir, identity, {**run_info, **(provenance or {})}, monitor.losses, wall_time,
                    context)  # fmt: skip
    return TrainResult(out_dir, steps, dict(monitor.losses), wall_time, session.resumed_from, session.ckpt_path)


def save_result(
    distiller: Distiller,
    out_dir: Path,
    identity: dict[str, Any],
    run_info: dict[str, Any],
    losses: dict[str, float],
    wall_time: float,
    context: DistributedContext,
) -> None:
    """Save the student as the model directory ``out_dir``, with the run's provenance."""
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
