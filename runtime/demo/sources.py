"""Where demo frames come from: a video file, a camera, a folder of images, arrays, paced like a camera or not.

A source is *live* when frames arrive at their own rate whether or not the pipeline is ready (a camera,
or any source wrapped in :class:`Paced`): the pipeline then drops what inference cannot keep up with. A
file source is never dropped: it waits for the pipeline (back-pressure). :meth:`Source.wait` is the
untimed part of getting a frame (the camera's exposure, the pacing), :meth:`Source.read` the timed decode.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.imaging import ImageError, input_images

#: The rate of a source that has none of its own (a camera that does not say, arrays, a latent walk).
DEFAULT_FPS = 30.0
#: Output rate of a folder of images: each one stays on screen half a second.
IMAGES_FPS = 2.0


def cv2_module() -> ModuleType:
    """OpenCV, or one line saying to install ``pocketgan[runtime]``."""
    return require("cv2", "runtime", "the real-time demo (video decoding and encoding)")


@contextmanager
def quiet_opencv() -> Iterator[ModuleType]:
    """OpenCV with its own log silenced (a capture or writer that cannot open is then said in one line)."""
    cv2 = cv2_module()
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield cv2
    finally:
        cv2.utils.logging.setLogLevel(previous)


class Source(ABC):
    """Frames for the demo: RGB ``uint8`` ``H×W×3`` images (a latent walk yields latents instead)."""

    kind = "frames"
    live = False
    images = True  # False: the frames are latents (a latent walk)
    fps = DEFAULT_FPS

    def wait(self) -> bool:
        """Wait, untimed, until the next frame can be read; ``False`` when there is none."""
        return True

    @abstractmethod
    def read(self) -> Any | None:
        """The next frame (timed as the ``decode`` stage), or ``None`` at the end."""

    def frame_count(self) -> int | None:
        """How many frames the source holds, when it knows."""
        return None

    def frame_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of its frames, when known before reading."""
        return None

    def describe(self) -> dict[str, Any]:
        """The JSON record of the source."""
        return {"kind": self.kind, "fps": self.fps, "live": self.live, "frames": self.frame_count()}

    def close(self) -> None:
        """Release the device or file."""


class _Capture(Source):
    """A ``cv2.VideoCapture``: a file or a camera."""

    def __init__(self, capture: Any, what: str) -> None:
        cv2 = cv2_module()
        self.cv2 = cv2
        self.capture = capture
        self.what = what
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or DEFAULT_FPS
        height, width = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self._size = (height, width) if height > 0 and width > 0 else None

    def read(self) -> np.ndarray | None:
        ok, bgr = self.capture.read()
        return self.cv2.cvtColor(bgr, self.cv2.COLOR_BGR2RGB) if ok else None

    def frame_size(self) -> tuple[int, int] | None:
        return self._size

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": self.what}

    def close(self) -> None:
        self.capture.release()


class VideoSource(_Capture):
    """Every frame of a video file, in order, at the pace the pipeline takes them."""

    kind = "video"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        if not path.is_file():
            raise PocketganError(f"{path}: no such video file")
        with quiet_opencv() as cv2:
            capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise PocketganError(f"{path}: OpenCV cannot open it as a video")
        super().__init__(capture, str(path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._count = count if count > 0 else None

    def frame_count(self) -> int | None:
        return self._count


class CameraSource(_Capture):
    """A live camera (``cv2.VideoCapture(index)``): frames the pipeline is not ready for are dropped."""

    kind = "camera"
    live = True

    def __init__(self, index: int) -> None:
        with quiet_opencv() as cv2:
            capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            raise PocketganError(f"camera {index}: cannot be opened (is it connected and not in use?)")
        super().__init__(capture, f"camera {index}")

    def wait(self) -> bool:
        return bool(self.capture.grab())  # the exposure: not the pipeline's time

    def read(self) -> np.ndarray | None:
        ok, bgr = self.capture.retrieve()
        return self.cv2.cvtColor(bgr, self.cv2.COLOR_BGR2RGB) if ok else None


class ImageFolderSource(Source):
    """The images of a folder (or a dataset's input halves, as training reads them: :func:`input_images`)."""

    kind = "images"
    fps = IMAGES_FPS

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.inputs = input_images(self.directory)
        if not self.inputs.files:
            raise PocketganError(f"{self.directory}: no images in it")
        self._files: Iterator[Path] = iter(self.inputs.files)
        self._first: np.ndarray | None = None

    def _load(self, path: Path) -> np.ndarray:
        try:
            return self.inputs.read(path)
        except ImageError as exc:
            raise PocketganError(f"{path}: {exc}") from None

    def read(self) -> np.ndarray | None:
        path = next(self._files, None)
        if path is None:
            return None
        if self._first is not None and path == self.inputs.files[0]:
            image, self._first = self._first, None
            return image
        return self._load(path)

    def frame_count(self) -> int | None:
        return len(self.inputs.files)

    def frame_size(self) -> tuple[int, int] | None:
        if self._first is None:
            self._first = self._load(self.inputs.files[0])
        return self._first.shape[0], self._first.shape[1]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.directory)}


class FrameListSource(Source):
    """Frames given as arrays (RGB ``uint8`` ``H×W×3``), e.g. from Python."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = DEFAULT_FPS) -> None:
        self.frames = list(frames)
        self.fps = fps
        self._next = 0

    def read(self) -> np.ndarray | None:
        if self._next >= len(self.frames):
            return None
        self._next += 1
        return self.frames[self._next - 1]

    def frame_count(self) -> int | None:
        return len(self.frames)

    def frame_size(self) -> tuple[int, int] | None:
        return tuple(self.frames[0].shape[:2]) if self.frames else None  # type: ignore[return-value]


class Paced(Source):
    """``inner`` delivered at ``fps`` like a camera (live: frames the pipeline is not ready for are dropped).

    A source that falls behind its schedule restarts the schedule rather than bursting to catch up.
    """

    live = True

    def __init__(self, inner: Source, fps: float | None = None) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.fps = float(fps or inner.fps)
        if self.fps <= 0:
            raise PocketganError(f"a frame rate is positive, got {self.fps:g}")
        self._due: float | None = None

    def wait(self) -> bool:
        period = 1.0 / self.fps
        now = time.perf_counter()
        if self._due is None or now > self._due + period:
            self._due = now
        elif now < self._due:
            time.sleep(self._due - now)
        self._due += period
        return self.inner.wait()

    def read(self) -> Any | None:
        return self.inner.read()

    def frame_count(self) -> int | None:
        return self.inner.frame_count()

    def frame_size(self) -> tuple[int, int] | None:
        return self.inner.frame_size()

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "fps": self.fps, "live": True}

    def close(self) -> None:
        self.inner.close()
