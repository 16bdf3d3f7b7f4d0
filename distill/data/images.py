"""Image files in, RGB ``uint8`` arrays out (OpenCV), and the scan that sorts the good from the odd.

Conversions applied where they are sound: grayscale → RGB, RGBA/gray+alpha → RGB over
white, 16-bit → 8-bit. Everything else that cannot be used (truncated or undecodable
files, float images, tiny images, non-image files) is skipped by :func:`scan_images`,
which reports all skips of a folder in ONE :class:`DatasetWarning`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pocketgan.core.errors import PocketganError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})
MIN_SIDE = 16
"""Images (or aligned halves) with a side shorter than this many pixels are skipped as tiny."""
PROGRESS_MIN_FILES = 1000
"""A scan shows a progress bar (when asked to) from this many files on."""
WARN_NAMES = 5
"""How many skipped file names a :class:`DatasetWarning` lists."""


class DatasetWarning(UserWarning):
    """Some files of a dataset folder were skipped (the message counts them and names the first few)."""


class ImageError(PocketganError):
    """A file that is not a usable image; the message is the reason (``truncated``, ...)."""


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode ``path`` to an ``H×W×3`` RGB ``uint8`` array, converting gray, alpha and 16-bit images.

    Raises :class:`ImageError` (message = the reason) for unreadable, truncated or unsupported files.
    Truncated PNG/JPEG files are detected before decoding, so the codecs print nothing.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"unreadable ({exc.strerror or exc})") from None
    if is_truncated(data):
        raise ImageError("truncated")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError("not a decodable image")
    return to_rgb8(image)


def is_truncated(data: bytes) -> bool:
    """Whether PNG/JPEG bytes end before the image does (no ``IEND`` chunk / no EOI after the last scan)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data.rfind(b"IEND") < max(data.rfind(b"IDAT"), 8)
    if data.startswith(b"\xff\xd8"):
        last_scan = data.rfind(b"\xff\xda")
        return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0
    return False


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An OpenCV ``IMREAD_UNCHANGED`` array (BGR order) as RGB ``uint8``; alpha is composited over white."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"unsupported image shape {image.shape}")
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        image = np.rint(image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB ``uint8`` array."""
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise PocketganError("OpenCV could not encode a PNG")
    return buffer.tobytes()


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (recursively, like pix2pix's ``make_dataset``), sorted."""
    files = []
    for path in folder.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


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


_SHAPE_CACHE: dict[tuple[str, int, int], tuple[int, int] | str] = {}


def probe(path: Path) -> tuple[int, int] | str:
    """``(height, width)`` of a usable image, else the reason it is unusable (memoized by path, size, mtime)."""
    if not is_image_name(path):
        return "not an image"
    try:
        stat = path.stat()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHAPE_CACHE:
        try:
            _SHAPE_CACHE[key] = read_rgb(path).shape[:2]
        except ImageError as exc:
            _SHAPE_CACHE[key] = str(exc)
    return _SHAPE_CACHE[key]


def scan_images(folder: str | os.PathLike[str], *, min_height: int = MIN_SIDE, min_width: int = MIN_SIDE,
                progress: bool = False, warn: bool = True) -> ImageScan:  # fmt: skip
    """Decode every file under ``folder`` once (threads) and sort usable images from skipped files.

    An image smaller than ``min_height × min_width`` is skipped as too small. With
    ``warn``, all skips are reported in one :class:`DatasetWarning`.
    """
    folder = Path(folder)
    files = list_files(folder)
    scan = ImageScan(folder)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        show = progress and len(files) >= PROGRESS_MIN_FILES
        results = _track(pool.map(probe, files), len(files), f"checking {folder.name}/", show)
        for path, result in zip(files, results):
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


def _track(items: Iterable, total: int, description: str, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from rich.progress import track

    from pocketgan.console import err_console

    return track(items, description=description, total=total, console=err_console, transient=True)
