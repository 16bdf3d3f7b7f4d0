"""The torch-free runtime: load exported generators, run them, translate images or generate them, benchmark them.

It depends on numpy, onnxruntime, OpenCV and rich/typer only (``pip install 'pocketgan[runtime]'``),
never on torch or the training stages, so it runs on a Jetson or a bench host as is::

    from pocketgan import runtime

    runner = runtime.load("out/model.onnx", threads=4)   # ONNX Runtime, best provider available
    fake = runner.translate(photo_uint8_hwc_rgb)
    faces = runtime.load("sg2/model.onnx").generate(seed=[0, 1])   # a latent-input artifact (StyleGAN2)
    results = runtime.benchmark([runner], runtime.BenchSettings(iterations=100))

Heavy submodules are imported on first attribute access, so ``import pocketgan.runtime`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from pocketgan.runtime.registry import list_backends, load, register_backend, register_backend_module

_LAZY = {
    "Runner": "pocketgan.runtime.runner",
    "RunnerInfo": "pocketgan.runtime.runner",
    "BenchSettings": "pocketgan.runtime.bench",
    "BenchResult": "pocketgan.runtime.bench",
    "benchmark": "pocketgan.runtime.bench",
    "LatencyStats": "pocketgan.runtime.stats",
    "Placement": "pocketgan.runtime.placement",
    "host_info": "pocketgan.runtime.host",
}

__all__ = ["list_backends", "load", "register_backend", "register_backend_module", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
