"""Latency statistics over timed samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError

#: Coefficient of variation above which a result is flagged as noisy.
HIGH_CV = 0.10
PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration latencies in milliseconds; ``cv`` = std / mean."""

    count: int
    min_ms: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    cv: float

    @classmethod
    def from_samples(cls, samples_ms: list[float] | np.ndarray) -> LatencyStats:
        """Summarize ``samples_ms`` (at least one sample)."""
        values = np.asarray(samples_ms, dtype=np.float64)
        if values.size == 0:
            raise PocketganError("no timed samples to summarize")
        p50, p90, p95, p99 = np.percentile(values, PERCENTILES)
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return cls(
            count=int(values.size),
            min_ms=float(values.min()),
            mean_ms=mean,
            p50_ms=float(p50),
            p90_ms=float(p90),
            p95_ms=float(p95),
            p99_ms=float(p99),
            max_ms=float(values.max()),
            std_ms=std,
            cv=std / mean if mean > 0 else 0.0,
        )

    @property
    def noisy(self) -> bool:
        """True when the coefficient of variation exceeds :data:`HIGH_CV`."""
        return self.cv > HIGH_CV

    def throughput(self, batch: int) -> float:
        """Images per second: ``batch / mean``."""
        return batch * 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
