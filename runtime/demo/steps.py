"""The model's three stages of the pipeline: preprocess, inference, postprocess, for an image or a latent artifact.

Preprocessing is :func:`pocketgan.imaging.prepare` (the resize and normalization of training, calibration and
:meth:`~pocketgan.runtime.runner.Runner.translate`), postprocessing the I/O spec's output mapping
(:func:`~pocketgan.runtime.pixels.to_image`), so a frame of the demo is the image ``translate`` makes of it
at the model's size. Side by side puts the input, resized to the output's size, left of the output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.imaging import prepare, resize
from pocketgan.runtime import latent, pixels
from pocketgan.runtime.demo.frames import Frame
from pocketgan.runtime.runner import Runner

StageFn = Callable[[Frame], None]


def fixed_batch(runner: Runner) -> int:
    """The artifact's batch when it is fixed (a frame is then repeated to fill it), else 1."""
    n = runner.input_shape[0]
    return n if isinstance(n, int) and n > 0 else 1


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An ``H×W×1`` (gray) image as ``H×W×3``; RGB as it is."""
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


class ModelSteps(ABC):
    """Preprocess, inference and postprocess of one artifact; :meth:`stages` lists them for the pipeline."""

    def __init__(self, runner: Runner, scale: float = 1.0) -> None:
        self.runner = runner
        self.scale = scale  # the shown frame's size over the model output's
        self.batch = fixed_batch(runner)
        self.last_feed: dict[str, np.ndarray] | None = None  # for the placement record after the run

    def stages(self) -> list[tuple[str, StageFn]]:
        """``(name, fn(frame))`` of the three model stages, in order."""
        return [("preprocess", self.preprocess), ("inference", self.inference), ("postprocess", self.postprocess)]

    @abstractmethod
    def dummy_frame(self) -> Frame:
        """A frame to warm up on (mid-gray image, or a zero latent)."""

    @abstractmethod
    def preprocess(self, frame: Frame) -> None:
        """``frame.data`` (the decoded image or latent) → the model's feed ``{input name: batch, …}``."""

    def inference(self, frame: Frame) -> None:
        """The feed → the model's first output (NCHW float32)."""
        self.last_feed = frame.data
        frame.data = self.runner.run_feed(frame.data)

    def postprocess(self, frame: Frame) -> None:
        """The output → the RGB ``uint8`` frame to show (:meth:`compose`), resized by ``scale``."""
        shown = self.compose(frame, as_rgb(pixels.to_image(frame.data[0], self.runner.io)))
        if self.scale != 1.0:
            height, width = (max(1, round(n * self.scale)) for n in shown.shape[:2])
            shown = resize(shown, height, width, self.runner.io.interpolation)
        frame.data = shown

    def compose(self, frame: Frame, output: np.ndarray) -> np.ndarray:
        """The frame to show made of the model's ``output`` image (the output itself)."""
        return output

    def process(self, frame: Frame) -> np.ndarray:
        """All three stages on ``frame`` at once (the warm-up): the frame the sink gets."""
        for _name, stage in self.stages():
            stage(frame)
        return frame.data


class ImageSteps(ModelSteps):
    """An image-to-image artifact at input ``size`` ``(height, width)``; ``side_by_side`` shows input | output."""

    def __init__(self, runner: Runner, size: tuple[int, int], side_by_side: bool = False, scale: float = 1.0) -> None:
        super().__init__(runner, scale)
        self.size = size
        self.side_by_side = side_by_side

    def dummy_frame(self) -> Frame:
        image = np.full((*self.size, 3), 128, np.uint8)
        return Frame(-1, image, image, 0.0)

    def preprocess(self, frame: Frame) -> None:
        batch = prepare(frame.image, self.runner.io, self.size)[None]
        frame.data = {self.runner.input_name: np.repeat(batch, self.batch, axis=0) if self.batch > 1 else batch}

    def compose(self, frame: Frame, output: np.ndarray) -> np.ndarray:
        """The output, or with ``side_by_side`` the input resized to it, left of it."""
        if not self.side_by_side:
            return output
        height, width = output.shape[:2]
        shown = resize(frame.image, height, width, self.runner.io.interpolation)
        return np.concatenate([shown, output], axis=1)


class LatentSteps(ModelSteps):
    """A latent-input artifact: each frame's ``z`` with the noise (and ψ) of the walk's first keyframe, fixed
    for the whole walk so that nothing flickers."""

    def __init__(self, runner: Runner, first_seed: int, scale: float = 1.0) -> None:
        super().__init__(runner, scale)
        z, rngs = latent.seed_latents(first_seed, int(runner.io.z_dim or 0))
        self.fixed = latent.latent_feeds(runner.info.inputs, runner.io, z, rngs, None, runner.name)

    def dummy_frame(self) -> Frame:
        z = np.zeros(int(self.runner.io.z_dim or 0), np.float32)
        return Frame(-1, None, z, 0.0)

    def preprocess(self, frame: Frame) -> None:
        feed = {**self.fixed, self.runner.input_name: frame.data[None]}
        if self.batch > 1:
            batched = [key for key in feed if key != latent.TRUNCATION_INPUT]
            feed = latent.split_feed(feed, batched, self.batch)[0]
        frame.data = feed


def model_steps(
    runner: Runner, size: tuple[int, int] | None, side_by_side: bool, seed: int, scale: float = 1.0
) -> ModelSteps:
    """The steps for ``runner``: latent ones for a latent-input artifact (``size`` unused), else image ones."""
    if runner.io.is_latent:
        if side_by_side:
            raise PocketganError("--side-by-side shows the input beside the output; a latent walk has no input image")
        return LatentSteps(runner, seed, scale)
    if size is None:
        raise PocketganError(f"{runner.name}: the model's input size is needed")
    return ImageSteps(runner, size, side_by_side, scale)


def model_size(
    runner: Runner, requested: tuple[int, int] | None, frame_size: tuple[int, int] | None
) -> tuple[int, int] | None:
    """The ``(height, width)`` the model runs at: ``requested`` (``--size``), else the artifact's fixed size,
    else the source's frame size rounded to the sizes the model accepts; ``None`` for a latent artifact."""
    if runner.io.is_latent:
        runner.concrete_input_shape(fixed_batch(runner), requested)  # a --size the model does not make: one line
        return None
    height, width = runner.input_shape[2:]
    if requested is None and not (isinstance(height, int) and isinstance(width, int)):
        if frame_size is None:
            raise PocketganError(f"{runner.name} has a dynamic input size; pass --size H or --size HxW")
        requested = pixels.fit_size(*frame_size, runner.io.size_multiple)
    shape = runner.concrete_input_shape(fixed_batch(runner), requested)
    return int(shape[2]), int(shape[3])
