"""Where demo frames go: a window when this machine has a display, else a video file.

Videos are ``mp4v`` (MPEG-4 part 2, lossy; in every OpenCV wheel, unlike ``avc1``/H.264), except ``.mkv``,
which is lossless FFV1: the exact frames, at several times the size.

A video is written to a hidden temporary name beside ``OUT`` (same extension: OpenCV picks the container
by it) and renamed to ``OUT`` when the demo ends, so a failed run never leaves a half-written video.
"""

from __future__ import annotations

import os
import sys
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.demo.sources import cv2_module, quiet_opencv

#: The codec of a video file: ``mp4v`` unless its extension names another.
FOURCC = "mp4v"
FOURCC_BY_SUFFIX = {".mkv": "FFV1"}


def fourcc_for(path: Path) -> str:
    """The codec a video at ``path`` is written with (by its extension)."""
    return FOURCC_BY_SUFFIX.get(path.suffix.lower(), FOURCC)
QUIT_KEYS = (ord("q"), 27)  # q, Esc


def has_display() -> bool:
    """Whether a window can be shown: OpenCV was built with a GUI (the headless wheel is not) and, on
    Linux and the BSDs, an X or Wayland display is set."""
    cv2 = cv2_module()
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "NONE")  # fmt: skip
    if gui.upper() == "NONE":
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Sink(ABC):
    """Takes the finished RGB frames: :meth:`open` once the frame size is known, :meth:`write` each frame,
    :meth:`close` at the end (``keep=False`` after a failure)."""

    description = "frames"

    def open(self, size: tuple[int, int], fps: float) -> None:
        """Prepare for frames of ``size`` ``(height, width)`` at ``fps``; one line if it cannot."""

    @abstractmethod
    def write(self, image: np.ndarray) -> bool:
        """Take one RGB ``uint8`` frame; ``False`` asks the demo to stop (the viewer closed the window)."""

    def close(self, keep: bool = True) -> Path | None:
        """Finish; the file written, if any."""
        return None


class VideoFileSink(Sink):
    """A video at ``path`` (``mp4v``; ``.mkv``: lossless FFV1), written under a temporary name and renamed at
    :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise PocketganError(f"--out {self.path} is a directory; give a video file name such as demo.mp4")
        if not self.path.suffix:
            raise PocketganError(f"--out {self.path}: give the video an extension such as .mp4 (mp4v codec)")
        self.description = str(self.path)
        self.writer = None
        self.tmp: Path | None = None
        self.size: tuple[int, int] | None = None

    def open(self, size: tuple[int, int], fps: float) -> None:
        cv2 = cv2_module()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        except OSError as exc:
            raise PocketganError(f"--out {self.path}: cannot write there ({exc.strerror or exc})") from None
        os.close(fd)
        self.tmp, self.size = Path(name), size
        with quiet_opencv():
            fourcc = cv2.VideoWriter_fourcc(*fourcc_for(self.path))
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps, (size[1], size[0]))
        if not self.writer.isOpened():
            self.close(keep=False)
            raise PocketganError(
                f"--out {self.path}: OpenCV cannot write a {self.path.suffix} video with the {fourcc_for(self.path)} "
                "codec (use .mp4, .avi, .mov, or .mkv for lossless)"
            )

    def write(self, image: np.ndarray) -> bool:
        if image.shape[:2] != self.size:
            got, want = f"{image.shape[1]}x{image.shape[0]}", f"{self.size[1]}x{self.size[0]}"
            raise PocketganError(f"{self.path}: a frame of {got} for a video of {want}")
        cv2 = cv2_module()
        self.writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return True

    def close(self, keep: bool = True) -> Path | None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.tmp is None:
            return None
        tmp, self.tmp = self.tmp, None
        if not keep:
            tmp.unlink(missing_ok=True)
            return None
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, self.path)
        return self.path


class WindowSink(Sink):
    """A window titled ``title``; q or Esc (or closing it) stops the demo."""

    def __init__(self, title: str = "pocketgan demo") -> None:
        self.title = self.description = title
        self.opened = False

    def open(self, size: tuple[int, int], fps: float) -> None:
        cv2 = cv2_module()
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        cv2.resizeWindow(self.title, size[1], size[0])
        self.opened = True

    def write(self, image: np.ndarray) -> bool:
        cv2 = cv2_module()
        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        return key not in QUIT_KEYS and visible

    def close(self, keep: bool = True) -> Path | None:
        if self.opened:
            cv2_module().destroyWindow(self.title)
            self.opened = False
        return None


class CollectSink(Sink):
    """Keeps every frame in :attr:`frames` (for Python callers and tests)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write(self, image: np.ndarray) -> bool:
        self.frames.append(image.copy())
        return True


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
