"""What a training run reports while it runs: smoothed losses, images/second, TensorBoard, progress events.

Rank 0 only. The progress bar itself is drawn by whoever passed the callback (the CLI passes
``pocketgan.console.RichProgress``); this module only reports: one task per run whose status is
``"7.9 img/s · G_gan 0.965 G_L1 0.4 ..."``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback, ProgressTask

LOSS_SMOOTHING = 0.9  # exponential moving average of the losses shown and recorded


def smooth(previous: dict[str, float], losses: dict[str, float]) -> dict[str, float]:
    """The exponential moving average of each loss (a new loss starts at its first value)."""
    smoothed = dict(previous)
    for key, value in losses.items():
        smoothed[key] = LOSS_SMOOTHING * previous.get(key, value) + (1 - LOSS_SMOOTHING) * value
    return smoothed


def status_line(images_per_second: float, losses: dict[str, float]) -> str:
    """``"7.9 img/s · G_gan 0.965 G_L1 0.4"``: the progress status of a training run."""
    return f"{images_per_second:.1f} img/s · " + " ".join(f"{k} {v:.3g}" for k, v in losses.items())


class TrainingMonitor:
    """Smoothed losses, images/second, TensorBoard scalars and image grids, and progress events.

    ``enabled`` is false on ranks other than 0: the monitor then only keeps the smoothed losses.
    ``progress`` receives one task titled ``title`` from ``start`` to ``total`` steps.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        total: int,
        start: int,
        enabled: bool,
        progress: ProgressCallback | None,
        title: str,
        losses: dict[str, float] | None = None,
    ) -> None:
        self.losses: dict[str, float] = dict(losses or {})
        self.images_per_second = 0.0
        self._window_images, self._window_start = 0, time.perf_counter()
        self.writer = None
        if enabled:
            tensorboard = require("torch.utils.tensorboard", "train", "TensorBoard logs")
            self.writer = tensorboard.SummaryWriter(str(log_dir), purge_step=start + 1 if start else None)
        self.task = ProgressTask(progress if enabled else None, title, total=total)
        if start:
            self.task.update(completed=start)

    def step(self, done: int, losses: dict[str, float], images: int, lrs: dict[str, float], log_every: int) -> None:
        """Record one finished step; every ``log_every`` steps write scalars (and restart the speed window)."""
        self.losses = smooth(self.losses, losses)
        self._window_images += images
        now = time.perf_counter()
        self.images_per_second = self._window_images / max(now - self._window_start, 1e-9)
        if log_every > 0 and done % log_every == 0:
            self._window_images, self._window_start = 0, now
            self._scalars(done, losses, lrs)
        self.task.update(completed=done, status=status_line(self.images_per_second, self.losses))

    def _scalars(self, done: int, losses: dict[str, float], lrs: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in losses.items():
            self.writer.add_scalar(f"loss/{key}", value, done)
        for key, value in lrs.items():
            self.writer.add_scalar(f"lr/{key}", value, done)
        self.writer.add_scalar("speed/images_per_second", self.images_per_second, done)

    def metrics(self, done: int, values: dict[str, float]) -> None:
        """TensorBoard scalars ``metrics/<key>`` (a StyleGAN2 run's discriminator logits on real and fake)."""
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"metrics/{key}", value, done)

    def images(self, done: int, distiller: Any, samples: dict[str, Any], device: torch.device) -> None:
        """Log a grid with one row per sample, its columns the distiller's :meth:`~Distiller.preview`
        (input | target | student output for translation)."""
        if self.writer is None:
            return
        student = distiller.student
        was_training = student.training
        student.eval()
        with torch.no_grad():
            columns = [c.cpu() for c in distiller.preview({k: v.to(device) for k, v in samples.items()})]
        student.train(was_training)
        grid = torch.cat([torch.cat(list(column), dim=1) for column in columns], dim=2)  # rows of samples
        self.writer.add_image("samples/input|target|output", ((grid + 1) / 2).clamp(0, 1), done)

    def note(self, status: str) -> None:
        """Replace the progress status with ``status`` (a stop request, the reason a run ended)."""
        self.task.update(status=status)

    def close(self) -> None:
        """Finish the progress task and flush TensorBoard."""
        self.task.close()
        if self.writer is not None:
            self.writer.close()
