"""``digits``: the embedded unconditional dataset, scikit-learn's handwritten digits upsampled (StyleGAN2's default).

Source: ``sklearn.datasets.load_digits`` — 1797 bitmaps of 8×8 pixels (ink 0–16, the test set of
UCI's optdigits, 13 writers), shipped inside the scikit-learn wheel: no download. Each image is
one digit warped onto a ``size × size`` canvas (bicubic: the 8×8 grid becomes soft strokes), drawn
as dark ink on white, with a small random affine jitter (rotation, scale, shift) so that ``count``
may exceed the bitmaps available and every seed draws its own images.

Why digits (measured on this machine, see the README): in a few CPU minutes at 32 px a tiny
StyleGAN2 turns noise into recognisable digits, and the digits' ten shapes make a missed mode or a
broken stroke visible at a glance; ``lfw_subset`` has only 100 faces of 25×25 (a GAN memorises
them) and crops of the sample photos are textures whose quality nobody can judge at 32 px.

Split rule (honest validation, :data:`SPLIT_RULE`): the bitmaps of each digit class, in file
order, are split at 80 %: the tail goes to *val*, the rest to *train*. No bitmap is in both (the
1797 bitmaps are pairwise distinct), and the file's order follows the forms it was read from, so
the tail holds mostly other writers' digits. Every image of a split is drawn from its split's bitmaps.

Layout ``images``: ``train/<index>_<digit>.png``, ``val/...``, ``dataset.json`` (``layout: images``,
``mirror: false``: a mirrored digit is not a digit), ``digits.json`` (each file's bitmap, label and
jitter). Deterministic: image ``i`` of a split depends only on ``(seed, split, i)``, so the same
seed writes byte-identical files and a larger ``count`` only appends images.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.data.builders import register_builder, write_image_folders
from pocketgan.distill.data.layouts import IMAGES
from pocketgan.distill.data.photos import SPLITS

NAME = "digits"
BUILDER_VERSION = 1
VAL_FRACTION = 0.2
"""Share of each digit class's bitmaps (the last ones in file order) that form the val split."""
MARGIN = 0.8
"""The 8×8 bitmap spans this share of the canvas side (before jitter), so rotated digits stay inside."""
MAX_ROTATION = 10.0
"""Jitter: rotation in degrees, uniform in ±this."""
SCALE_RANGE = (0.9, 1.1)
"""Jitter: scale factor, uniform."""
MAX_SHIFT = 0.05
"""Jitter: shift as a share of the canvas side, uniform in ±this on each axis."""
SPLIT_RULE = (
    "the bitmaps of each digit class, in sklearn's file order, are split at 80%: the last 20% are the val split, "
    "the rest the train split; every image is drawn from its own split's bitmaps (no bitmap is in both)"
)
SOURCE = "sklearn.datasets.load_digits: 1797 8x8 bitmaps (UCI optdigits test set, 13 writers), in the wheel"


@dataclass(frozen=True)
class DigitImage:
    """Where an image came from: the ``bitmap`` (index into ``load_digits``), its ``label`` and the jitter."""

    bitmap: int
    label: int
    angle: float
    scale: float
    shift_x: float
    shift_y: float


def load_bitmaps() -> tuple[np.ndarray, np.ndarray]:
    """``(ink, labels)``: scikit-learn's 1797 digit bitmaps as ``N×8×8`` floats in ``[0, 1]`` and their digits."""
    datasets = require("sklearn.datasets", "train", "the embedded digits")
    digits = datasets.load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """``{"train": indices, "val": indices}`` by :data:`SPLIT_RULE` (each sorted in file order)."""
    train, val = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        cut = len(members) - int(round(VAL_FRACTION * len(members)))
        train.append(members[:cut])
        val.append(members[cut:])
    return {"train": np.sort(np.concatenate(train)), "val": np.sort(np.concatenate(val))}


def draw_jitter(bitmap: int, label: int, rng: np.random.Generator) -> DigitImage:
    """The random affine jitter of one image."""
    angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    scale = float(rng.uniform(*SCALE_RANGE))
    shift_x, shift_y = (float(v) for v in rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2))
    return DigitImage(bitmap, label, round(angle, 4), round(scale, 4), round(shift_x, 4), round(shift_y, 4))


def render_digit(ink: np.ndarray, image: DigitImage, size: int) -> np.ndarray:
    """The 8×8 ``ink`` bitmap warped onto a ``size × size`` canvas (bicubic) as dark ink on white, RGB ``uint8``."""
    side = ink.shape[0]
    zoom = MARGIN * size / side * image.scale
    centre = ((side - 1) / 2, (side - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, image.angle, zoom)
    matrix[:, 2] += np.array([(size - 1) / 2 + image.shift_x * size, (size - 1) / 2 + image.shift_y * size]) - centre
    canvas = cv2.warpAffine(ink, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0.0)  # fmt: skip
    gray = np.rint(255.0 * (1.0 - np.clip(canvas, 0.0, 1.0))).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of ``split``: depends on nothing else, so ``count`` only appends."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def check_settings(size: int, count: int, val_count: int) -> None:
    """One-line error unless ``size ≥ 16``, ``count ≥ 1`` and ``val_count ≥ 1``."""
    if size < 16 or count < 1 or val_count < 1:
        raise PocketganError(f"{NAME} needs size ≥ 16 px, count ≥ 1 and val-count ≥ 1; "
                             f"got size {size}, count {count}, val-count {val_count}")  # fmt: skip


@register_builder(
    NAME,
    "handwritten digits (scikit-learn's, 8×8 upsampled), single images for unconditional generators (StyleGAN2)",
    description="scikit-learn's 1797 handwritten digit bitmaps warped onto the canvas with a small random jitter, "
    "dark ink on white. Validation images come from bitmaps no training image uses.",
)
def build_digits(out: str | os.PathLike[str], *, size: int = 32, count: int = 1400, val_count: int = 300,
                 seed: int = 0, progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """Build ``digits`` at ``out``: ``count`` train and ``val_count`` val images of ``size`` px (layout ``images``).

    Image ``i`` of a split shows bitmap ``i mod #bitmaps`` of that split (so every bitmap is used
    before any repeats) with its own jitter. ``digits.json`` records every image's provenance;
    ``dataset.json`` the source, the split rule, the seed and the content hash.
    """
    check_settings(size, count, val_count)
    ink, labels = load_bitmaps()
    pools = split_indices(labels)
    counts = {"train": count, "val": val_count}
    provenance: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    digits = max(4, len(str(max(counts.values()) - 1)))

    def images(split: str) -> Iterator[tuple[str, np.ndarray]]:
        pool = pools[split]
        for index in range(counts[split]):
            bitmap = int(pool[index % len(pool)])
            image = draw_jitter(bitmap, int(labels[bitmap]), image_rng(seed, split, index))
            stem = f"{index:0{digits}d}_{image.label}"
            provenance[split].append({"file": f"{split}/{stem}.png", **asdict(image)})
            yield stem, render_digit(ink[bitmap], image, size)

    meta = {
        "name": NAME, "builder": {"name": NAME, "version": BUILDER_VERSION}, "size": size, "seed": seed,
        "unconditional": True, "mirror": False, "source": SOURCE, "split_rule": SPLIT_RULE,
        "bitmaps": {split: len(pool) for split, pool in pools.items()},
        "image": "one digit, dark ink on white, bicubic from 8x8 with a random rotation (±10°), scale (0.9-1.1) "
                 "and shift (±5%)",
        "provenance": "digits.json",
    }  # fmt: skip
    folders = {split: (counts[split], images(split)) for split in SPLITS}
    return write_image_folders(out, folders, meta, layout=IMAGES, progress=progress,
                               extra_json={"digits.json": lambda: provenance})  # fmt: skip
