"""What a dataset folder holds: its splits, layout, image counts and sizes (``pocketgan data inspect``)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.distill.data.images import MIN_SIDE, scan_images
from pocketgan.distill.data.layouts import (
    ALIGNED,
    IMAGES,
    available_splits,
    dataset_fingerprint,
    locate_split,
    read_dataset_json,
)
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback


@dataclass
class SplitSummary:
    """One split: its layout, usable images per folder, skipped files, and the pair sizes (``W×H``) seen."""

    split: str
    layout: str
    images: dict[str, int]
    skipped: int
    skip_summary: str = ""
    sizes: Counter[str] = field(default_factory=Counter)


@dataclass
class DatasetSummary:
    """A dataset folder at a glance; ``meta`` is its ``dataset.json`` (``{}`` if not built by pocketgan)."""

    root: Path
    name: str
    splits: list[SplitSummary]
    fingerprint: str
    meta: dict[str, Any]


def describe_dataset(root: str | os.PathLike[str], *, progress: ProgressCallback | None = None) -> DatasetSummary:
    """Scan every split of ``root`` (decoding each image once) and summarize it; ``progress`` hears the scans."""
    root = Path(root)
    if not root.is_dir():
        raise PocketganError(f"{root}: no such dataset directory")
    names = available_splits(root)
    if not names:
        locate_split(root, "train")  # raises the "not a dataset" message
    splits = [_describe_split(root, name, progress) for name in names]
    meta = read_dataset_json(root)
    return DatasetSummary(root, str(meta.get("name") or root.resolve().name), splits, dataset_fingerprint(root), meta)


def _describe_split(root: Path, split: str, progress: ProgressCallback | None) -> SplitSummary:
    location = locate_split(root, split)
    layout = IMAGES if read_dataset_json(root).get("layout") == IMAGES else location.layout
    aligned = layout == ALIGNED
    summary = SplitSummary(split, layout, {}, 0)
    notes = []
    for folder in location.folders:
        scan = scan_images(folder, min_width=2 * MIN_SIDE if aligned else MIN_SIDE, progress=progress, warn=False)
        summary.images[folder.name] = len(scan.paths)
        summary.skipped += len(scan.skipped)
        if scan.skipped:
            notes.append(scan.warning_message())
        for height, width in scan.shapes:
            summary.sizes[f"{width // 2}×{height}" if aligned else f"{width}×{height}"] += 1
    summary.skip_summary = "; ".join(notes)
    return summary
