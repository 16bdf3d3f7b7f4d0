"""The ``torch`` runtime backend: a model directory or architecture reference run eagerly, for comparison.

It lives at the glue level (it may import ``pocketgan.runtime`` and ``pocketgan.models``; the runtime
never imports it) and registers itself into the runtime's backend registry on import
(``pocketgan bench`` announces it with ``register_backend_module``). torch and the models are
imported only when a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.contract import TensorInfo
from pocketgan.runtime.registry import register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

DEVICES = ("cpu", "cuda")


class TorchRunner(Runner):
    """A pocketgan generator in eval mode, run under ``torch.inference_mode``."""

    def __init__(self, torch: Any, model: Any, device: str, info: RunnerInfo) -> None:
        super().__init__(info)
        self.torch = torch
        self.model = model
        self.device = device

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 batch (NCHW images, or latents ``z`` with the I/O spec's truncation) eagerly;
        copying the output to the host waits for the device."""
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            psi = self.info.io.truncation
            out = self.model(x, truncation=psi) if self.info.io.is_latent and psi != 1.0 else self.model(x)
            return out.float().cpu().numpy()


@register_backend("torch")
def load_torch(
    artifact: str | os.PathLike[str],
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> TorchRunner:
    """Load a model directory or an architecture reference (``mobile-resnet:ngf=16``) for eager runs.

    ``providers`` picks the device (``cpu`` or ``cuda``; default: CUDA when available).
    ``threads`` sets ``torch.set_num_threads`` for the whole process.
    """
    if Path(artifact).is_file():
        raise PocketganError(
            f"{artifact}: the torch backend takes a model directory or an architecture reference "
            "(ONNX files run with --backend ort)"
        )
    torch = require("torch", "train", "the torch backend")
    from pocketgan.models import load_model

    device = _choose_device(torch, providers)
    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(str(artifact))
    model = loaded.model.to(device).eval()
    io = loaded.manifest.io
    size: list[int | str] = list(io.fixed_size) if io.fixed_size else ["height", "width"]
    info = RunnerInfo(
        name=str(artifact),
        backend="torch",
        inputs=[TensorInfo("z", ["batch", int(io.z_dim or 0)]) if io.is_latent  # StyleGAN2: forward(z)
                else TensorInfo("input", ["batch", io.input_channels, *size])],
        outputs=[TensorInfo("output", ["batch", io.output_channels, *size])],
        providers=[f"torch-eager:{device}"],
        io=io,
        threads=threads or torch.get_num_threads(),
        versions={"torch": torch.__version__.split("+")[0], "numpy": np.__version__},
        profile=loaded.manifest.profile.to_dict() if loaded.manifest.profile else {},
        precision="fp32",
    )
    return TorchRunner(torch, model, device, info)


def _choose_device(torch: Any, providers: Sequence[str] | None) -> str:
    if not providers:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = providers[0].lower()
    if device not in DEVICES:
        raise PocketganError(f"the torch backend runs on {' or '.join(DEVICES)}, not {providers[0]!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PocketganError("the torch backend was asked for cuda, but this torch has no CUDA device")
    return device
