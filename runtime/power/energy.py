"""Energy over a timed loop, and each benchmarked artifact's share of it: the ``power`` record.

A power source measures one window, the timed loop, as an :class:`EnergyReading`: energy (mJ) and
average power (mW) per domain (a Jetson rail, a RAPL zone) and which domain is the total. Energy per
frame is that total energy ÷ frames. When several artifacts run interleaved in one loop, they share its
energy in proportion to the time each spent in its calls, the untimed lead-in call of each turn included
(their average power is taken as alike, which the interleaving makes as fair as it can be); ``share`` in
the record says how much was theirs. The idle settle pauses between turns are inside the window too, so
with several artifacts energy per frame is an upper bound; a single artifact runs without pauses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnergyReading:
    """Energy per domain over ``elapsed_s`` seconds; ``total`` names the domains whose sum is the whole
    (a module's input rail alone, or every rail; every CPU package)."""

    source: str
    elapsed_s: float
    energy_mj: dict[str, float]
    total: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)  # e.g. samples, interval, GPU frequency

    @property
    def total_mj(self) -> float:
        """The energy of the whole: the sum of the :attr:`total` domains."""
        return sum(self.energy_mj[name] for name in self.total)

    def avg_power_mw(self, domain: str | None = None) -> float:
        """Average power over the window, of one domain or of the total (mJ / s = mW)."""
        energy = self.total_mj if domain is None else self.energy_mj[domain]
        return energy / self.elapsed_s if self.elapsed_s > 0 else 0.0


def from_average_power(source: str, avg_mw: Mapping[str, float], elapsed_s: float, total: Sequence[str], **details: Any
                       ) -> EnergyReading:  # fmt: skip
    """A reading from average power per domain (mW) held for ``elapsed_s`` seconds: energy = P × t."""
    return EnergyReading(source, elapsed_s, {k: p * elapsed_s for k, p in avg_mw.items()}, tuple(total), details)


def no_power(reason: str) -> dict[str, Any]:
    """The ``power`` record when nothing was measured, and why."""
    return {"source": None, "reason": reason}


def power_records(reading: EnergyReading, frames: Sequence[int], busy_ms: Sequence[float]) -> list[dict[str, Any]]:
    """One ``power`` record per interleaved artifact: its time share of the loop's energy ÷ its frames.

    ``frames[i]`` is how many images artifact ``i`` made in the loop (its calls × batch, lead-ins included)
    and ``busy_ms[i]`` the time inside those calls.
    """
    busy_total = sum(busy_ms)
    records = []
    for count, busy in zip(frames, busy_ms, strict=True):
        share = busy / busy_total if busy_total > 0 else 1.0 / len(frames)
        energy = reading.total_mj * share
        records.append({
            "source": reading.source,
            "energy_per_frame_mj": energy / count if count else None,
            "energy_mj": energy,
            "share": share,
            "frames": count,
            "avg_power_mw": reading.avg_power_mw(),
            "elapsed_s": reading.elapsed_s,
            "total": list(reading.total),
            "domains": {k: {"energy_mj": e, "avg_power_mw": reading.avg_power_mw(k)}
                        for k, e in reading.energy_mj.items()},
            **reading.details,
        })  # fmt: skip
    return records
