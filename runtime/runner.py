"""``Runner``: one loaded generator behind a backend, with its tensor signature and pixel conventions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pocketgan.core.contract import ArtifactManifest, IOSpec, TensorInfo
from pocketgan.core.errors import PocketganError
from pocketgan.imaging import prepare
from pocketgan.runtime import latent, pixels
from pocketgan.runtime.placement import Placement


@dataclass
class RunnerInfo:
    """What a backend knows about a loaded model, beyond how to run it."""

    name: str
    backend: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    providers: list[str]
    io: IOSpec = field(default_factory=IOSpec)
    manifest: ArtifactManifest | None = None
    threads: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)  # MACs and the shape they were counted at (may be {})
    precision: str | None = None  # "fp32", "fp16", "int8" as the artifact says (None: unknown)


class Runner(ABC):
    """A generator ready to run: ``run(float32 batch) -> NCHW float32``, and ``translate(uint8 image)`` for an
    image-to-image artifact or ``generate(seed=...)`` for a latent-input one (StyleGAN2).

    Subclasses implement :meth:`run` (and :meth:`run_feed` if they take several inputs); everything else
    derives from :attr:`info`.
    """

    def __init__(self, info: RunnerInfo) -> None:
        several = len(info.inputs) > 1 and not info.io.is_latent  # a latent artifact may take ψ and noise too
        if not info.inputs or several or not info.outputs:
            raise PocketganError(
                f"{info.name}: expected a generator with one input and an output, "
                f"got {len(info.inputs)} inputs and {len(info.outputs)} outputs"
            )
        self.info = info

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 batch of the first input (NCHW images, or ``(N, z_dim)`` latents) and return the
        first output as float32 NCHW."""

    def run_feed(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run with a value for every input by name (a latent artifact's ``z``, ``truncation``, ``noise_*``)."""
        if len(self.info.inputs) != 1:
            raise PocketganError(f"{self.name}: the {self.backend} backend cannot feed several inputs")
        return self.run(feed[self.input_name])

    def placement(self, feed: Mapping[str, np.ndarray]) -> Placement | None:
        """Which provider (or device) ran each part of the graph on ``feed`` (a value for every input),
        as the backend itself reports it; ``None`` when the backend cannot tell (the default)."""
        return None

    # -- signature ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def providers(self) -> list[str]:
        """The execution providers (or devices) the backend actually uses."""
        return list(self.info.providers)

    @property
    def input_name(self) -> str:
        return self.info.inputs[0].name

    @property
    def input_shape(self) -> list[int | str]:
        """Input shape; dynamic dims are strings (``"batch"``, ``"height"``)."""
        return list(self.info.inputs[0].shape)

    @property
    def output_name(self) -> str:
        return self.info.outputs[0].name

    @property
    def output_shape(self) -> list[int | str]:
        return list(self.info.outputs[0].shape)

    @property
    def io(self) -> IOSpec:
        return self.info.io

    def concrete_input_shape(self, batch: int = 1, size: tuple[int, int] | None = None) -> tuple[int, ...]:
        """The shape to feed the first input: NCHW with static dims kept and ``batch``/``size`` filling the
        dynamic ones, or ``(batch, z_dim)`` for a latent input (``size``, if given, must be the output's).

        Raises a one-line error when ``size`` is needed but missing, or conflicts with a static shape.
        """
        shape = self.input_shape
        if self.io.is_latent:
            return self._latent_input_shape(batch, size)
        if len(shape) != 4:
            raise PocketganError(f"{self.name}: expected an NCHW input, got shape {shape}")
        n, c, h, w = shape
        if isinstance(n, int) and n != batch:
            raise PocketganError(
                f"{self.name} has a fixed batch of {n}; --batch {batch} needs an artifact exported with a dynamic batch"
            )
        channels = c if isinstance(c, int) else self.io.input_channels
        if isinstance(h, int) and isinstance(w, int):
            if size is not None and tuple(size) != (h, w):
                raise PocketganError(
                    f"{self.name} takes a fixed {h}x{w} input; --size {size[0]}x{size[1]} does not fit"
                )
            return batch, channels, h, w
        if size is None:
            raise PocketganError(f"{self.name} has a dynamic input size {shape}; pass --size H or --size HxW")
        height, width = int(size[0]), int(size[1])
        multiple = self.io.size_multiple
        for static, given in ((h, height), (w, width)):
            if isinstance(static, int) and static != given:
                raise PocketganError(f"{self.name} input shape {shape} does not fit --size {height}x{width}")
        if height < 1 or width < 1 or height % multiple or width % multiple:
            raise PocketganError(
                f"{self.name} needs a height and width that are positive multiples of {multiple}; got {height}x{width}"
            )
        return batch, channels, height, width

    def _latent_input_shape(self, batch: int, size: tuple[int, int] | None) -> tuple[int, int]:
        n = self.input_shape[0]
        if isinstance(n, int) and n != batch:
            raise PocketganError(
                f"{self.name} has a fixed batch of {n}; --batch {batch} needs an artifact exported with a dynamic batch"
            )
        made = self.output_shape[2:]
        if size is not None and all(isinstance(d, int) for d in made) and tuple(size) != tuple(made):
            raise PocketganError(
                f"{self.name} makes {made[0]}x{made[1]} images from a latent; --size {size[0]}x{size[1]} does not fit"
            )
        return batch, int(self.io.z_dim or 0)

    # -- images ------------------------------------------------------------------------------
    def generate(
        self,
        seed: int | Sequence[int] | None = None,
        *,
        z: np.ndarray | None = None,
        truncation: float | None = None,
        noise_seed: int = 0,
    ) -> np.ndarray:
        """Images from a latent-input artifact (StyleGAN2) as uint8 ``N×H×W×C`` RGB, mapped by the I/O spec.

        Give ``seed`` (one int or a list: one image per seed, ``z = default_rng(seed).standard_normal(z_dim)``)
        or ``z`` (``(N, z_dim)`` or ``(z_dim,)``). ``truncation`` sets ψ when the artifact takes it as an input
        (else it must be the value baked in at export). Noise inputs, if the artifact has them, are drawn from
        each seed's generator after ``z`` (with ``z``: from ``default_rng(noise_seed)``).
        """
        if not self.io.is_latent:
            raise PocketganError(f"{self.name} translates images; generate() needs a latent-input artifact (StyleGAN2)")
        if (seed is None) == (z is None):
            raise PocketganError("generate: give seed=... or z=..., exactly one")
        z_dim = int(self.io.z_dim or 0)
        if z is None:
            z, rngs = latent.seed_latents(seed, z_dim)  # type: ignore[arg-type]
        else:
            z = latent.check_latents(z, z_dim, self.name)
            rngs = [np.random.default_rng(noise_seed)] * len(z)
        feed = latent.latent_feeds(self.info.inputs, self.io, z, rngs, truncation, self.name)
        n = self.input_shape[0]
        batched = [key for key in feed if key != latent.TRUNCATION_INPUT]
        chunks = latent.split_feed(feed, batched, n if isinstance(n, int) else len(z))
        images = np.concatenate([self.run_feed(chunk) for chunk in chunks])[: len(z)]
        return np.stack([pixels.to_image(image, self.io) for image in images])

    def translate(self, image: np.ndarray) -> np.ndarray:
        """Translate one uint8 ``H×W×C`` RGB image and return a uint8 RGB image of the same height and width.

        The image is resized to the artifact's fixed size (or to the nearest accepted size when the
        size is dynamic) and normalized as the sidecar's I/O spec says (:func:`pocketgan.imaging.prepare`:
        the resize and normalization of training and calibration), run, mapped back to pixels and
        resized back with the same interpolation.
        """
        if self.io.is_latent:
            raise PocketganError(f"{self.name} takes a latent, not an image; use generate(seed=...)")
        image = pixels.check_image(image, self.io.input_channels)
        height, width = image.shape[:2]
        n, _, h, w = self.input_shape
        if not (isinstance(h, int) and isinstance(w, int)):
            h, w = pixels.fit_size(height, width, self.io.size_multiple)
        batch = prepare(image, self.io, (h, w))[None]
        if isinstance(n, int) and n > 1:
            batch = np.repeat(batch, n, axis=0)
        out = pixels.to_image(self.run(batch)[0], self.io)
        return pixels.resize(out, height, width, self.io.interpolation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, providers={self.providers}, input={self.input_shape})"
