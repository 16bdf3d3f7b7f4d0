"""pix2pix preprocessing on ``uint8`` RGB arrays: resize, or resize + random crop + flip (augment).

Resizing and normalization are :func:`pocketgan.imaging.resize` and
:func:`pocketgan.imaging.normalize`, the functions int8 calibration and the runtime use, driven
by the model's :class:`~pocketgan.core.contract.IOSpec`. Random choices come from a
``numpy.random.Generator`` the caller derives from ``(seed, epoch, index)`` (see
:func:`item_rng`), never from a global RNG, so an item is the same whichever worker loads it
and whether or not training resumed mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pocketgan.core.contract import IOSpec
from pocketgan.imaging import normalize, resize

LOAD_RATIO = 286 / 256
"""pix2pix's ``load_size / crop_size``: augment resizes to this much larger, then crops back."""


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item: a pure function of ``(seed, epoch, index)``."""
    return np.random.default_rng([seed, epoch, index])


@dataclass(frozen=True)
class PairTransform:
    """Resize images to ``size × size`` (``None``: keep their size); with ``augment``, pix2pix's jitter.

    Augment = resize to ``LOAD_RATIO`` × the target size, take a random crop of the target
    size, and flip horizontally with probability ½. :meth:`__call__` applies the SAME
    choices to every image it is given (the two halves of an aligned pair). Resizes use
    ``io.interpolation``.
    """

    size: int | None = None
    augment: bool = False
    io: IOSpec = field(default_factory=IOSpec)

    def __call__(self, images: list[np.ndarray], rng: np.random.Generator | None) -> list[np.ndarray]:
        height, width = (self.size, self.size) if self.size else images[0].shape[:2]
        method = self.io.interpolation
        if not self.augment:
            return [resize(image, height, width, method) for image in images]
        if rng is None:
            raise ValueError("augment needs a random generator")
        load_h, load_w = round(height * LOAD_RATIO), round(width * LOAD_RATIO)
        top = int(rng.integers(0, load_h - height + 1))
        left = int(rng.integers(0, load_w - width + 1))
        flip = bool(rng.random() < 0.5)
        out = []
        for image in images:
            crop = resize(image, load_h, load_w, method)[top : top + height, left : left + width]
            out.append(np.ascontiguousarray(crop[:, ::-1] if flip else crop))
        return out


def to_tensor(image: np.ndarray, io: IOSpec | None = None) -> torch.Tensor:
    """``H×W×3`` RGB ``uint8`` → ``3×H×W`` float32 (:func:`pocketgan.imaging.normalize`; default ``x / 127.5 - 1``)."""
    return torch.from_numpy(normalize(image, io or IOSpec()))
