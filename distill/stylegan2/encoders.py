"""DiME's pluggable encoders: the embedding spaces student and teacher image distributions are matched in.

An encoder is any :class:`~pocketgan.distill.features.base.FeatureNetwork`, resolved like every
``--feature``: the dataset's domain network (``domain``, the offline default, trained here),
``dino-resnet50`` / ``clip-rn50`` from a local weights file (``dino-resnet50=PATH``, or a path whose
keys say which), or any registered network. Each carries the weight of its term: the released code's
20 for DINO ResNet-50 and 15 for CLIP RN50 (:data:`~.mmd.MOMENT_WEIGHTS`), :data:`DEFAULT_WEIGHT`
for the others unless given.

:func:`dime_loss` sums ``weight × mmd(student embeddings, teacher)`` over the encoders, the teacher
given as a batch of teacher images (per-batch statistics) or as :class:`~.mmd.TeacherStats`
accumulated over many teacher samples (:mod:`.teacher_stats`); gradients reach the student images only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.features.base import FeatureNetwork
from pocketgan.distill.stylegan2.mmd import MOMENT_WEIGHTS, TeacherStats, mmd

#: The weight of an encoder the released code does not use (the domain network): DINO's.
DEFAULT_WEIGHT = 20.0


@dataclass
class DimeEncoder:
    """A frozen encoder and the weight of its DiME term."""

    network: FeatureNetwork
    weight: float

    @property
    def name(self) -> str:
        """The encoder's label (``dino-resnet50``, ``clip-rn50``, ``pocketgan-<dataset>``, ...)."""
        return self.network.name

    def embed(self, images: Tensor) -> Tensor:
        """``N×D`` float32 embeddings of images in ``[-1, 1]``, differentiable in ``images``."""
        return self.network.embed(images).float()

    def check_stats(self, stats: TeacherStats) -> None:
        """One line unless ``stats`` were accumulated with this very encoder (name, size and weights key)."""
        stats.check_encoder(self.name, self.network.key, self.network.num_features)


def load_dime_encoder(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    weight: float | None = None,
    progress: ProgressCallback | None = None,
) -> DimeEncoder:
    """The encoder ``name_or_path`` (``None``: the domain network of ``data``) with its DiME weight."""
    from pocketgan.distill.features.resolve import load_feature_network

    network = load_feature_network(name_or_path, data=data, cache_dir=cache_dir, progress=progress)
    if weight is None:
        weight = MOMENT_WEIGHTS.get(network.name, DEFAULT_WEIGHT)
    return DimeEncoder(network, float(weight))


def dime_loss(
    student_images: Tensor,
    encoders: Sequence[DimeEncoder],
    *,
    teacher_images: Tensor | None = None,
    stats: Mapping[str, TeacherStats] | None = None,
    kernel: str = "moments",
    unbiased: bool = True,
) -> Tensor:
    """``Σ weight × mmd(embed(student), teacher)`` over ``encoders`` (a scalar).

    For each encoder the teacher is ``stats[encoder.name]`` when given (checked to come from that
    encoder), else the embeddings of ``teacher_images`` (computed without gradients).
    """
    if not encoders:
        raise PocketganError("DiME needs at least one encoder")
    total = student_images.new_zeros(()).float()
    for encoder in encoders:
        teacher = _teacher_side(encoder, teacher_images, stats)
        total = total + encoder.weight * mmd(encoder.embed(student_images), teacher, kernel, unbiased=unbiased)
    return total


def _teacher_side(
    encoder: DimeEncoder, teacher_images: Tensor | None, stats: Mapping[str, TeacherStats] | None
) -> Tensor | TeacherStats:
    if stats is not None and encoder.name in stats:
        encoder.check_stats(stats[encoder.name])
        return stats[encoder.name]
    if teacher_images is None:
        raise PocketganError(
            f"DiME encoder {encoder.name}: give teacher images (per-batch statistics) or its accumulated "
            "teacher statistics (teacher_stats)"
        )
    with torch.no_grad():
        return encoder.embed(teacher_images.detach())
