"""A run's resumable state: snapshot a distiller into a :class:`Checkpoint`, restore it, or start fresh."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pocketgan.core.contract import MODEL_JSON
from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import Distiller
from pocketgan.distill.checkpoint import (
    Checkpoint,
    capture_rng_state,
    check_identity,
    load_checkpoint,
    restore_rng_state,
)
from pocketgan.distill.distributed import DistributedContext

TRAIN_DIR = "train"  # OUT/train holds checkpoint.pt and tb/
TENSORBOARD_DIR = "tb"


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


def resume_or_start(
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
    prepare_fresh_run(out_dir, ckpt_path, resume, context)
    return None


def prepare_fresh_run(out_dir: Path, ckpt_path: Path, resume: bool, context: DistributedContext) -> None:
    """Refuse to overwrite a finished model by accident; ``--no-resume`` discards the old checkpoint and logs."""
    if resume and (out_dir / MODEL_JSON).exists():
        raise PocketganError(f"{out_dir} already holds a model; use a new --out, or --no-resume to overwrite it")
    if context.is_main and not resume:
        ckpt_path.unlink(missing_ok=True)
        shutil.rmtree(out_dir / TRAIN_DIR / TENSORBOARD_DIR, ignore_errors=True)
    context.barrier()


def kept_checkpoint(saved_step: int | None, path: Path) -> str:
    """What a failed run leaves behind, for its error message."""
    if saved_step is None:
        return "no checkpoint had been written yet"
    return f"the last good checkpoint (step {saved_step}) is kept in {path}"
