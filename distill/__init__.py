"""Distillation: train a compact student from a teacher (and train teachers)."""

from pocketgan.distill.base import (
    DistillConfig,
    Distiller,
    GANLoss,
    get_distiller,
    list_distillers,
    register_distiller,
)

__all__ = ["DistillConfig", "Distiller", "GANLoss", "get_distiller", "list_distillers", "register_distiller"]
