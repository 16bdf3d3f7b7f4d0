"""A test video for the demo: a slow pan and zoom across scenes, drawn with numpy and OpenCV only.

``python -m pocketgan.runtime.demo.sample_video OUT.mp4 --seconds 10 --size 256 [--fps 30] [--images DIR]
[--scenes 3]``

The scenes are synthetic (a sky gradient, hills, seeded shapes and lines) unless ``--images DIR`` gives
photographs (a dataset folder gives its input images, as training reads them); the video spends equal
time on each of ``--scenes`` (3), drifting and zooming in slowly (Ken Burns), so consecutive frames
differ a little, as in real footage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pocketgan.core.cli import fail
from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_size
from pocketgan.imaging import ImageError, input_images, resize
from pocketgan.runtime.demo.sinks import VideoFileSink
from pocketgan.runtime.demo.sources import cv2_module

#: The canvas is this many times the frame, so the pan has room.
CANVAS = 2
SCENES = 3
ZOOM = 1.5  # from the whole canvas height to 1/ZOOM of it
PROG = "python -m pocketgan.runtime.demo.sample_video"


def synthetic_scene(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB scene: a vertical sky gradient, two hills, the sun, seeded rectangles, circles and lines."""
    cv2 = cv2_module()
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(60, 200, 3), rng.integers(150, 255, 3)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    scene = np.ascontiguousarray(np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).astype(np.uint8))
    cv2.circle(scene, (int(width * rng.uniform(0.1, 0.9)), height // 5), height // 10, (255, 230, 120), -1, cv2.LINE_AA)
    xs = np.arange(width)
    for level, color in ((0.55, rng.integers(40, 140, 3)), (0.7, rng.integers(20, 100, 3))):
        crest = height * (level + 0.08 * np.sin(xs / width * rng.uniform(3, 8) + rng.uniform(0, 6)))
        hill = np.concatenate([np.stack([xs, crest], 1), [[width - 1, height - 1], [0, height - 1]]]).astype(np.int32)
        cv2.fillPoly(scene, [hill], tuple(int(c) for c in color), cv2.LINE_AA)
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.uniform(0, width)), int(rng.uniform(height * 0.3, height))
        r = int(rng.uniform(0.02, 0.08) * width)
        if rng.random() < 0.5:
            cv2.rectangle(scene, (x - r, y - r), (x + r, y + 2 * r), color, -1, cv2.LINE_AA)
        else:
            cv2.circle(scene, (x, y), r, color, -1, cv2.LINE_AA)
    for _ in range(6):
        points = rng.uniform(0, 1, (4, 2)) * (width, height)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.polylines(scene, [points.astype(np.int32)], False, color, max(1, width // 200), cv2.LINE_AA)
    return scene


def scenes(size: tuple[int, int], images: str | os.PathLike[str] | None, seed: int,
           count: int = SCENES) -> list[np.ndarray]:  # fmt: skip
    """``count`` canvases :data:`CANVAS` times the frame: images of the folder ``images`` spread over it (a
    dataset's input halves, as training reads them), resized; else synthetic scenes."""
    height, width = size[0] * CANVAS, size[1] * CANVAS
    if images is None:
        return [synthetic_scene(height, width, seed + k) for k in range(count)]
    inputs = input_images(images)
    if not inputs.files:
        raise PocketganError(f"{images}: no images in it")
    picked = sorted({round(k * (len(inputs.files) - 1) / max(1, count - 1)) for k in range(count)})
    canvases = []
    for path in (inputs.files[k] for k in picked):
        try:
            canvases.append(resize(inputs.read(path), height, width, "area"))
        except ImageError as exc:
            raise PocketganError(f"{path}: {exc}") from None
    return canvases


def ken_burns(scene: np.ndarray, size: tuple[int, int], t: float) -> np.ndarray:
    """The frame at ``t`` in [0, 1] of a pan from the canvas's left to its right while zooming in."""
    cv2 = cv2_module()
    height, width = size
    view = scene.shape[0] * (1.0 - (1.0 - 1.0 / ZOOM) * t)  # canvas rows the frame shows
    scale = view / height
    x0 = (scene.shape[1] - width * scale) * (0.1 + 0.8 * t)
    y0 = (scene.shape[0] - view) * 0.5
    matrix = np.array([[scale, 0.0, x0], [0.0, scale, y0]], dtype=np.float64)
    return cv2.warpAffine(scene, matrix, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)  # fmt: skip


def sample_frames(frames: int, size: tuple[int, int], images: str | os.PathLike[str] | None = None,
                  seed: int = 0, count: int = SCENES) -> Iterator[np.ndarray]:  # fmt: skip
    """``frames`` RGB frames of ``size`` ``(height, width)``, equal time on each of ``count`` scenes."""
    canvases = scenes(size, images, seed, count)
    per_scene = max(1, -(-frames // len(canvases)))
    for index in range(frames):
        scene, step = divmod(index, per_scene)
        yield ken_burns(canvases[min(scene, len(canvases) - 1)], size, step / max(1, per_scene - 1))


def write_sample_video(
    path: str | os.PathLike[str], *, frames: int, size: tuple[int, int] = (256, 256), fps: float = 30.0,
    images: str | os.PathLike[str] | None = None, seed: int = 0, count: int = SCENES,
) -> Path:  # fmt: skip
    """Write :func:`sample_frames` as an ``mp4v`` video at ``fps`` (atomically) and return its path."""
    if frames < 1 or fps <= 0:
        raise PocketganError(f"a video needs at least one frame and a positive rate; got {frames} at {fps:g} FPS")
    sink = VideoFileSink(path)
    sink.open(size, fps)
    try:
        for frame in sample_frames(frames, size, images, seed, count):
            sink.write(frame)
    except BaseException:
        sink.close(keep=False)
        raise
    return sink.close(keep=True)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pocketgan.runtime.demo.sample_video OUT.mp4 [--seconds S] [--size H|HxW] [--fps F]
    [--images DIR]``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("out", metavar="OUT.mp4", help="the video to write (mp4v)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length (default 10)")
    parser.add_argument("--size", default="256", metavar="H|HxW", help="frame size (default 256)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    parser.add_argument("--images", metavar="DIR", help="pan across images of this folder (or a dataset's inputs) "
                        "instead of synthetic scenes")
    parser.add_argument("--scenes", type=int, default=SCENES, help=f"how many scenes (default {SCENES})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
        frames = max(1, round(args.seconds * args.fps))
        if args.scenes < 1:
            raise PocketganError(f"--scenes must be >= 1, got {args.scenes}")
        written = write_sample_video(args.out, frames=frames, size=size, fps=args.fps, images=args.images,
                                     seed=args.seed, count=args.scenes)  # fmt: skip
    except PocketganError as exc:
        return fail(str(exc))
    print(f"wrote {written} ({frames} frames, {size[1]}x{size[0]} at {args.fps:g} FPS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
