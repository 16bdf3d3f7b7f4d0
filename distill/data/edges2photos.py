"""``edges2photos``: the embedded default dataset, edge maps → photos in the spirit of edges2shoes.

Each pair is a random square crop of a real photograph (random position, scale and
horizontal flip), resized to ``size``, beside its edge map: Canny on a smoothed copy,
drawn as dark lines on white. The photographs are the colour photos that ship inside the
scikit-image wheel (offline), or any folder of the user's photos (``photos=``).

Split rule (honest validation): every photo is cut in two along its longer side. The
last ``max(25 % of the long side, 40 % of the short side)`` (the right end of a landscape
photo, the bottom of a portrait one) is the *val* region, the rest the *train* region.
Every crop lies entirely inside its split's region, so train and val share no pixel;
crop sides are drawn from the same range (15–40 % of the short side) in both splits.

Deterministic: crop ``i`` of a split depends only on ``(seed, split, i)`` and the photos,
so the same seed writes byte-identical files, and a larger ``count`` only appends crops.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pocketgan.distill.data.builders import register_builder
from pocketgan.distill.data.photos import (
    PHOTOS_OPTION,
    SKIMAGE_PHOTOS as EMBEDDED_PHOTOS,
    SPLIT_RULE,
    Crop,
    Photo,
    build_photo_pairs,
    crop_pixels,
    crop_rng,
    sample_crop,
)
from pocketgan.imaging import resize
from pocketgan.core.progress import ProgressCallback

NAME = "edges2photos"
BUILDER_VERSION = 1
MIN_EDGE_FRACTION = 0.01
"""A crop whose edge map is darker than this fraction of pixels is redrawn (up to ``CROP_ATTEMPTS`` times)."""
CROP_ATTEMPTS = 8
__all__ = ["EMBEDDED_PHOTOS", "SPLIT_RULE", "build_edges2photos", "edge_map", "render_pair"]


def edge_map(rgb: np.ndarray) -> np.ndarray:
    """Dark lines on white (RGB ``uint8``, same size): Canny on a smoothed, 2× upsampled gray copy.

    The image is upsampled 2× (thin lines, then area-averaged back: anti-aliased strokes),
    smoothed with an edge-preserving bilateral filter and a Gaussian; the Canny thresholds
    follow the image (90th percentile of the gradient, floored so flat areas stay blank).
    """
    height, width = rgb.shape[:2]
    gray = cv2.cvtColor(resize(rgb, 2 * height, 2 * width), cv2.COLOR_RGB2GRAY)
    smooth = cv2.GaussianBlur(cv2.bilateralFilter(gray, 5, 50, 50), (0, 0), 1.5)
    gradient = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    high = max(float(np.percentile(gradient[::2, ::2], 90)), 80.0)
    edges = cv2.Canny(smooth, 0.4 * high, high, L2gradient=True)
    strokes = cv2.resize(edges, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    lines = 255 - np.clip(2 * strokes, 0, 255).astype(np.uint8)
    return np.repeat(lines[:, :, None], 3, axis=2)


def edge_fraction(edges: np.ndarray) -> float:
    """The fraction of an edge map's pixels that are dark (part of a line)."""
    return float((edges[:, :, 0] < 128).mean())


def render_pair(
    photos: list[Photo], split: str, index: int, size: int, seed: int
) -> tuple[Crop, np.ndarray, np.ndarray]:
    """Crop ``index`` of ``split``: photo ``index mod #photos``; the first crop with enough edges (or the most)."""
    photo = photos[index % len(photos)]
    rng = crop_rng(seed, split, index)
    best: tuple[float, Crop, np.ndarray, np.ndarray] | None = None
    for _ in range(CROP_ATTEMPTS):
        crop = sample_crop(photo, split, rng)
        pixels = crop_pixels(photo, crop, size)
        edges = edge_map(pixels)
        fraction = edge_fraction(edges)
        if best is None or fraction > best[0]:
            best = (fraction, crop, edges, pixels)
        if fraction >= MIN_EDGE_FRACTION:
            break
    _, crop, edges, pixels = best
    return crop, edges, pixels


@register_builder(
    NAME,
    "edge maps → photo crops (Canny, edges2shoes-style) from real photographs",
    options=PHOTOS_OPTION,
    description="Random crops of real photos beside their Canny edges. Validation crops come from a band "
    "of each photo that training crops never touch.",
)
def build_edges2photos(out: str | os.PathLike[str], *, size: int = 128, count: int = 600, val_count: int = 64,
                       seed: int = 0, photos: str | os.PathLike[str] | None = None,
                       progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """Build edges2photos at ``out``: ``count`` train and ``val_count`` val pairs of ``size`` px (A = edges, B = photo).

    ``photos`` is a folder of the user's photos (default: scikit-image's sample photos).
    The crops' provenance goes to ``crops.json``; ``dataset.json`` records the sources,
    the split rule, the seed and the content hash.
    """
    return build_photo_pairs(
        out, name=NAME, version=BUILDER_VERSION, render=render_pair, size=size, count=count, val_count=val_count,
        seed=seed, photos=photos, progress=progress,
        describe={"A": "edge map: Canny on a smoothed photo crop, dark lines on white",
                  "B": "photo crop (random position, 15-40% of the photo's short side, random horizontal flip)"},
    )  # fmt: skip
