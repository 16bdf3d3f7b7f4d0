"""Plain output distillation: ``L1(student(A), teacher(A))``, the floor every method must beat.

The teacher is frozen (eval mode, no gradients) and left out of checkpoints; the
student sees neither ground truth nor a discriminator. Adam with the config's lr/betas.
This is ``--method kd`` for image-to-image teachers; on a StyleGAN2 teacher (latent input)
``distill_student`` runs CAGAN's KD instead (:mod:`pocketgan.distill.stylegan2.kd`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.distill.base import Distiller, register_distiller, set_requires_grad


@register_distiller("kd")
class OutputKD(Distiller):
    """Trains ``student`` to reproduce a frozen ``teacher``'s outputs under L1."""

    def setup(self) -> None:
        set_requires_grad(self.teacher, False)
        self.teacher.eval()
        self.make_adam("G", self.student.parameters())

    def train(self, mode: bool = True) -> OutputKD:
        """Switch the student; the frozen teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def training_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        real_a = batch["A"]
        with torch.no_grad():
            target = self.teacher(real_a)
        loss = nn.functional.l1_loss(self.student(real_a), target)
        self.step_optimizer("G", loss, [self.student])
        return {"G_kd": loss.item()}

    def trainable_state(self) -> dict[str, Any]:
        """The student only: the teacher is frozen and comes from ``--teacher``."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("teacher.")}
