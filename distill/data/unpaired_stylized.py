"""``photos2stylized-unpaired``: an unpaired (CycleGAN) dataset, photos ↔ stylized photos with no pairs.

Domain A is photo crops, domain B stylized crops (:func:`~pocketgan.distill.data.stylize.stylize`)
of *other* regions of the same photographs, so no B image is the stylized copy of any A image
and a model can only learn the mapping from the two distributions (CycleGAN's setting).

Where crops come from: every photo is split into train and val regions by
:data:`~pocketgan.distill.data.photos.SPLIT_RULE`; each region is then cut in two halves
along its longer side, one for each domain (alternating between photos, so neither domain
gets only the tops of the photos). A and B crops therefore share no pixel, and neither do
train and val. Crops, photo sources and the crop sampler are those of
:mod:`pocketgan.distill.data.photos`.

Layout: ``trainA/``, ``trainB/``, ``valA/``, ``valB/`` (``count`` and ``val_count`` images per
domain), ``dataset.json`` (layout ``unaligned``, the content hash) and ``crops.json``.
Deterministic: crop ``i`` of a split and domain depends only on ``(seed, split, domain, i)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.data.builders import register_builder, write_image_folders
from pocketgan.distill.data.layouts import UNALIGNED
from pocketgan.distill.data.photos import (
    PHOTOS_OPTION,
    SPLIT_RULE,
    SPLITS,
    Crop,
    Photo,
    check_common,
    crop_pixels,
    photo_sources,
    sample_crop,
    threaded_map,
)
from pocketgan.distill.data.stylize import stylize

NAME = "photos2stylized-unpaired"
BUILDER_VERSION = 1
DOMAINS = ("A", "B")
DOMAIN_RULE = (
    "each split region is cut in two halves along its longer side, one per domain (A gets the first half "
    "of even-numbered photos and the second half of odd-numbered ones): no B crop overlaps an A crop"
)
Region = tuple[int, int, int, int]


def halves(region: Region) -> tuple[Region, Region]:
    """``(x0, y0, x1, y1)`` cut in two along its longer side: (left, right) or (top, bottom)."""
    x0, y0, x1, y1 = region
    if x1 - x0 >= y1 - y0:
        middle = (x0 + x1) // 2
        return (x0, y0, middle, y1), (middle, y0, x1, y1)
    middle = (y0 + y1) // 2
    return (x0, y0, x1, middle), (x0, middle, x1, y1)


@dataclass(frozen=True)
class DomainPhoto(Photo):
    """A photo seen by one domain: its split regions are the ``half`` (0 or 1) of the photo's regions."""

    half: int = 0

    def regions(self) -> dict[str, Region]:
        return {split: halves(region)[self.half] for split, region in super().regions().items()}


def domain_photos(photos: list[Photo], domain: str) -> list[DomainPhoto]:
    """The photos as ``domain`` sees them (photo ``i``: half ``i mod 2`` for A, the other half for B)."""
    flip = DOMAINS.index(domain)
    return [DomainPhoto(p.name, p.origin, p.rgb, half=(i + flip) % 2) for i, p in enumerate(photos)]


def render_image(photos: list[DomainPhoto], domain: str, split: str, index: int, size: int,
                 seed: int) -> tuple[Crop, np.ndarray]:  # fmt: skip
    """Crop ``index`` of ``split`` in ``domain`` (photo ``index mod #photos``): the photo, or stylized for B."""
    photo = photos[index % len(photos)]
    rng = np.random.default_rng([seed, SPLITS.index(split), DOMAINS.index(domain), index])
    crop = sample_crop(photo, split, rng)
    pixels = crop_pixels(photo, crop, size)
    return crop, stylize(pixels) if domain == "B" else pixels


def write_unaligned_dataset(out: str | os.PathLike[str], folders: dict[str, tuple[int, Iterator[tuple[str, np.ndarray]]]],
                            meta: dict[str, Any], *, progress: ProgressCallback | None = None,
                            extra_json: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Write ``{folder: (count, (stem, image) items)}`` (``trainA``, ``trainB``, ...) as an unaligned dataset, atomically.

    ``dataset.json`` gets ``meta``, the layout, the counts and ``content_hash`` (= :func:`dataset_fingerprint`);
    ``extra_json`` maps more JSON files to functions called once the images are written.
    """
    return write_image_folders(out, folders, meta, layout=UNALIGNED, progress=progress, extra_json=extra_json)


@register_builder(
    NAME,
    "unpaired photo crops ↔ stylized crops of other regions (CycleGAN layout; no pairs exist)",
    options=PHOTOS_OPTION,
    description="Domain A: random photo crops; domain B: stylized crops of other halves of the same photos, so "
    "no B image is the stylized copy of an A image. Validation crops come from a band no training crop touches.",
)
def build_photos2stylized_unpaired(out: str | os.PathLike[str], *, size: int = 64, count: int = 400,
                                   val_count: int = 48, seed: int = 0, photos: str | os.PathLike[str] | None = None,
                                   progress: ProgressCallback | None = None) -> Path:  # fmt: skip
    """Build the unpaired dataset at ``out``: ``count`` train and ``val_count`` val images per domain, ``size`` px."""
    check_common(NAME, size, count, val_count)
    sources = photo_sources(photos, sklearn=True)
    views = {domain: domain_photos(sources, domain) for domain in DOMAINS}
    counts = {"train": count, "val": val_count}
    crops: dict[str, list[dict[str, Any]]] = {}
    digits = max(4, len(str(max(counts.values()) - 1)))

    def images(split: str, domain: str) -> Iterator[tuple[str, np.ndarray]]:
        folder = f"{split}{domain}"
        crops[folder] = []
        rendered = threaded_map(lambda i: render_image(views[domain], domain, split, i, size, seed), range(counts[split]))
        for index, (crop, image) in enumerate(rendered):
            stem = f"{index:0{digits}d}_{crop.photo}"
            crops[folder].append({"file": f"{folder}/{stem}.png", **asdict(crop)})
            yield stem, image

    meta = {
        "name": NAME, "builder": {"name": NAME, "version": BUILDER_VERSION}, "size": size, "seed": seed,
        "direction": "AtoB", "paired": False,
        "A": "photo crop (random position, 15-40% of the photo's short side, random horizontal flip)",
        "B": "a stylized crop (pocketgan.distill.data.stylize.stylize) of the photo half domain A never uses",
        "sources": [photo.describe() for photo in sources], "split_rule": SPLIT_RULE, "domain_rule": DOMAIN_RULE,
        "provenance": "crops.json",
    }  # fmt: skip
    folders = {f"{split}{domain}": (counts[split], images(split, domain)) for split in SPLITS for domain in DOMAINS}
    return write_unaligned_dataset(out, folders, meta, progress=progress, extra_json={"crops.json": lambda: crops})
