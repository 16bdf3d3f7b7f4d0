"""Inputs for parity checks and int8 calibration: deterministic synthetic images, or real ones from a folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.contract import IOSpec

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
# Detail of successive synthetic inputs: random values on a grid of this many cells across the
# image, upsampled bicubically (the same content at any resolution); None is per-pixel noise.
SYNTHETIC_GRID_CELLS = (32, None, 8, 64)


def synthetic_inputs(io: IOSpec, count: int, size: tuple[int, int], *, seed: int = 0) -> torch.Tensor:
    """``count`` image-like NCHW inputs in ``io.value_range``, the same for the same ``seed``.

    They cycle through smooth random fields and pixel noise (:data:`SYNTHETIC_GRID_CELLS`),
    so parity and calibration see both flat regions and high-frequency detail.
    """
    height, width = size
    generator = torch.Generator().manual_seed(seed)
    images = []
    for index in range(count):
        cells = SYNTHETIC_GRID_CELLS[index % len(SYNTHETIC_GRID_CELLS)]
        grid = (height, width) if cells is None else (min(cells, height), min(cells, width))
        image = torch.rand(1, io.input_channels, *grid, generator=generator)
        if grid != (height, width):
            image = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
        images.append(image.clamp(0.0, 1.0))
    return _to_value_range(torch.cat(images), io)


def read_calibration_images(
    directory: str | os.PathLike[str], io: IOSpec, size: tuple[int, int], *, limit: int
) -> torch.Tensor:
    """Up to ``limit`` images found under ``directory`` (spread over the sorted list), resized to
    ``size`` and normalized like the model's inputs (uint8 RGB → ``io.value_range``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PocketganError(f"{directory}: no such calibration directory")
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise PocketganError(f"{directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) to calibrate with")
    files = files[:: max(1, len(files) // limit)][:limit]
    cv2 = require("cv2", "runtime", "reading calibration images")
    images = np.stack([_read_image(cv2, path, io.input_channels, size) for path in files])
    return _to_value_range(torch.from_numpy(images).float() / 255.0, io)


def _read_image(cv2, path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    if channels not in (1, 3):
        raise PocketganError(f"calibration images need a 1- or 3-channel model; this one takes {channels}")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
    if image is None:
        raise PocketganError(f"{path}: not a readable image")
    height, width = size
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        return image[None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def _to_value_range(unit: torch.Tensor, io: IOSpec) -> torch.Tensor:
    low, high = io.value_range
    return (low + unit * (high - low)).contiguous()
