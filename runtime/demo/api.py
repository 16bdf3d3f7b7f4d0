"""``run_demo``: an artifact live on a video, a camera, a folder of images or a latent walk, with its summary."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.runtime.demo.frames import STAGES, Frame
from pocketgan.runtime.demo.latent_walk import LatentWalkSource
from pocketgan.runtime.demo.overlay import FpsMeter, draw_overlay, overlay_lines
from pocketgan.runtime.demo.pipeline import Pipeline, PipelineRun
from pocketgan.runtime.demo.sinks import Sink, VideoFileSink, WindowSink, has_display
from pocketgan.runtime.demo.sources import CameraSource, ImageFolderSource, Paced, Source, VideoSource
from pocketgan.runtime.demo.steps import ModelSteps, model_size, model_steps
from pocketgan.runtime.demo.summary import DemoSummary, frame_rates, stage_samples
from pocketgan.runtime.host import host_info
from pocketgan.runtime.runner import Runner
from pocketgan.runtime.stats import LatencyStats

#: Where the video goes when there is no display and no ``--out``.
DEFAULT_OUT = Path("demo.mp4")
#: Untimed runs of the model before the pipeline starts (the first onnxruntime run allocates).
WARMUP_RUNS = 2


@dataclass(frozen=True)
class DemoSettings:
    """How to run the demo.

    ``size`` is the model's input ``(height, width)`` (default: the artifact's fixed size, else the source's
    frame size); ``fps`` the output video's rate (default: the source's); ``seed`` the latent walk's first
    keyframe; ``scale`` the shown frames' size over the model output's (a 64-px model shown at 4× is
    readable, and so is its overlay); ``queue_bound`` the frames each queue between two stages may hold
    (default 2, live 1); ``placement`` records which provider ran each part of the graph after the run.
    """

    size: tuple[int, int] | None = None
    side_by_side: bool = False
    overlay: bool = True
    max_frames: int | None = None
    fps: float | None = None
    seed: int = 0
    scale: float = 1.0
    queue_bound: int | None = None
    placement: bool = True

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise PocketganError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.fps is not None and self.fps <= 0:
            raise PocketganError(f"--fps must be positive, got {self.fps:g}")
        if not self.scale > 0:
            raise PocketganError(f"--scale must be positive, got {self.scale:g}")
        if self.queue_bound is not None and self.queue_bound < 1:
            raise PocketganError(f"the queue bound must be >= 1, got {self.queue_bound}")


def open_source(
    *,
    video: str | os.PathLike[str] | None = None,
    camera: int | None = None,
    images: str | os.PathLike[str] | None = None,
    latent_walk: Runner | None = None,
    seconds: float = 10.0,
    fps: float | None = None,
    seed: int = 0,
    realtime: bool = False,
) -> Source:
    """The one source asked for: ``video`` (a file), ``camera`` (an index), ``images`` (a folder) or a latent
    walk of ``seconds`` at ``fps`` for the latent-input ``latent_walk`` runner; ``realtime`` paces it at its
    rate like a camera (live: frames the pipeline cannot keep up with are dropped)."""
    given = [name for name, value in (("--video", video), ("--camera", camera), ("--images", images),
                                      ("--latent-walk", latent_walk)) if value is not None]  # fmt: skip
    if len(given) != 1:
        what = ", ".join(given) if given else "none"
        raise PocketganError(f"give one source: --video IN, --camera N, --images DIR or --latent-walk (got {what})")
    if latent_walk is not None:
        if not latent_walk.io.is_latent:
            raise PocketganError(f"{latent_walk.name} translates images; --latent-walk needs a latent-input artifact")
        source: Source = LatentWalkSource(int(latent_walk.io.z_dim or 0), seconds, fps or 30.0, seed)
    elif camera is not None:
        return CameraSource(camera)
    else:
        source = VideoSource(video) if video is not None else ImageFolderSource(images)  # type: ignore[arg-type]
    return Paced(source, fps) if realtime else source


def default_sink(out: str | os.PathLike[str] | None) -> tuple[Sink, str | None]:
    """``(sink, note)``: a video file at ``out``; without it a window when there is a display, else
    :data:`DEFAULT_OUT` (the note says so)."""
    if out is not None:
        return VideoFileSink(out), None
    if has_display():
        return WindowSink(), None
    return VideoFileSink(DEFAULT_OUT), f"no display here: writing {DEFAULT_OUT} (choose with --out PATH)"


class Encoder:
    """The last stage: draws the overlay (FPS, this frame's stage times, the previous frame's encode) and
    hands the frame to the sink."""

    def __init__(self, sink: Sink, overlay: bool) -> None:
        self.sink = sink
        self.overlay = overlay
        self.run: PipelineRun | None = None  # the pipeline's running record: frames dropped so far
        self.meter = FpsMeter()
        self.previous: Frame | None = None
        self.fps = 0.0

    def __call__(self, frame: Frame) -> bool:
        self.fps = fps = self.meter.tick(time.perf_counter())
        image = frame.data
        if self.overlay:
            ms = {name: frame.ms[name] for name in STAGES if name in frame.ms}
            ms["encode"] = self.previous.ms.get("encode", 0.0) if self.previous is not None else 0.0
            dropped = self.run.dropped if self.run is not None else 0
            image = draw_overlay(np.ascontiguousarray(image), overlay_lines(fps, ms, dropped))
        self.previous = frame
        return self.sink.write(image)


def run_demo(
    runner: Runner,
    source: Source,
    sink: Sink,
    settings: DemoSettings | None = None,
    progress: ProgressCallback | None = None,
) -> DemoSummary:
    """Run ``runner`` on every frame of ``source`` into ``sink`` through the threaded pipeline and summarize.

    A window sink plays a file source at its rate (:class:`~pocketgan.runtime.demo.sources.Paced`); a video
    file sink takes every frame as fast as the slowest stage allows. The sink's file is kept only when at
    least one frame was written and nothing failed.
    """
    settings = settings or DemoSettings()
    if isinstance(sink, WindowSink) and not source.live:
        source = Paced(source, settings.fps)
    try:
        steps, frame_size = _prepare(runner, source, settings)
        sink.open(frame_size, settings.fps or source.fps)
        run = _run(steps, source, sink, settings, progress)
    except BaseException:
        sink.close(keep=False)
        raise
    finally:
        source.close()
    written = sink.close(keep=True)
    return _summarize(runner, steps, source, settings, run, frame_size, written)


def _prepare(runner: Runner, source: Source, settings: DemoSettings) -> tuple[ModelSteps, tuple[int, int]]:
    """The model's steps and the size of the frames they make, found by untimed warm-up runs."""
    if runner.io.is_latent != (not source.images):
        raise PocketganError(
            f"{runner.name} takes a latent: use --latent-walk" if runner.io.is_latent
            else f"{runner.name} translates images; a latent walk needs a latent-input artifact"
        )  # fmt: skip
    size = model_size(runner, settings.size, source.frame_size())
    steps = model_steps(runner, size, settings.side_by_side, settings.seed, settings.scale)
    for _ in range(WARMUP_RUNS):
        made = steps.process(steps.dummy_frame())
    return steps, (int(made.shape[0]), int(made.shape[1]))


def _run(steps: ModelSteps, source: Source, sink: Sink, settings: DemoSettings,
         progress: ProgressCallback | None) -> PipelineRun:  # fmt: skip
    """The pipeline over ``source`` with the encoder as its last stage, reporting each frame to ``progress``."""
    count = source.frame_count()
    total = min(count, settings.max_frames or count) if count is not None else settings.max_frames
    encoder = Encoder(sink, settings.overlay)
    pipeline = Pipeline(source, steps.stages(), ("encode", encoder), settings.queue_bound)
    encoder.run = pipeline.result

    def report(run: PipelineRun) -> None:
        task.update(completed=len(run.indices), status=f"{encoder.fps:.1f} FPS, dropped {run.dropped}")

    with ProgressTask(progress, "demo", total) as task:
        run = pipeline.run(settings.max_frames, on_frame=report)
    if not run.indices:
        raise PocketganError(f"{source.describe().get('path', source.kind)}: no frame could be read")
    return run


def _summarize(runner: Runner, steps: ModelSteps, source: Source, settings: DemoSettings, run: PipelineRun,
               frame_size: tuple[int, int], written: Path | None) -> DemoSummary:  # fmt: skip
    samples = stage_samples(run)
    fps_p50, fps_mean = frame_rates(run.finished)
    warnings = list(runner.info.warnings)
    placement = None
    if settings.placement and steps.last_feed is not None:
        try:
            placement = runner.placement(steps.last_feed)
        except PocketganError as exc:
            warnings.append(f"placement not recorded: {exc}")
    size = getattr(steps, "size", None)
    return DemoSummary(
        artifact=runner.name, backend=runner.backend, providers=runner.providers, threads=runner.info.threads,
        source=source.describe(), model_size=list(size) if size else None, frame_size=list(frame_size),
        frames=len(run.indices), dropped=run.dropped, read=run.read, elapsed_s=run.elapsed_s,
        fps_p50=fps_p50, fps_mean=fps_mean,
        stages={name: LatencyStats.from_samples(values) for name, values in samples.items()},
        samples_ms=samples, queue_bound=run.queue_bound, queue_high_water=run.high_water,
        out=str(written) if written else None, stopped=run.stopped, placement=placement,
        host=host_info(), versions=dict(runner.info.versions), warnings=warnings,
    )  # fmt: skip
