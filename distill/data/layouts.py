"""The on-disk layouts pocketgan reads, how a split is found, and the dataset's content fingerprint.

- pix2pix *aligned*: ``train/``, ``val/``, ``test/``; each image is A | B side by side.
- CycleGAN *unaligned*: ``trainA/`` + ``trainB/``, ``testA/`` + ``testB/`` (any ``<split>A``/``<split>B``).

A split is resolved on its own: ``<root>/<split>/`` makes it aligned, else the pair
``<root>/<split>A/`` + ``<root>/<split>B/`` makes it unaligned.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketgan.distill.data.images import is_image_name, list_files
from pocketgan.core.errors import PocketganError

ALIGNED = "aligned"
UNALIGNED = "unaligned"
DATASET_JSON = "dataset.json"
STANDARD_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitLocation:
    """Where one split's images are: one folder (aligned) or an A and a B folder (unaligned)."""

    split: str
    layout: str
    folders: tuple[Path, ...]


def locate_split(root: str | os.PathLike[str], split: str) -> SplitLocation:
    """The folders of ``split`` under ``root``; a one-line :class:`PocketganError` when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise PocketganError(f"{root}: no such dataset directory")
    if (root / split).is_dir():
        return SplitLocation(split, ALIGNED, (root / split,))
    pair = (root / f"{split}A", root / f"{split}B")
    if all(folder.is_dir() for folder in pair):
        return SplitLocation(split, UNALIGNED, pair)
    found = available_splits(root)
    if not found:
        raise PocketganError(
            f"{root}: not a dataset: expected train/, val/, test/ (pix2pix aligned, A|B side by side) "
            "or trainA/ + trainB/ (CycleGAN unaligned)"
        )
    if any(folder.is_dir() for folder in pair):
        missing = next(folder.name for folder in pair if not folder.is_dir())
        raise PocketganError(f"{root}: split '{split}' has no {missing}/ folder")
    raise PocketganError(f"{root}: no '{split}' split (found: {', '.join(found)})")


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    """The standard splits under ``root``: ``train``/``val``/``test`` folders or ``<split>A`` + ``<split>B`` pairs.

    (:func:`locate_split` also accepts any other folder name asked for explicitly.)
    """
    root = Path(root)
    folders = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    pairs = {split for split in STANDARD_SPLITS if {f"{split}A", f"{split}B"} <= folders}
    return sorted((folders & set(STANDARD_SPLITS)) | pairs, key=STANDARD_SPLITS.index)


def dataset_fingerprint(root: str | os.PathLike[str]) -> str:
    """Content address of a dataset: SHA-256 over every image file's relative path and bytes.

    Non-image files (``dataset.json``, READMEs) and hidden files do not count, so the
    fingerprint changes exactly when an image is added, removed, renamed or edited.
    """
    root = Path(root)
    if not root.is_dir():
        raise PocketganError(f"{root}: no such dataset directory")
    digest = hashlib.sha256()
    for path in list_files(root):
        if is_image_name(path):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(f"{path.relative_to(root).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def read_dataset_json(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``dataset.json`` of a built dataset, or ``{}`` when there is none (or it is not valid JSON)."""
    path = Path(root) / DATASET_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
