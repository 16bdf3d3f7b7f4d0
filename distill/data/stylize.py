"""The target domain's filter: a deterministic stylization of an RGB photo.

:func:`stylize` is OpenCV's edge-preserving ``stylization`` (a recursive edge-aware
smoothing of the colours plus darkened edges: a "watercolour" look a person recognises at a
glance). It is a pure function of the pixels (no randomness, no state), so a target made
by it is a function of its input and a translation network can learn it exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from pocketgan.core.errors import PocketganError

SIGMA_S = 60.0
"""Spatial extent of the edge-preserving smoothing (OpenCV's ``sigma_s``, 0–200)."""
SIGMA_R = 0.45
"""How strongly colour differences stop the smoothing (OpenCV's ``sigma_r``, 0–1)."""


def stylize(rgb: np.ndarray) -> np.ndarray:
    """The stylized copy of ``rgb`` (``uint8`` H×W×3 RGB in, same shape and dtype out); deterministic."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise PocketganError(f"stylize needs a uint8 H×W×3 RGB image, got {rgb.dtype} {tuple(rgb.shape)}")
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.stylization(bgr, sigma_s=SIGMA_S, sigma_r=SIGMA_R), cv2.COLOR_BGR2RGB)
