"""The text drawn on every demo frame: FPS and what each stage cost, over a darkened band at the top.

The FPS is measured at the sink over the last :data:`FPS_WINDOW` frames; the stage milliseconds are the
frame's own, except ``encode``, which is the previous frame's (this one is being encoded).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import numpy as np

from pocketgan.runtime.demo.sources import cv2_module

#: Frames the overlay's FPS is averaged over.
FPS_WINDOW = 30
SHORT_NAMES = {"decode": "dec", "preprocess": "pre", "inference": "infer", "postprocess": "post", "encode": "enc"}


class FpsMeter:
    """Frames per second over the last ``window`` frames, from the times they were finished."""

    def __init__(self, window: int = FPS_WINDOW) -> None:
        self.times: deque[float] = deque(maxlen=window + 1)

    def tick(self, now: float) -> float:
        """Record a frame finished at ``now`` (seconds) and return the current rate (0 until two frames)."""
        self.times.append(now)
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def overlay_lines(fps: float, ms: Mapping[str, float], dropped: int = 0) -> list[str]:
    """``["24.1 FPS  dropped 3", "dec 1.2 pre 0.4 infer 38.0", "post 0.3 enc 1.1 ms"]``."""
    head = f"{fps:.1f} FPS" + (f"  dropped {dropped}" if dropped else "")
    parts = [f"{SHORT_NAMES.get(name, name)} {value:.1f}" for name, value in ms.items()]
    return [head, " ".join(parts[:3]), " ".join(parts[3:]) + " ms"]


def band_height(image: np.ndarray, lines: int = 3) -> int:
    """Rows of the top band the overlay covers on ``image``."""
    return min(image.shape[0], lines * _line_height(image) + _margin(image))


def draw_overlay(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw ``lines`` in white on a darkened band across the top of ``image`` (RGB ``uint8``, in place)."""
    cv2 = cv2_module()
    band = band_height(image, len(lines))
    image[:band] //= 3
    scale, step, margin = _scale(image), _line_height(image), _margin(image)
    for row, text in enumerate(lines):
        baseline = margin + (row + 1) * step - step // 4
        cv2.putText(image, text, (margin, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def _scale(image: np.ndarray) -> float:
    return float(np.clip(image.shape[1] / 900.0, 0.25, 1.0))


def _line_height(image: np.ndarray) -> int:
    return max(6, round(28 * _scale(image)))


def _margin(image: np.ndarray) -> int:
    return max(2, round(8 * _scale(image)))
