"""`pocketgan demo`: the threaded pipeline on real exported models, real videos and real image files.

Frames are checked against ``runner.translate`` / ``runner.generate`` (the runtime's own reference path):
exactly through lossless FFV1 (``.mkv``) and ``--no-overlay``, within mp4v's error otherwise.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import pocketgan.runtime as runtime
from pocketgan.core.errors import PocketganError
from pocketgan.imaging import resize
from pocketgan.runtime import demo
from pocketgan.runtime.demo.frames import FrameQueue
from pocketgan.runtime.demo.latent_walk import slerp
from pocketgan.runtime.demo.sample_video import main as sample_video_main
from pocketgan.runtime.demo.sample_video import sample_frames, write_sample_video
from pocketgan.runtime.runner import Runner

from conftest import SIZE
from test_latent_io import SIZE as LATENT_SIZE
from test_latent_io import seeded_latent
from test_runtime import _forbidden, _run_without_torch

FRAMES, VIDEO_SIZE, VIDEO_FPS = 24, 64, 24.0
STAGE_NAMES = ["decode", "preprocess", "inference", "postprocess", "encode", "end to end"]


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video as RGB, and its frame rate (OpenCV, the demo's own decoder)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def mp4v_round_trip(frames: list[np.ndarray], fps: float, path: Path) -> list[np.ndarray]:
    """``frames`` through OpenCV's mp4v encoder and back: what the codec makes of exactly these images."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return read_video(path)[0]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_sample_video(tmp_path_factory.mktemp("video") / "in.mp4", frames=FRAMES,
                              size=(VIDEO_SIZE, VIDEO_SIZE), fps=VIDEO_FPS)  # fmt: skip


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """Five PNGs of different sizes (and one JPEG) in a folder, with the RGB arrays written."""
    folder = tmp_path_factory.mktemp("images")
    shapes = [(64, 64), (48, 80), (32, 32), (72, 40), (64, 96)]
    written = []
    for index, (height, width) in enumerate(shapes):
        image = next(sample_frames(1, (height, width), seed=index))
        suffix = ".jpg" if index == 3 else ".png"
        cv2.imwrite(str(folder / f"{index:02d}{suffix}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written.append(cv2.cvtColor(cv2.imread(str(folder / f"{index:02d}{suffix}")), cv2.COLOR_BGR2RGB))
    return folder, written


@pytest.fixture(scope="module")
def latent_onnx(tmp_path_factory) -> Path:
    """The tiny latent generator of test_latent_io (16×16 images from a 16-d z), exported to ONNX."""
    from pocketgan.export import export_model
    from pocketgan.models import as_loaded

    out = tmp_path_factory.mktemp("latent-demo")
    export_model(as_loaded(seeded_latent(), "test"), "onnx", out)
    return out / "model.onnx"


def summary_of(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------- the video verb


def test_a_video_becomes_the_models_output_frame_for_frame(cli, artifacts, video, tmp_path):
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    res = cli("demo", artifacts.dynamic, "--video", video, "-o", out, "--no-overlay", "--threads", "1",
              "--json", summary)  # fmt: skip
    assert res.code == 0, res.err
    inputs, _ = read_video(video)
    frames, fps = read_video(out)
    assert len(inputs) == FRAMES and len(frames) == FRAMES and fps == VIDEO_FPS
    assert frames[0].shape == (VIDEO_SIZE, VIDEO_SIZE, 3)
    runner = runtime.load(artifacts.dynamic, threads=1)
    expected = [runner.translate(image) for image in inputs]
    # mp4v is lossy (an untrained model's noise-like output decodes about 19 dB from the original), and
    # deterministic: the demo's video decodes to exactly what the codec makes of translate()'s frames.
    reference = mp4v_round_trip(expected, VIDEO_FPS, tmp_path / "reference.mp4")
    assert all(np.array_equal(frame, truth) for frame, truth in zip(frames, reference, strict=True))
    assert psnr(frames[0], expected[0]) < 40 and not np.array_equal(reference[0], reference[-1])
    record = summary_of(summary)
    assert (record["frames"], record["read"], record["dropped"]) == (FRAMES, FRAMES, 0)
    assert list(record["latency_ms"]) == STAGE_NAMES
    assert all(stats["count"] == FRAMES for stats in record["latency_ms"].values())
    assert all(len(record["samples_ms"][name]) == FRAMES for name in STAGE_NAMES)
    assert record["backend"] == "ort" and record["providers"] == ["CPUExecutionProvider"]
    assert record["placement"]["by_provider"] == {"CPUExecutionProvider": record["placement"]["nodes"]}
    assert record["source"] == {"kind": "video", "fps": VIDEO_FPS, "live": False, "frames": FRAMES, "path": str(video)}
    assert record["model_size"] == [VIDEO_SIZE, VIDEO_SIZE] and record["frame_size"] == [VIDEO_SIZE, VIDEO_SIZE]
    assert record["fps"]["p50"] > 0 and record["out"] == str(out) and record["host"]["cores"]
    assert "pocketgan demo" in res.out and "FPS p50" in res.out and "dropped 0" in res.out and "inference" in res.out


def test_side_by_side_doubles_the_width_and_lossless_frames_are_exact(cli, artifacts, video, tmp_path):
    out = tmp_path / "pair.mkv"
    res = cli("demo", artifacts.static, "--video", video, "-o", out, "--side-by-side", "--no-overlay",
              "--max-frames", "6", "--no-placement", "--threads", "1")  # fmt: skip
    assert res.code == 0, res.err
    frames, _ = read_video(out)
    inputs, _ = read_video(video)
    assert len(frames) == 6 and frames[0].shape == (SIZE, 2 * SIZE, 3)  # the static artifact runs at 32
    runner = runtime.load(artifacts.static, threads=1)
    for frame, image in zip(frames, inputs):
        shown = resize(image, SIZE, SIZE, runner.io.interpolation)
        assert np.array_equal(frame[:, :SIZE], shown)
        assert np.array_equal(frame[:, SIZE:], runner.translate(shown))


def test_the_overlay_draws_on_the_top_band_only(cli, artifacts, video, tmp_path):
    plain, marked = tmp_path / "plain.mkv", tmp_path / "marked.mkv"
    common = ("--video", video, "--max-frames", "4", "--no-placement", "--threads", "1")
    assert cli("demo", artifacts.dynamic, *common, "-o", plain, "--no-overlay").code == 0
    assert cli("demo", artifacts.dynamic, *common, "-o", marked).code == 0
    for a, b in zip(read_video(plain)[0], read_video(marked)[0], strict=True):
        rows = np.flatnonzero(np.any(a != b, axis=(1, 2)))
        assert rows.size > 0 and rows.max() < VIDEO_SIZE // 2


def test_a_folder_of_images_one_frame_each_at_the_models_size(cli, artifacts, images, tmp_path):
    folder, written = images
    out, summary = tmp_path / "images.mkv", tmp_path / "images.json"
    res = cli("demo", artifacts.static, "--images", folder, "-o", out, "--no-overlay", "--json", summary,
              "--threads", "1")  # fmt: skip
    assert res.code == 0, res.err
    frames, fps = read_video(out)
    assert len(frames) == len(written) and fps == 2.0  # a slideshow: half a second per image
    runner = runtime.load(artifacts.static, threads=1)
    for frame, image in zip(frames, written):
        assert np.array_equal(frame, runner.translate(resize(image, SIZE, SIZE, runner.io.interpolation)))
    assert summary_of(summary)["source"]["kind"] == "images"


def test_a_dynamic_artifact_runs_at_size_and_frames_show_at_scale(cli, artifacts, images, tmp_path):
    out, summary = tmp_path / "sized.mp4", tmp_path / "sized.json"
    res = cli("demo", artifacts.dynamic, "--images", images[0], "-o", out, "--size", "32x48", "--no-placement",
              "--scale", "2", "--json", summary)  # fmt: skip
    assert res.code == 0, res.err
    frames, _ = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    record = summary_of(summary)
    assert record["model_size"] == [32, 48] and record["frame_size"] == [64, 96]


# --------------------------------------------------------------------------------------- latent walk


def test_slerp_follows_the_great_circle():
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 2.0], np.float32)
    assert np.array_equal(slerp(a, b, 0.0), a)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 0.5), [np.sqrt(0.5), 2 * np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(slerp(a, a * 3, 0.5), a * 2, atol=1e-6)  # parallel: linear


def test_latent_walk_passes_through_the_seeds_smoothly(cli, latent_onnx, tmp_path):
    out, summary = tmp_path / "walk.mkv", tmp_path / "walk.json"
    res = cli("demo", latent_onnx, "--latent-walk", "--seconds", "2", "--fps", "8", "-o", out, "--no-overlay",
              "--seed", "3", "--json", summary)  # fmt: skip
    assert res.code == 0, res.err
    frames, fps = read_video(out)
    assert len(frames) == 16 and fps == 8.0 and frames[0].shape == (LATENT_SIZE, LATENT_SIZE, 3)
    runner = runtime.load(latent_onnx)
    keys = runner.generate(seed=[3, 4])  # two keyframes (one per 2 s, at least two), 8 frames apart
    assert np.array_equal(frames[0], keys[0]) and np.array_equal(frames[8], keys[1])
    steps = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:] + frames[:1])]
    jump = np.abs(keys[0].astype(int) - keys[1]).mean()
    assert max(steps) < jump / 2  # each step a small part of the way between keyframes; it loops back
    record = summary_of(summary)
    assert record["source"]["kind"] == "latent-walk" and record["model_size"] is None and record["frames"] == 16


def test_latent_walk_needs_a_latent_artifact_and_no_side_by_side(cli, artifacts, latent_onnx, tmp_path):
    res = cli("demo", artifacts.static, "--latent-walk", "-o", tmp_path / "w.mp4")
    assert res.code == 2 and "--latent-walk needs a latent-input artifact" in res.err
    res = cli("demo", latent_onnx, "--latent-walk", "--side-by-side", "-o", tmp_path / "w.mp4")
    assert res.code == 2 and "a latent walk has no input image" in res.err
    res = cli("demo", latent_onnx, "--images", tmp_path, "-o", tmp_path / "w.mp4")
    assert res.code == 2


# --------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, message",
    [
        (["--video", "missing.mp4"], "missing.mp4: no such video file"),
        (["--video", "{artifact}"], "OpenCV cannot open it as a video"),
        (["--images", "{empty}"], "no images in it"),
        ([], "give one source: --video IN, --camera N, --images DIR or --latent-walk (got none)"),
        (["--video", "{video}", "--images", "{empty}"], "give one source"),
        (["--video", "{video}", "--size", "48"], "takes a fixed 32x32 input; --size 48x48 does not fit"),
        (["--video", "{video}", "--seconds", "3"], "--seconds is the length of a --latent-walk"),
        (["--camera", "57"], "camera 57: cannot be opened"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, artifacts, video, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out" / "demo.mp4"
    fill = {"artifact": str(artifacts.static), "empty": str(tmp_path / "empty"), "video": str(video)}
    res = cli("demo", artifacts.static, *[a.format(**fill) for a in args], "-o", out)
    assert res.code == 2 and message in res.err, res.err
    assert res.err.count("\n") == 1 and "Traceback" not in res.err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_an_unwritable_video_is_one_line(cli, artifacts, video, tmp_path):
    res = cli("demo", artifacts.static, "--video", video, "-o", tmp_path / "out.xyz")
    assert res.code == 2 and "OpenCV cannot write a .xyz video with the mp4v codec" in res.err
    assert list(tmp_path.iterdir()) == []  # not even the temporary file
    res = cli("demo", artifacts.static, "--video", video, "-o", tmp_path)
    assert res.code == 2 and "is a directory" in res.err


class _Failing(Runner):
    """A real runner that fails on its fifth call (two warm-up runs, then the third frame)."""

    def __init__(self, inner: Runner) -> None:
        super().__init__(inner.info)
        self.inner, self.calls = inner, 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 5:
            raise PocketganError("the accelerator fell off the bus")
        return self.inner.run(batch)


def test_a_failing_stage_stops_the_pipeline_and_leaves_no_video(artifacts, video, tmp_path):
    runner = _Failing(runtime.load(artifacts.static, threads=1))
    with pytest.raises(PocketganError, match="fell off the bus"):
        demo.run_demo(runner, demo.VideoSource(video), demo.VideoFileSink(tmp_path / "out.mp4"))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------- the pipeline


class _Slow(Runner):
    """A real runner made slow on purpose; records when each call ran."""

    def __init__(self, inner: Runner, seconds: float) -> None:
        super().__init__(inner.info)
        self.inner, self.seconds, self.spans = inner, seconds, []

    def run(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        time.sleep(self.seconds)
        out = self.inner.run(batch)
        self.spans.append((start, time.perf_counter()))
        return out


class _SlowSink(demo.CollectSink):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.spans = seconds, []

    def write(self, image: np.ndarray) -> bool:
        start = time.perf_counter()
        time.sleep(self.seconds)
        self.spans.append((start, time.perf_counter()))
        return super().write(image)


def _frames(count: int) -> list[np.ndarray]:
    return list(sample_frames(count, (SIZE, SIZE)))


def test_a_live_source_drops_what_inference_cannot_keep_up_with(artifacts):
    inner = runtime.load(artifacts.static, threads=1)
    frames = _frames(40)
    source = demo.Paced(demo.FrameListSource(frames), fps=200)  # a camera at 200 FPS; inference ~30 FPS
    sink = demo.CollectSink()
    settings = demo.DemoSettings(overlay=False, placement=False)
    summary = demo.run_demo(_Slow(inner, 0.03), source, sink, settings)
    assert summary.read == 40 and summary.dropped > 0 and summary.frames == len(sink.frames) < 40
    assert summary.frames + summary.dropped == summary.read
    assert summary.queue_bound == 1 and max(summary.queue_high_water) == 1 and summary.source["live"]
    assert summary.stages["end to end"].p50_ms < 2.5 * summary.stages["inference"].p50_ms  # no backlog builds up
    shown = [int(np.flatnonzero([np.array_equal(inner.translate(f), out) for f in frames])[0]) for out in sink.frames]
    assert shown == sorted(shown) and len(set(shown)) == len(shown)  # in order, each once, the freshest kept


def test_a_file_source_back_pressures_and_stages_overlap(artifacts):
    runner = _Slow(runtime.load(artifacts.static, threads=1), 0.03)
    sink = _SlowSink(0.03)
    summary = demo.run_demo(runner, demo.FrameListSource(_frames(10)), sink,
                            demo.DemoSettings(overlay=False, placement=False))  # fmt: skip
    assert (summary.frames, summary.dropped) == (10, 0) and max(summary.queue_high_water) <= 2
    timed = runner.spans[-10:]  # after the two warm-up runs
    overlaps = sum(a < d and c < b for a, b in timed for c, d in sink.spans)
    assert overlaps >= 5  # inference of a frame runs while the previous one is encoded


def test_frame_queue_bounds_blocks_and_evicts():
    queue = FrameQueue(2)
    queue.put(1)
    queue.put(2)
    assert queue.put_latest(3) == 1 and len(queue) == 2 and queue.high_water == 2 and queue.evicted == 1
    blocked = threading.Thread(target=queue.put, args=(4,))
    blocked.start()
    time.sleep(0.05)
    assert blocked.is_alive() and len(queue) == 2  # full: put waits
    assert queue.get() == 2
    blocked.join(1)
    assert not blocked.is_alive() and [queue.get(), queue.get()] == [3, 4]
    queue.close()
    assert queue.get() is None


# --------------------------------------------------------------------------------------- the test video


def test_the_sample_video_pans_slowly(tmp_path, images):
    out = tmp_path / "sample.mp4"
    assert sample_video_main([str(out), "--seconds", "3", "--fps", "20", "--size", "48x64"]) == 0
    frames, fps = read_video(out)
    assert len(frames) == 60 and fps == 20.0 and frames[0].shape == (48, 64, 3)
    change = lambda a, b: np.abs(a.astype(int) - b).mean()  # noqa: E731
    steps = [change(a, b) for a, b in zip(frames[:19], frames[1:20])]  # within the first of three scenes
    assert all(0 < step < change(frames[0], frames[20]) / 2 for step in steps), steps
    from_images = tmp_path / "photos.mp4"
    assert sample_video_main([str(from_images), "--seconds", "0.5", "--images", str(images[0])]) == 0
    assert len(read_video(from_images)[0]) == 15


def test_the_demo_runs_with_torch_unimportable(artifacts, video, tmp_path):
    """``python -m pocketgan.runtime.demo``: the demo where only pocketgan[runtime] is installed."""
    out = tmp_path / "demo.mp4"
    command = [sys.executable, "-m", "pocketgan.runtime.demo", str(artifacts.static), "--video", str(video),
               "-o", str(out), "--threads", "1"]  # fmt: skip
    proc, modules = _run_without_torch(tmp_path, command)
    assert proc.returncode == 0, proc.stderr
    assert len(read_video(out)[0]) == FRAMES and "FPS p50" in proc.stdout
    assert "pocketgan.runtime.demo.pipeline" in modules and _forbidden(modules) == []
