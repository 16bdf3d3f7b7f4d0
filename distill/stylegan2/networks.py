"""The student of a StyleGAN2 distillation: a pruned StyleGAN2 model directory, or the teacher pruned uniformly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.distill.stylegan2.adversarial import require_latent_generator

DEFAULT_CRITERION = "l1"


def latent_student(
    ref: str | None, teacher: Any, options: dict[str, Any], method: str
) -> tuple[nn.Module, str]:
    """``(student, source)`` for a StyleGAN2 distillation.

    With ``options["ratio"]`` (``--option ratio=P``) the student is the teacher pruned uniformly,
    every prunable layer keeping ``ceil((1 − P) · width)`` channels chosen by ``options["criterion"]``
    (L1 by default) from the teacher's weights (CAGAN's initialisation); ``ref`` must then not be a model
    directory. Without it, ``ref`` must be a StyleGAN2 model directory (e.g. ``pocketgan prune --uniform``'s).
    """
    if teacher is None:
        raise PocketganError(f"{method} needs a teacher (--teacher DIR)")
    require_latent_generator(teacher.model, "teacher")
    ratio = options.get("ratio")
    if ratio is not None:
        if ref is not None and Path(str(ref)).is_dir():
            raise PocketganError(f"{method}: give either --student DIR or --option ratio=P, not both")
        if not isinstance(ratio, (int, float)) or not 0 < float(ratio) < 1:
            raise PocketganError(f"{method}: option ratio={ratio!r} must be in (0, 1): every layer keeps "
                                 "ceil((1 - ratio) · width) channels (the papers' rates: 0.7, 0.8, 0.9, 0.95)")  # fmt: skip
        return pruned_teacher(teacher, float(ratio), str(options.get("criterion", DEFAULT_CRITERION)))
    if ref is None or not Path(str(ref)).is_dir():
        raise PocketganError(
            f"{method}: a StyleGAN2 teacher needs --option ratio=P (the teacher pruned uniformly) or --student DIR "
            "(a pruned StyleGAN2 model directory)"
        )
    from pocketgan.distill.api import load_trainable_generator

    student, source = load_trainable_generator(str(ref))
    require_latent_generator(student, "student")
    check_compatible(teacher.model, student)
    return student.requires_grad_(True), source


def pruned_teacher(teacher: Any, ratio: float, criterion: str) -> tuple[nn.Module, str]:
    """The teacher uniformly pruned to ``ratio`` (its weights kept by ``criterion``), ready to train."""
    from pocketgan.models.prune_uniform import prune_uniform

    result = prune_uniform(copy.deepcopy(teacher.model), ratio, importance=criterion)
    student = result.model.train().requires_grad_(True)
    return student, f"{teacher.name} pruned uniformly, ratio {ratio:g} ({criterion})"


def check_compatible(teacher: nn.Module, student: nn.Module) -> None:
    """One line unless teacher and student take the same latents and make images of the same size."""
    pairs = [("z_dim", teacher.z_dim, student.z_dim), ("size", teacher.size, student.size),
             ("num_ws", teacher.num_ws, student.num_ws)]  # fmt: skip
    for name, t, s in pairs:
        if int(t) != int(s):
            raise PocketganError(f"the student's {name} is {s}, the teacher's {t}: they must get the same latents")
