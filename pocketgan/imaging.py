"""Pixels in, one way for every stage: read, resize and normalize images as an :class:`IOSpec` says.

Training (:mod:`pocketgan.distill.data`), int8 calibration (:mod:`pocketgan.export.samples`)
and the runtime (:meth:`pocketgan.runtime.runner.Runner.translate`) all go through
:func:`read_rgb`, :func:`resize` and :func:`normalize`, so a model sees the same numbers
from the same file wherever it runs. The dataset folder layouts (pix2pix *aligned* A|B
composites, CycleGAN *unaligned* ``trainA/`` + ``trainB/``) live here too, so that every
stage finds a folder's generator inputs (:func:`input_images`) the same way.

numpy + OpenCV only (OpenCV imported on first use): the torch-free runtime imports this module.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})
INTERPOLATIONS: dict[str, tuple[str, str]] = {
    "area": ("INTER_AREA", "INTER_CUBIC"),
    "linear": ("INTER_LINEAR", "INTER_LINEAR"),
    "cubic": ("INTER_CUBIC", "INTER_CUBIC"),
    "nearest": ("INTER_NEAREST", "INTER_NEAREST"),
    "lanczos": ("INTER_LANCZOS4", "INTER_LANCZOS4"),
}
""":data:`~pocketgan.core.contract.Interpolation` name → OpenCV flags ``(shrinking, enlarging)``.

``area`` averages pixel areas when shrinking (the usual choice for downscaling photos: no
aliasing) and is bicubic when enlarging, where ``INTER_AREA`` has no filter of its own."""


def _cv2() -> ModuleType:
    return require("cv2", "runtime", "reading and resizing images")


# ---------------------------------------------------------------------------------------- files


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
    cv2 = _cv2()
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
    cv2 = _cv2()
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB ``uint8`` array."""
    cv2 = _cv2()
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


# ---------------------------------------------------------------------------------------- pixels


def resize(image: np.ndarray, height: int, width: int, interpolation: str = "area") -> np.ndarray:
    """Resize an ``H×W×C`` ``uint8`` image to ``height × width`` with an IOSpec ``interpolation``.

    No-op (the same array) at the same size. Shrinking vs enlarging is decided by pixel area.
    """
    if image.shape[:2] == (height, width):
        return image
    if interpolation not in INTERPOLATIONS:
        raise PocketganError(f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
    cv2 = _cv2()
    shrinking = height * width < image.shape[0] * image.shape[1]
    flag = getattr(cv2, INTERPOLATIONS[interpolation][0 if shrinking else 1])
    out = cv2.resize(image, (width, height), interpolation=flag)
    return out.reshape(height, width, *image.shape[2:])


def to_input_channels(rgb: np.ndarray, io: IOSpec) -> np.ndarray:
    """An RGB ``H×W×3`` image as the ``H×W×C`` the model takes (``C`` = 1: luma; 3: unchanged)."""
    if io.input_channels == 3 or rgb.ndim == 3 and rgb.shape[2] == io.input_channels:
        return rgb
    if io.input_channels == 1:
        cv2 = _cv2()
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    raise PocketganError(f"images have 1 or 3 channels; this model takes {io.input_channels}")


def normalize(image: np.ndarray, io: IOSpec) -> np.ndarray:
    """``H×W×C`` ``uint8`` (RGB) → ``C×H×W`` float32 ``x * io.scale + io.offset`` in ``io.channel_order``.

    Computed as ``x / (1 / scale) + offset`` in float32: for the default ``scale = 1/127.5``
    that is exactly pix2pix's ``x / 127.5 - 1``, bit for bit.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype != np.uint8:
        raise PocketganError(f"expected a uint8 image, got {image.dtype}")
    if io.channel_order == "BGR":
        image = image[:, :, ::-1]
    scaled = image.astype(np.float32) / np.float32(1.0 / io.scale) + np.float32(io.offset)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def denormalize(tensor: np.ndarray, io: IOSpec) -> np.ndarray:
    """``C×H×W`` floats → ``H×W×C`` ``uint8`` RGB: the inverse of :func:`normalize`, clipped to [0, 255]."""
    values = (np.asarray(tensor, dtype=np.float32) - np.float32(io.offset)) * np.float32(1.0 / io.scale)
    pixels = np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(pixels[:, :, ::-1] if io.channel_order == "BGR" else pixels)


def prepare(image: np.ndarray, io: IOSpec, size: tuple[int, int]) -> np.ndarray:
    """An RGB ``uint8`` image as the model's ``C×H×W`` float32 input of ``size``: channels, resize, normalize."""
    height, width = size
    return normalize(resize(to_input_channels(image, io), height, width, io.interpolation), io)


# ---------------------------------------------------------------------------------------- layouts

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
    """The folders of ``split`` under ``root``: ``<root>/<split>/`` is pix2pix aligned (A|B side by
    side), ``<root>/<split>A/`` + ``<root>/<split>B/`` CycleGAN unaligned; else a one-line error."""
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


def read_dataset_json(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``dataset.json`` of a built dataset, or ``{}`` when there is none (or it is not valid JSON)."""
    path = Path(root) / DATASET_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def aligned_halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The A (left) and B (right) halves of an aligned composite; an odd extra column is dropped."""
    half = image.shape[1] // 2
    return image[:, :half], image[:, half : 2 * half]


@dataclass(frozen=True)
class InputImages:
    """The generator inputs a folder offers: image ``files``, and ``half`` (``"A"``/``"B"``) of each
    aligned composite that is the input, or ``None`` when the files are whole input images."""

    files: list[Path]
    half: str | None = None

    def read(self, path: Path) -> np.ndarray:
        """One input as RGB ``uint8`` (its input half for a composite)."""
        image = read_rgb(path)
        return image if self.half is None else aligned_halves(image)["AB".index(self.half)]


def input_images(directory: str | os.PathLike[str], split: str = "train") -> InputImages:
    """The generator inputs under ``directory``, the way training reads them.

    A dataset root gives its ``split`` (else its first split); an aligned split folder (``train/``
    of a dataset root) gives the A halves of its composites, or the B halves when the root's
    ``dataset.json`` says ``direction: BtoA``; CycleGAN's ``trainA/`` (``trainB/`` for BtoA) gives
    its images; any other folder, every image under it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PocketganError(f"{directory}: no such directory")
    splits = available_splits(directory)
    if splits:
        return _split_inputs(directory, split if split in splits else splits[0])
    if directory.name in STANDARD_SPLITS:  # a pix2pix split folder: A|B composites
        return _split_inputs(directory.parent, directory.name)
    return InputImages([p for p in list_files(directory) if is_image_name(p)])


def _split_inputs(root: Path, split: str) -> InputImages:
    location = locate_split(root, split)
    backwards = read_dataset_json(root).get("direction") == "BtoA"
    if location.layout == ALIGNED:
        files = [p for p in list_files(location.folders[0]) if is_image_name(p)]
        return InputImages(files, "B" if backwards else "A")
    folder = location.folders[1 if backwards else 0]
    return InputImages([p for p in list_files(folder) if is_image_name(p)])
