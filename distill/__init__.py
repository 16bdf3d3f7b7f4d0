"""Distillation: train a compact student from a teacher (and train teachers).

Main entry points: :func:`train_teacher`, :func:`distill_student` (what the ``teacher`` and
``distill`` verbs run), the generic :func:`train` loop, and the distiller registry.
"""

from pocketgan.distill.base import (
    DistillConfig,
    Distiller,
    GANLoss,
    get_distiller,
    list_distillers,
    register_distiller,
)
from pocketgan.distill.api import RunSettings, distill_student, train_teacher
from pocketgan.distill.loop import TrainingInterrupted, TrainResult, train

__all__ = [
    "DistillConfig",
    "Distiller",
    "GANLoss",
    "RunSettings",
    "TrainResult",
    "TrainingInterrupted",
    "distill_student",
    "get_distiller",
    "list_distillers",
    "register_distiller",
    "train",
    "train_teacher",
]
