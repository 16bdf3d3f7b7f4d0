"""A latent walk: a smooth loop through seeded latents, one keyframe every couple of seconds (slerp between them).

Keyframe ``k`` is seed ``seed + k``'s latent, exactly as :meth:`~pocketgan.runtime.runner.Runner.generate`
draws it (:func:`~pocketgan.runtime.latent.seed_latents`), so the walk passes through the images
``generate(seed=…)`` makes; the last segment returns to the first keyframe so the video loops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.demo.sources import DEFAULT_FPS, Source
from pocketgan.runtime.latent import seed_latents

#: Seconds between keyframes.
KEYFRAME_SECONDS = 2.0


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (``t = 0``) to ``b`` (``t = 1``) along the great circle of their
    directions (linear when they are almost parallel), as float32."""
    if t == 0.0:
        return np.asarray(a, dtype=np.float32)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
    omega = math.acos(float(np.clip(cos, -1.0, 1.0)))
    if omega < 1e-6:
        return ((1.0 - t) * a64 + t * b64).astype(np.float32)
    return ((math.sin((1.0 - t) * omega) * a64 + math.sin(t * omega) * b64) / math.sin(omega)).astype(np.float32)


def walk_frame_count(seconds: float, fps: float) -> int:
    """Frames of a walk of ``seconds`` at ``fps`` (at least one)."""
    if seconds <= 0 or fps <= 0:
        raise PocketganError(f"--seconds and --fps must be positive, got {seconds:g} and {fps:g}")
    return max(1, round(seconds * fps))


class LatentWalkSource(Source):
    """``seconds × fps`` latents ``(z_dim,)``: keyframes from seeds ``seed, seed + 1, …`` every
    :data:`KEYFRAME_SECONDS` (at least two), slerp between consecutive ones, back to the first at the end."""

    kind = "latent-walk"
    images = False

    def __init__(self, z_dim: int, seconds: float = 10.0, fps: float = DEFAULT_FPS, seed: int = 0) -> None:
        if z_dim < 1:
            raise PocketganError("a latent walk needs an artifact with a latent input (z_dim unknown)")
        self.fps = float(fps)
        self.frames = walk_frame_count(seconds, fps)
        self.seed = seed
        self.segments = max(2, round(seconds / KEYFRAME_SECONDS))
        self.keyframes, _ = seed_latents(list(range(seed, seed + self.segments)), z_dim)
        self._next = 0

    def latent(self, index: int) -> np.ndarray:
        """The latent of frame ``index``."""
        position = index * self.segments / self.frames  # exact at keyframes
        key = min(int(position), self.segments - 1)
        start, end = self.keyframes[key], self.keyframes[(key + 1) % self.segments]
        return slerp(start, end, position - key)

    def keyframe_index(self, key: int) -> int:
        """The frame at which the walk passes exactly through keyframe ``key`` (seed ``seed + key``), when it
        falls on a frame."""
        return key * self.frames // self.segments

    def read(self) -> np.ndarray | None:
        if self._next >= self.frames:
            return None
        self._next += 1
        return self.latent(self._next - 1)

    def frame_count(self) -> int | None:
        return self.frames

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "seed": self.seed, "keyframes": self.segments,
                "keyframe_seconds": KEYFRAME_SECONDS}  # fmt: skip
