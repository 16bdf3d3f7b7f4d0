"""The demo's summary: frames, dropped, FPS, per-stage latency percentiles, and what ran it; a table and JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from pocketgan.core.fsio import write_json_atomic
from pocketgan.runtime.demo.frames import STAGES
from pocketgan.runtime.demo.pipeline import PipelineRun
from pocketgan.runtime.placement import Placement, short_provider
from pocketgan.runtime.stats import LatencyStats

END_TO_END = "end to end"


@dataclass
class DemoSummary:
    """One demo run. ``stages`` holds each stage's latency over the frames shown (and ``end to end``: decode
    began → frame written, queue waits included); ``fps_p50`` is the median of the frame rate between
    consecutive output frames, ``fps_mean`` frames over the time between the first and last of them."""

    artifact: str
    backend: str
    providers: list[str]
    threads: int | None
    source: dict[str, Any]
    model_size: list[int] | None
    frame_size: list[int]
    frames: int
    dropped: int
    read: int
    elapsed_s: float
    fps_p50: float
    fps_mean: float
    stages: dict[str, LatencyStats]
    samples_ms: dict[str, list[float]]
    queue_bound: int
    queue_high_water: list[int]
    out: str | None = None
    stopped: bool = False
    placement: Placement | None = None
    host: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (raw per-frame samples included)."""
        return {
            "artifact": self.artifact, "backend": self.backend, "providers": self.providers,
            "placement": self.placement.to_dict() if self.placement is not None else None,
            "threads": self.threads, "source": self.source, "model_size": self.model_size,
            "frame_size": self.frame_size, "frames": self.frames, "dropped": self.dropped, "read": self.read,
            "elapsed_s": self.elapsed_s, "fps": {"p50": self.fps_p50, "mean": self.fps_mean},
            "latency_ms": {name: stats.to_dict() for name, stats in self.stages.items()},
            "queues": {"bound": self.queue_bound, "high_water": self.queue_high_water},
            "out": self.out, "stopped": self.stopped, "versions": self.versions, "host": self.host,
            "warnings": self.warnings, "samples_ms": self.samples_ms,
        }  # fmt: skip


def frame_rates(finished: list[float]) -> tuple[float, float]:
    """``(p50, mean)`` frames per second from the times (seconds) frames left the pipeline; ``(0, 0)`` for
    fewer than two."""
    if len(finished) < 2:
        return 0.0, 0.0
    gaps = np.diff(np.asarray(finished, dtype=np.float64))
    span = finished[-1] - finished[0]
    rates = 1.0 / np.maximum(gaps, 1e-9)
    return float(np.median(rates)), (len(finished) - 1) / span if span > 0 else 0.0


def stage_samples(run: PipelineRun) -> dict[str, list[float]]:
    """Milliseconds per frame of every stage (in :data:`STAGES` order), then ``end to end``."""
    samples = {name: [ms[name] for ms in run.ms if name in ms] for name in STAGES}
    return {**{k: v for k, v in samples.items() if v}, END_TO_END: list(run.end_to_end_ms)}


def summary_table(summary: DemoSummary) -> Table:
    """One row per stage: p50 / p90 / p99 / mean milliseconds."""
    table = Table(title="pocketgan demo", title_justify="left")
    table.add_column("stage")
    for label in ("p50 ms", "p90 ms", "p99 ms", "mean ms"):
        table.add_column(label, justify="right")
    for name, stats in summary.stages.items():
        style = "bold" if name == "inference" else None
        table.add_row(name, *(f"{v:.2f}" for v in (stats.p50_ms, stats.p90_ms, stats.p99_ms, stats.mean_ms)),
                      style=style)  # fmt: skip
    return table


def summary_lines(summary: DemoSummary) -> list[str]:
    """The lines under the table: frames and FPS, what ran, sizes, the file written."""
    providers = ", ".join(short_provider(p) for p in summary.providers)
    placed = f", placement {summary.placement.summary()}" if summary.placement is not None else ""
    threads = summary.threads if summary.threads else "default"
    size = "x".join(map(str, summary.model_size)) if summary.model_size else "latent"
    lines = [
        f"frames {summary.frames} (read {summary.read}, dropped {summary.dropped}) in {summary.elapsed_s:.2f} s: "
        f"FPS p50 {summary.fps_p50:.1f}, mean {summary.fps_mean:.1f}",
        f"backend {summary.backend} ({providers}{placed}), threads {threads}",
        f"source {summary.source.get('kind')} {summary.source.get('path', '')}".rstrip()
        + f", model input {size}, frames out {summary.frame_size[1]}x{summary.frame_size[0]}",
    ]
    if summary.stopped:
        lines.append("stopped before the source ended")
    if summary.out:
        lines.append(f"wrote {summary.out}")
    return lines


def print_summary(summary: DemoSummary, console: Console, err_console: Console) -> None:
    """The table and its lines on ``console``, warnings on ``err_console``."""
    console.print(summary_table(summary))
    for line in summary_lines(summary):
        console.print(line, soft_wrap=True, markup=False)
    for warning in summary.warnings:
        err_console.print(f"warning: {warning}", soft_wrap=True, markup=False)


def write_summary_json(summary: DemoSummary, path: str | os.PathLike[str]) -> Path:
    """Write :meth:`DemoSummary.to_dict` atomically."""
    return write_json_atomic(path, summary.to_dict())
