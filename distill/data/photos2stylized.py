"""``photos2stylized``: photo crops → the same crops stylized by a deterministic filter.

Each pair is a random square crop of a real photograph (random position, scale and
horizontal flip, resized to ``size``) beside :func:`~pocketgan.distill.data.stylize.stylize`
of exactly those pixels, so the target is a function of the input: a mapping a pix2pix
teacher learns in minutes and a person recognises at a glance. The photographs are the
colour photos shipped in scikit-image and scikit-learn (offline), or a folder (``photos=``);
train and val crops come from disjoint regions of every photo (:data:`~pocketgan.distill.data.photos.SPLIT_RULE`).

Deterministic: crop ``i`` of a split depends only on ``(seed, split, i)`` and the photos.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.data.builders import register_builder
from pocketgan.distill.data.photos import (
    PHOTOS_OPTION,
    Crop,
    Photo,
    build_photo_pairs,
    crop_pixels,
    crop_rng,
    sample_crop,
)
from pocketgan.distill.data.stylize import stylize

NAME = "photos2stylized"
BUILDER_VERSION = 1


def render_pair(
    photos: list[Photo], split: str, index: int, size: int, seed: int
) -> tuple[Crop, np.ndarray, np.ndarray]:
    """Crop ``index`` of ``split`` (photo ``index mod #photos``) and its stylized copy."""
    photo = photos[index % len(photos)]
    crop = sample_crop(photo, split, crop_rng(seed, split, index))
    pixels = crop_pixels(photo, crop, size)
    return crop, pixels, stylize(pixels)


@register_builder(
    NAME,
    "photo crops → the same crops stylized (OpenCV's edge-preserving stylization)",
    options=PHOTOS_OPTION,
    description="Random crops of real photos (scikit-image's and scikit-learn's samples) beside their stylized "
    "copy. Validation crops come from a band of each photo that training crops never touch.",
)
def build_photos2stylized(out: str | os.PathLike[str], *, size: int = 64, count: int = 600, val_count: int = 64,
                          seed: int = 0, photos: str | os.PathLike[str] | None = None,
                          progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """Build photos2stylized at ``out``: ``count`` train and ``val_count`` val pairs (A = photo, B = stylized)."""
    return build_photo_pairs(
        out, name=NAME, version=BUILDER_VERSION, render=render_pair, size=size, count=count, val_count=val_count,
        seed=seed, photos=photos, sklearn=True, progress=progress,
        describe={"same_domain": True,  # A and B are both photos: copying the input is a meaningful baseline
                  "A": "photo crop (random position, 15-40% of the photo's short side, random horizontal flip)",
                  "B": "the same crop stylized by pocketgan.distill.data.stylize.stylize"},
    )  # fmt: skip
