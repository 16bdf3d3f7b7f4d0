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
from pocketgan.distill.trainer import RunSettings, TrainResult, distill_student, train, train_teacher

__all__ = [
    "DistillConfig",
    "Distiller",
    "GANLoss",
    "RunSettings",
    "TrainResult",
    "distill_student",
    "get_distiller",
    "list_distillers",
    "register_distiller",
    "train",
    "train_teacher",
]
