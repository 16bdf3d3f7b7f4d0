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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from pocketgan.distill.data.builders import Pair, register_builder, write_aligned_dataset
from pocketgan.distill.data.images import read_rgb, scan_images
from pocketgan.imaging import resize
from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback

T = TypeVar("T")
NAME = "edges2photos"
BUILDER_VERSION = 1
EMBEDDED_PHOTOS = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "retina": "retina.jpg",
}
"""The colour photographs of ``skimage.data`` available without a download (name → file in ``data_dir``).

``motorcycle_right`` is left out: it is the other view of the same scene as ``motorcycle_left``."""
SPLITS = ("train", "val")
VAL_FRACTION_OF_LONG_SIDE = 0.25
CROP_SCALE = (0.15, 0.40)
"""Crop side as a fraction of the photo's shorter side (uniform); also the val band's minimum width."""
MIN_PHOTO_SIDE = 48
MIN_EDGE_FRACTION = 0.01
"""A crop whose edge map is darker than this fraction of pixels is redrawn (up to ``CROP_ATTEMPTS`` times)."""
CROP_ATTEMPTS = 8
SPLIT_RULE = (
    "each photo is cut along its longer side: the last max(25% of the long side, 40% of the short side) "
    "(right end of landscape photos, bottom of portrait ones) is the val region, the rest the train region; "
    "every crop lies inside its split's region, so train and val share no pixels"
)


@dataclass(frozen=True)
class Photo:
    """A source photograph: a short ``name``, where it came from, and its RGB pixels."""

    name: str
    origin: str
    rgb: np.ndarray

    def regions(self) -> dict[str, tuple[int, int, int, int]]:
        """``{"train": (x0, y0, x1, y1), "val": ...}``: the two halves of :data:`SPLIT_RULE`."""
        height, width = self.rgb.shape[:2]
        long_side, short_side = max(height, width), min(height, width)
        band = int(np.ceil(max(VAL_FRACTION_OF_LONG_SIDE * long_side, CROP_SCALE[1] * short_side)))
        if width >= height:
            return {"train": (0, 0, width - band, height), "val": (width - band, 0, width, height)}
        return {"train": (0, 0, width, height - band), "val": (0, height - band, width, height)}

    def describe(self) -> dict[str, Any]:
        height, width = self.rgb.shape[:2]
        return {"name": self.name, "origin": self.origin, "width": width, "height": height, "regions": self.regions()}


@dataclass(frozen=True)
class Crop:
    """Where a pair came from: ``photo``, the square ``x, y, side`` in its pixels, and ``flip``."""

    photo: str
    x: int
    y: int
    side: int
    flip: bool


def embedded_photos() -> list[Photo]:
    """The scikit-image sample colour photographs (read from the installed wheel; no download)."""
    data_dir = Path(require("skimage.data", "train", "the embedded photos").data_dir)
    photos = [
        Photo(name, f"skimage.data/{file}", read_rgb(data_dir / file))
        for name, file in EMBEDDED_PHOTOS.items()
        if (data_dir / file).is_file()
    ]
    if not photos:
        raise PocketganError(f"scikit-image's sample photos are missing from {data_dir}; pass --option photos=FOLDER")
    return photos


def folder_photos(folder: str | os.PathLike[str]) -> list[Photo]:
    """Every usable photo under ``folder`` (odd files converted or skipped with one warning)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PocketganError(f"photos={folder}: no such directory")
    scan = scan_images(folder, min_height=MIN_PHOTO_SIDE, min_width=MIN_PHOTO_SIDE, warn=False)
    if not scan.paths:
        detail = f" ({scan.skip_summary()})" if scan.skipped else ""
        raise PocketganError(f"photos={folder}: no usable photos of at least {MIN_PHOTO_SIDE} px{detail}")
    scan.warn()
    photos: list[Photo] = []
    for path in scan.paths:
        name = _slug(path.relative_to(folder).with_suffix("").as_posix())
        if any(photo.name == name for photo in photos):
            name = f"{name}-{len(photos)}"
        photos.append(Photo(name, str(path), read_rgb(path)))
    return photos


def sample_crop(photo: Photo, split: str, rng: np.random.Generator) -> Crop:
    """A random square inside ``photo``'s ``split`` region (side 15–40 % of the short side) and a flip."""
    x0, y0, x1, y1 = photo.regions()[split]
    short_side = min(photo.rgb.shape[:2])
    side = int(round(rng.uniform(*CROP_SCALE) * short_side))
    side = max(1, min(side, x1 - x0, y1 - y0))
    x = int(rng.integers(x0, x1 - side + 1))
    y = int(rng.integers(y0, y1 - side + 1))
    return Crop(photo.name, x, y, side, bool(rng.random() < 0.5))


def crop_pixels(photo: Photo, crop: Crop, size: int) -> np.ndarray:
    """The crop's pixels (flipped if asked) resized to ``size × size``."""
    pixels = resize(photo.rgb[crop.y : crop.y + crop.side, crop.x : crop.x + crop.side], size, size)
    return cv2.flip(pixels, 1) if crop.flip else pixels


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
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
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
    options={"photos": "a folder of your own photos (default: scikit-image's sample photos)"},
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
    if size < 16 or count < 1 or val_count < 1:
        raise PocketganError("edges2photos needs size ≥ 16 px, count ≥ 1 and val-count ≥ 1")
    sources = folder_photos(photos) if photos is not None else embedded_photos()
    counts = {"train": count, "val": val_count}
    crops: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    digits = max(4, len(str(max(counts.values()) - 1)))

    def pairs(split: str) -> Iterator[Pair]:
        def render(index: int) -> tuple[Crop, np.ndarray, np.ndarray]:
            return render_pair(sources, split, index, size, seed)

        for index, (crop, edges, pixels) in enumerate(threaded_map(render, range(counts[split]))):
            stem = f"{index:0{digits}d}_{crop.photo}"
            crops[split].append({"file": f"{split}/{stem}.png", **asdict(crop)})
            yield stem, edges, pixels

    meta = {
        "name": NAME,
        "builder": {"name": NAME, "version": BUILDER_VERSION},
        "size": size,
        "seed": seed,
        "direction": "AtoB",
        "A": "edge map: Canny on a smoothed photo crop, dark lines on white",
        "B": "photo crop (random position, 15-40% of the photo's short side, random horizontal flip)",
        "sources": [photo.describe() for photo in sources],
        "split_rule": SPLIT_RULE,
        "provenance": "crops.json",
    }
    splits = {split: (counts[split], pairs(split)) for split in SPLITS}
    return write_aligned_dataset(out, splits, meta, progress=progress, extra_json={"crops.json": lambda: crops})


def threaded_map(function: Callable[[int], T], indices: range, chunk: int = 64) -> Iterator[T]:
    """``map`` over threads (OpenCV releases the GIL), in order, holding at most ``chunk`` results at a time."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in range(0, len(indices), chunk):
            yield from pool.map(function, indices[start : start + chunk])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-" else "-" for c in text).strip("-") or "photo"

