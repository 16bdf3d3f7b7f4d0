"""Image degradations the domain feature network learns to recognise (and to grade).

Each one is a failure mode image-quality metrics should notice in a generator's output:
blur (an under-trained or too-small student), noise, JPEG blocking, a colour cast,
checkerboard/upsampling artifacts (transposed convolutions, nearest upsampling) and an
output that still looks like the input edge map. ``severity`` in ``[0, 1]`` sets the
strength; ``"none"`` is the clean photo (severity 0).

All functions take and return ``H×W×3`` uint8 RGB arrays and draw randomness only from
the :class:`numpy.random.Generator` they are given (deterministic for a seed).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Degradation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def identity(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """The clean photo."""
    return image


def blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, σ from 0.6 to 2.5 px."""
    sigma = 0.6 + 1.9 * severity
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def noise(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise, σ from 4 to 32 grey levels; per channel or luminance-only."""
    sigma = 4.0 + 28.0 * severity
    channels = 3 if rng.random() < 0.5 else 1
    return _clip(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape[:2] + (channels,)))


def jpeg(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip, quality 40 down to 5."""
    quality = int(round(40 - 35 * severity))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        return image
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def colour_shift(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A colour cast: per-channel gain (±40 %) and offset (±40 levels), scaled by severity."""
    gain = 1.0 + severity * 0.4 * rng.choice([-1.0, 1.0], 3) * rng.uniform(0.5, 1.0, 3)
    offset = severity * 40.0 * rng.uniform(-1.0, 1.0, 3)
    return _clip(image.astype(np.float32) * gain + offset)


def checkerboard(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Upsampling artifacts: nearest-neighbour upsampling of a downscaled image plus the period-2
    checkerboard a strided transposed convolution leaves, amplitude 4 to 32 levels."""
    h, w = image.shape[:2]
    factor = 2 if severity < 0.6 else 4
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    blocky = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    pattern = np.where((yy + xx) % 2 == 0, 1.0, -1.0).astype(np.float32)[..., None]
    amplitude = (4.0 + 28.0 * severity) * rng.choice([-1.0, 1.0], 3) * rng.uniform(0.5, 1.0, 3)
    return _clip(blocky + pattern * amplitude)


def edge_map(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Blend towards the photo's edge map (dark Canny lines on white), as a student that copies its input."""
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (0, 0), 1.0)
    low = int(rng.integers(30, 80))
    edges = cv2.Canny(gray, low, low * 2)
    sketch = np.repeat((255 - edges)[..., None], 3, axis=2).astype(np.float32)
    alpha = 0.4 + 0.6 * severity
    return _clip((1 - alpha) * image.astype(np.float32) + alpha * sketch)


DEGRADATIONS: dict[str, Degradation] = {
    "none": identity,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "colour": colour_shift,
    "checkerboard": checkerboard,
    "edges": edge_map,
}
DEGRADATION_NAMES: tuple[str, ...] = tuple(DEGRADATIONS)


def degrade(image: np.ndarray, kind: int, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Apply degradation number ``kind`` (an index into :data:`DEGRADATION_NAMES`)."""
    return DEGRADATIONS[DEGRADATION_NAMES[kind]](np.ascontiguousarray(image), severity, rng)
