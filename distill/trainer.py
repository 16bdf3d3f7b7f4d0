"""Compatibility module: the training loop and its API, as ``pocketgan.distill.trainer`` offered them.

The code lives in :mod:`pocketgan.distill.loop` (the loop), :mod:`pocketgan.distill.api`
(``train_teacher``, ``distill_student``, ``RunSettings``), :mod:`pocketgan.distill.batching`,
:mod:`pocketgan.distill.monitor` and :mod:`pocketgan.distill.resume`.
"""

from __future__ import annotations

from pocketgan.distill.api import (
    DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_STEPS,
    RunSettings,
    check_teacher_dir,
    distill_student,
    load_teacher,
    load_trainable_generator,
    parse_options,
    train_teacher,
)
from pocketgan.distill.batching import IMAGE_SAMPLES, BatchDrawer, to_device
from pocketgan.distill.loop import (
    StopRequest,
    TrainingInterrupted,
    TrainResult,
    linear_decay,
    make_schedulers,
    run_identity,
    set_train_mode,
    train,
)
from pocketgan.distill.monitor import LOSS_SMOOTHING, TrainingMonitor
from pocketgan.distill.resume import TRAIN_DIR, restore, snapshot

__all__ = [
    "DEFAULT_CHECKPOINT_EVERY",
    "DEFAULT_STEPS",
    "IMAGE_SAMPLES",
    "LOSS_SMOOTHING",
    "TRAIN_DIR",
    "BatchDrawer",
    "RunSettings",
    "StopRequest",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingMonitor",
    "check_teacher_dir",
    "distill_student",
    "linear_decay",
    "load_teacher",
    "load_trainable_generator",
    "make_schedulers",
    "parse_options",
    "restore",
    "run_identity",
    "set_train_mode",
    "snapshot",
    "to_device",
    "train",
    "train_teacher",
]
