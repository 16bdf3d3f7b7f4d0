"""Images at the runtime's door: validation and the sizes a model accepts.

Reading, resizing and normalization are :mod:`pocketgan.imaging`'s (the functions training and
int8 calibration use): :func:`to_tensor` and :func:`to_image` are its :func:`~pocketgan.imaging.normalize`
and :func:`~pocketgan.imaging.denormalize` with a batch axis.
"""

from __future__ import annotations

import numpy as np

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.imaging import denormalize, normalize, resize

__all__ = ["check_image", "fit_size", "resize", "to_image", "to_tensor"]


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
    """uint8 ``H×W×C`` → ``1×C×H×W`` as ``io`` says (``x * scale + offset``, channel order)."""
    return np.ascontiguousarray(normalize(image, io)[None], dtype=dtype)


def to_image(tensor: np.ndarray, io: IOSpec) -> np.ndarray:
    """``C×H×W`` model values → uint8 ``H×W×C`` RGB (values outside ``io.value_range`` are clipped)."""
    return denormalize(tensor, io)


def fit_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The nearest size a model with ``size_multiple`` accepts (at least one multiple per side)."""
    multiple = max(1, int(multiple))
    return (max(multiple, round(height / multiple) * multiple), max(multiple, round(width / multiple) * multiple))
