"""The on-disk layouts pocketgan reads, how a split is found, and the dataset's content fingerprint.

- pix2pix *aligned*: ``train/``, ``val/``, ``test/``; each image is A | B side by side.
- CycleGAN *unaligned*: ``trainA/`` + ``trainB/``, ``testA/`` + ``testB/`` (any ``<split>A``/``<split>B``).
- unconditional *images* (StyleGAN2): ``train/``, ``val/``; each file is one image. A ``train/`` folder
  holds aligned pairs unless ``dataset.json`` says ``"layout": "images"`` (or the reader is told so).

The layout rules live in :mod:`pocketgan.imaging` (export's calibration reads the same
folders); this module adds :func:`dataset_fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import sha256_file
from pocketgan.distill.data.images import file_key, is_image_name, list_files
from pocketgan.imaging import (
    ALIGNED,
    DATASET_JSON,
    STANDARD_SPLITS,
    UNALIGNED,
    SplitLocation,
    available_splits,
    locate_split,
    read_dataset_json,
)

IMAGES = "images"
"""The unconditional layout: ``<split>/`` folders of single images (what a StyleGAN2 learns to generate)."""

__all__ = [
    "ALIGNED", "DATASET_JSON", "IMAGES", "STANDARD_SPLITS", "UNALIGNED", "SplitLocation", "available_splits",
    "dataset_fingerprint", "locate_split", "read_dataset_json",
]  # fmt: skip

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, memoized by (path, size, mtime): an unchanged file is read once per process."""
    key = file_key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def dataset_fingerprint(root: str | os.PathLike[str]) -> str:
    """Content address of a dataset: SHA-256 over every image file's relative path and bytes.

    Non-image files (``dataset.json``, READMEs) and hidden files do not count, so the
    fingerprint changes exactly when an image is added, removed, renamed or edited. Each
    file's digest is memoized by (path, size, mtime), so asking again (the pipeline asks
    for it at every stage) only lists and stats the files.
    """
    root = Path(root)
    if not root.is_dir():
        raise PocketganError(f"{root}: no such dataset directory")
    digest = hashlib.sha256()
    for path in list_files(root):
        if is_image_name(path):
            digest.update(f"{path.relative_to(root).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()
