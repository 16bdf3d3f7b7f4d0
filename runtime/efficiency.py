"""How close a benchmarked generator gets to the host's compute limit, and what its MAC cut really bought.

Two figures per benchmark result, both from the MACs the artifact carries (embedded ``pocketgan.profile``,
else its sidecar's model profile) and its p50 latency:

- **% of compute limit** = MACs ÷ (p50 × limit): 100 % runs every multiply-add at the host's best GEMM
  rate (:mod:`pocketgan.runtime.compute_limit`); a small model far below it is held back by memory
  traffic, norms and per-layer overhead, not by arithmetic.
- **speedup ÷ MAC reduction** against a baseline artifact = (baseline p50 ÷ p50) ÷ (baseline MACs ÷ MACs):
  1.0 means the latency fell exactly as much as the MACs; 0.37 means a 49× MAC cut bought an 18× speedup.

MACs counted at another input shape than the benchmarked one are scaled by the ratio of batch × pixels
(exact for a fully convolutional generator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketgan.core.errors import PocketganError

if TYPE_CHECKING:
    from pocketgan.runtime.bench import BenchResult
    from pocketgan.runtime.compute_limit import ComputeLimit


@dataclass(frozen=True)
class Efficiency:
    """One result's figures against the compute limit and the baseline (``None``: not known)."""

    limit_gmacs: float | None = None
    percent_of_limit: float | None = None
    baseline: str | None = None
    speedup: float | None = None
    mac_reduction: float | None = None
    speedup_per_mac_reduction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percent_of_limit(macs: float, latency_ms: float, limit_gmacs: float) -> float:
    """``macs`` done in ``latency_ms`` as a percentage of ``limit_gmacs`` (GMAC/s)."""
    return 100.0 * macs / (latency_ms / 1e3 * limit_gmacs * 1e9)


def speedup_per_mac_reduction(baseline_ms: float, baseline_macs: float, latency_ms: float, macs: float) -> float:
    """(``baseline_ms`` ÷ ``latency_ms``) ÷ (``baseline_macs`` ÷ ``macs``): the share of the MAC cut that became
    speed."""
    return (baseline_ms / latency_ms) / (baseline_macs / macs)


def macs_at(profile: Mapping[str, Any], input_shape: Sequence[int]) -> int | None:
    """The MACs of ``profile`` (``{"macs", "input_shape"}``) at ``input_shape``: as counted when the shapes match,
    scaled by batch × pixels when only those differ, ``None`` when unknown or not comparable."""
    macs, counted, input_shape = profile.get("macs"), profile.get("input_shape"), list(input_shape)
    if not macs:
        return None
    if not counted or list(counted) == input_shape:
        return int(macs)
    if len(counted) != len(input_shape) or list(counted[1:2]) != input_shape[1:2]:
        return None  # another rank or channel count: not the same computation
    scale = math.prod(input_shape[:1] + list(input_shape[2:])) / math.prod(list(counted[:1]) + list(counted[2:]))
    return int(round(macs * scale))


def check_baseline(baseline: str | None, artifacts: Sequence[str]) -> str | None:
    """``baseline`` as spelled among ``artifacts`` (by name or resolved path), or the first artifact when there
    are several distinct ones and none is given; a baseline that is not benchmarked is one error line."""
    distinct = list(dict.fromkeys(artifacts))
    if baseline is None:
        return distinct[0] if len(distinct) > 1 else None
    for artifact in distinct:
        if artifact == baseline or _same_path(artifact, baseline):
            return artifact
    raise PocketganError(f"--baseline {baseline} is not one of the benchmarked artifacts ({', '.join(distinct)})")


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def annotate(results: Sequence[BenchResult], limit: ComputeLimit | None, baseline: str | None) -> None:
    """Set every result's :class:`Efficiency` and record ``limit`` in its host record (a copy)."""
    for result in results:
        ref = _baseline_result(results, baseline, result.backend)
        limit_gmacs = limit.gmacs_for(result.precision) if limit is not None else None
        percent = (percent_of_limit(result.macs, result.latency.p50_ms, limit_gmacs)
                   if result.macs and limit_gmacs else None)  # fmt: skip
        speedup = reduction = ratio = None
        if ref is not None:
            speedup = ref.latency.p50_ms / result.latency.p50_ms
            if ref.macs and result.macs:
                reduction = ref.macs / result.macs
                ratio = speedup_per_mac_reduction(ref.latency.p50_ms, ref.macs, result.latency.p50_ms, result.macs)
        result.efficiency = Efficiency(limit_gmacs, percent, baseline if ref is not None else None, speedup,
                                       reduction, ratio)  # fmt: skip
        if limit is not None:
            result.host = {**result.host, "compute_limit": limit.to_dict()}


def _baseline_result(results: Sequence[BenchResult], baseline: str | None, backend: str) -> BenchResult | None:
    """The baseline's result on ``backend``, else its fastest one (``--backend auto`` times it on several)."""
    mine = [r for r in results if r.artifact == baseline]
    same = [r for r in mine if r.backend == backend]
    return (same or sorted(mine, key=lambda r: r.latency.p50_ms) or [None])[0]
