"""Which files of a folder are usable images: the scan that sorts the good from the odd.

Decoding is :func:`pocketgan.imaging.read_rgb` (the one reader every stage uses), with its
conversions where they are sound: grayscale → RGB, RGBA/gray+alpha → RGB over white, 16-bit →
8-bit. Everything else that cannot be used (truncated or undecodable files, float images, tiny
images, non-image files) is skipped by :func:`scan_images`, which reports all skips of a folder
in ONE :class:`DatasetWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.imaging import (
    IMAGE_EXTENSIONS,
    ImageError,
    encode_png,
    is_image_name,
    is_truncated,
    list_files,
    read_rgb,
    to_rgb8,
)

__all__ = [
    "IMAGE_EXTENSIONS", "MIN_SIDE", "DatasetWarning", "ImageError", "ImageScan", "encode_png", "file_key",
    "is_image_name", "is_truncated", "list_files", "probe", "read_rgb", "scan_images", "to_rgb8",
]  # fmt: skip

MIN_SIDE = 16
"""Images (or aligned halves) with a side shorter than this many pixels are skipped as tiny."""
PROGRESS_MIN_FILES = 1000
"""A scan reports progress (when given a callback) from this many files on."""
WARN_NAMES = 5
"""How many skipped file names a :class:`DatasetWarning` lists."""


class DatasetWarning(UserWarning):
    """Some files of a dataset folder were skipped (the message counts them and names the first few)."""


@dataclass
class ImageScan:
    """The usable images of a folder with their ``(height, width)``, and what was skipped and why."""

    folder: Path
    paths: list[Path] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip_summary(self) -> str:
        """``skipped 3 of 9 files (2 truncated, 1 not an image): a.png (truncated), ...``."""
        total = len(self.paths) + len(self.skipped)
        reasons = Counter(reason for _, reason in self.skipped)
        tally = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        names = ", ".join(f"{name} ({reason})" for name, reason in self.skipped[:WARN_NAMES])
        more = f" and {len(self.skipped) - WARN_NAMES} more" if len(self.skipped) > WARN_NAMES else ""
        return f"skipped {len(self.skipped)} of {total} files ({tally}): {names}{more}"

    def warning_message(self) -> str:
        """:meth:`skip_summary` prefixed with the folder."""
        return f"{self.folder}: {self.skip_summary()}"

    def warn(self) -> None:
        """Issue one :class:`DatasetWarning` when anything was skipped."""
        if self.skipped:
            warnings.warn(self.warning_message(), DatasetWarning, stacklevel=3)


def file_key(path: Path) -> tuple[str, int, int]:
    """``(absolute path, size, mtime in ns)``: what memoized per-file results are keyed by."""
    stat = path.stat()
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


_SHAPE_CACHE: dict[tuple[str, int, int], tuple[int, int] | str] = {}


def probe(path: Path) -> tuple[int, int] | str:
    """``(height, width)`` of a usable image, else the reason it is unusable (memoized by path, size, mtime)."""
    if not is_image_name(path):
        return "not an image"
    try:
        key = file_key(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if key not in _SHAPE_CACHE:
        try:
            _SHAPE_CACHE[key] = read_rgb(path).shape[:2]
        except ImageError as exc:
            _SHAPE_CACHE[key] = str(exc)
    return _SHAPE_CACHE[key]


def scan_images(folder: str | os.PathLike[str], *, min_height: int = MIN_SIDE, min_width: int = MIN_SIDE,
                progress: ProgressCallback | None = None, warn: bool = True) -> ImageScan:  # fmt: skip
    """Decode every file under ``folder`` once (threads) and sort usable images from skipped files.

    An image smaller than ``min_height × min_width`` is skipped as too small. With
    ``warn``, all skips are reported in one :class:`DatasetWarning`. ``progress`` hears
    about folders of :data:`PROGRESS_MIN_FILES` files or more.
    """
    folder = Path(folder)
    files = list_files(folder)
    scan = ImageScan(folder)
    callback = progress if len(files) >= PROGRESS_MIN_FILES else None
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            ProgressTask(callback, f"checking {folder.name}/", total=len(files)) as task:  # fmt: skip
        for result, path in zip(task.track(pool.map(probe, files)), files):  # track first: it counts the last one
            name = path.relative_to(folder).as_posix()
            if isinstance(result, str):
                scan.skipped.append((name, result))
            elif result[0] < min_height or result[1] < min_width:
                scan.skipped.append((name, f"smaller than {min_width}×{min_height} px"))
            else:
                scan.paths.append(path)
                scan.shapes.append(result)
    if warn:
        scan.warn()
    return scan
