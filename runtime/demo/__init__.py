"""``pocketgan demo``: a generator live on a video, a camera, a folder of images, or a latent walk (torch-free).

Decoding, preprocessing, inference, postprocessing and encoding run as a pipeline of threads joined by
bounded queues (:mod:`~pocketgan.runtime.demo.pipeline`), so the throughput is the slowest stage's; a live
camera drops (and counts) the frames inference cannot keep up with. Every frame carries an overlay of the
FPS and per-stage milliseconds; the run ends with a summary (:class:`DemoSummary`)::

    from pocketgan import runtime
    from pocketgan.runtime import demo

    runner = runtime.load("student.onnx", threads=2)
    summary = demo.run_demo(runner, demo.VideoSource("in.mp4"), demo.VideoFileSink("out.mp4"),
                            demo.DemoSettings(side_by_side=True))
    print(summary.fps_p50, summary.stages["inference"].p50_ms)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    **dict.fromkeys(("DemoSettings", "default_sink", "open_source", "run_demo"), "pocketgan.runtime.demo.api"),
    **dict.fromkeys(("LatentWalkSource", "slerp"), "pocketgan.runtime.demo.latent_walk"),
    **dict.fromkeys(("CollectSink", "Sink", "VideoFileSink", "WindowSink", "has_display"),
                    "pocketgan.runtime.demo.sinks"),
    **dict.fromkeys(("CameraSource", "FrameListSource", "ImageFolderSource", "Paced", "Source", "VideoSource"),
                    "pocketgan.runtime.demo.sources"),
    **dict.fromkeys(("DemoSummary", "print_summary", "write_summary_json"), "pocketgan.runtime.demo.summary"),
}  # fmt: skip

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # imported on first use, so the CLI's --help does not load numpy and OpenCV
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
