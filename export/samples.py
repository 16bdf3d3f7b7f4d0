"""Inputs for parity checks and int8 calibration: deterministic synthetic images, or real ones (a folder, a dataset)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.imaging import IMAGE_EXTENSIONS, ImageError, InputImages, input_images, prepare

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
    """Up to ``limit`` generator inputs from ``directory`` (spread over the sorted files), as the model sees them.

    ``directory`` is a folder of images, or a dataset: a dataset root or a pix2pix split folder
    (``train/``) gives the A halves of its A|B composites (B with ``direction: BtoA`` in its
    ``dataset.json``), a CycleGAN root its ``trainA/`` images (:func:`pocketgan.imaging.input_images`).
    Each is read, resized to ``size`` and normalized by :func:`pocketgan.imaging.prepare`: the
    reader, resize and normalization of training and of the runtime.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PocketganError(f"{directory}: no such calibration directory")
    source = input_images(directory)
    if not source.files:
        raise PocketganError(f"{directory}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) to calibrate with")
    if io.input_channels not in (1, 3):
        raise PocketganError(f"calibration images need a 1- or 3-channel model; this one takes {io.input_channels}")
    files = source.files[:: max(1, len(source.files) // limit)][:limit]
    return torch.from_numpy(np.stack([prepare(_read(source, path), io, size) for path in files]))


def _read(source: InputImages, path: Path) -> np.ndarray:
    try:
        return source.read(path)
    except ImageError as exc:
        raise PocketganError(f"{path}: not a readable image ({exc})") from None


def _to_value_range(unit: torch.Tensor, io: IOSpec) -> torch.Tensor:
    low, high = io.value_range
    return (low + unit * (high - low)).contiguous()
