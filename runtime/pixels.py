"""Pixels in and out of a generator: uint8 HWC RGB images ⇄ NCHW float tensors in the model's value range."""

from __future__ import annotations

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import IOSpec


def check_image(image: np.ndarray, channels: int) -> np.ndarray:
    """Validate a uint8 ``H×W×C`` image (``H×W`` when ``channels`` is 1) and return it as ``H×W×C``."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise PocketganError(f"expected a uint8 image array, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise PocketganError(f"expected an H×W×{channels} RGB image, got shape {tuple(image.shape)}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise PocketganError(f"empty image of shape {tuple(image.shape)}")
    return image


def to_tensor(image: np.ndarray, io: IOSpec, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """uint8 ``H×W×C`` → ``1×C×H×W`` scaled from [0, 255] to ``io.value_range``."""
    low, high = io.value_range
    scaled = image.astype(np.float32) * ((high - low) / 255.0) + low
    return np.ascontiguousarray(scaled.transpose(2, 0, 1)[None], dtype=dtype)


def to_image(tensor: np.ndarray, io: IOSpec) -> np.ndarray:
    """``C×H×W`` in ``io.value_range`` → uint8 ``H×W×C`` (values outside the range are clipped)."""
    low, high = io.value_range
    unit = (np.asarray(tensor, dtype=np.float32) - low) / (high - low)
    pixels = np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def fit_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The nearest size a model with ``size_multiple`` accepts (at least one multiple per side)."""
    multiple = max(1, int(multiple))
    return (max(multiple, round(height / multiple) * multiple), max(multiple, round(width / multiple) * multiple))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``H×W×C`` uint8 image with OpenCV (area when shrinking, bilinear when growing)."""
    if image.shape[:2] == (height, width):
        return image
    import cv2

    shrinking = height * width < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return out.reshape(height, width, image.shape[2])
