"""Photo sources, crop sampling and the honest train/val split shared by the photo-crop builders.

The photographs are the colour photos that ship inside the scikit-image wheel (and, for
builders that ask, scikit-learn's ``load_sample_images``: offline), or any folder of the
user's photos. Split rule (see :data:`SPLIT_RULE`): every photo is cut in two along its
longer side; every crop lies entirely inside its split's region, so train and val share no pixel.

:func:`write_crop_pairs` runs a builder's ``render(split, index) -> (Crop, A, B)`` over
both splits (threaded, in order), names the files and records each crop's provenance.
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

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.data.builders import Pair, write_aligned_dataset
from pocketgan.distill.data.images import read_rgb, scan_images
from pocketgan.imaging import resize

T = TypeVar("T")
SKIMAGE_PHOTOS = {
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
SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}
"""The colour photographs of ``sklearn.datasets.load_sample_images`` (name → file)."""
SPLITS = ("train", "val")
VAL_FRACTION_OF_LONG_SIDE = 0.25
CROP_SCALE = (0.15, 0.40)
"""Crop side as a fraction of the photo's shorter side (uniform); also the val band's minimum width."""
MIN_PHOTO_SIDE = 48
SPLIT_RULE = (
    "each photo is cut along its longer side: the last max(25% of the long side, 40% of the short side) "
    "(right end of landscape photos, bottom of portrait ones) is the val region, the rest the train region; "
    "every crop lies inside its split's region, so train and val share no pixels"
)
PHOTOS_OPTION = {"photos": "a folder of your own photos (default: the sample photos shipped with the libraries)"}


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


def embedded_photos(*, sklearn: bool = False) -> list[Photo]:
    """The scikit-image sample colour photographs (and scikit-learn's with ``sklearn``); no download."""
    data_dir = Path(require("skimage.data", "train", "the embedded photos").data_dir)
    photos = [
        Photo(name, f"skimage.data/{file}", read_rgb(data_dir / file))
        for name, file in SKIMAGE_PHOTOS.items()
        if (data_dir / file).is_file()
    ]
    if sklearn:
        photos += sklearn_photos()
    if not photos:
        raise PocketganError(f"scikit-image's sample photos are missing from {data_dir}; pass --option photos=FOLDER")
    return photos


def sklearn_photos() -> list[Photo]:
    """scikit-learn's two sample photographs (china, flower), read from the installed wheel."""
    datasets = require("sklearn.datasets", "train", "the embedded photos")
    images = datasets.load_sample_images()
    by_file = {Path(name).name: image for name, image in zip(images.filenames, images.images)}
    return [Photo(name, f"sklearn.datasets/{file}", np.ascontiguousarray(by_file[file], dtype=np.uint8))
            for name, file in SKLEARN_PHOTOS.items() if file in by_file]  # fmt: skip


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


def crop_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of crop ``index`` of ``split``: depends on nothing else, so ``count`` only appends."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def check_common(name: str, size: int, count: int, val_count: int) -> None:
    """One-line error unless ``size ≥ 16``, ``count ≥ 1`` and ``val_count ≥ 1``."""
    if size < 16 or count < 1 or val_count < 1:
        raise PocketganError(f"{name} needs size ≥ 16 px, count ≥ 1 and val-count ≥ 1")


def photo_sources(photos: str | os.PathLike[str] | None, *, sklearn: bool = False) -> list[Photo]:
    """The user's folder of ``photos``, or the embedded ones."""
    return folder_photos(photos) if photos is not None else embedded_photos(sklearn=sklearn)


def write_crop_pairs(out: str | os.PathLike[str], counts: dict[str, int],
                     render: Callable[[str, int], tuple[Crop, np.ndarray, np.ndarray]], meta: dict[str, Any], *,
                     progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """Write ``counts[split]`` pairs ``render(split, index) -> (crop, A, B)`` per split as an aligned dataset.

    Files are ``<split>/<index>_<photo>.png``; every crop's provenance goes to ``crops.json``.
    """
    crops: dict[str, list[dict[str, Any]]] = {split: [] for split in counts}
    digits = max(4, len(str(max(counts.values()) - 1)))

    def pairs(split: str) -> Iterator[Pair]:
        rendered = threaded_map(lambda index: render(split, index), range(counts[split]))
        for index, (crop, a, b) in enumerate(rendered):
            stem = f"{index:0{digits}d}_{crop.photo}"
            crops[split].append({"file": f"{split}/{stem}.png", **asdict(crop)})
            yield stem, a, b

    splits = {split: (counts[split], pairs(split)) for split in counts}
    meta = {**meta, "split_rule": SPLIT_RULE, "provenance": "crops.json"}
    return write_aligned_dataset(out, splits, meta, progress=progress, extra_json={"crops.json": lambda: crops})


PairRenderer = Callable[[list[Photo], str, int, int, int], tuple[Crop, np.ndarray, np.ndarray]]


def build_photo_pairs(out: str | os.PathLike[str], *, name: str, version: int, render: PairRenderer,
                      describe: dict[str, Any], size: int, count: int, val_count: int, seed: int,
                      photos: str | os.PathLike[str] | None, sklearn: bool = False,
                      progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """The body of every paired crop builder: check the options, pick the photos, write the pairs.

    ``render(sources, split, index, size, seed) -> (crop, A, B)`` makes one pair; ``describe``
    (what A and B are, and any flags) goes into ``dataset.json`` beside the builder, size, seed,
    direction and sources.
    """
    check_common(name, size, count, val_count)
    sources = photo_sources(photos, sklearn=sklearn)
    meta = {"name": name, "builder": {"name": name, "version": version}, "size": size, "seed": seed,
            "direction": "AtoB", **describe, "sources": [photo.describe() for photo in sources]}  # fmt: skip
    return write_crop_pairs(out, {"train": count, "val": val_count},
                            lambda split, index: render(sources, split, index, size, seed), meta,
                            progress=progress)  # fmt: skip


def threaded_map(function: Callable[[int], T], indices: range, chunk: int = 64) -> Iterator[T]:
    """``map`` over threads (OpenCV releases the GIL), in order, holding at most ``chunk`` results at a time."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in range(0, len(indices), chunk):
            yield from pool.map(function, indices[start : start + chunk])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-" else "-" for c in text).strip("-") or "photo"
