"""Power and energy during a benchmark's timed loop, torch-free: Jetson ``tegrastats`` rails, Linux RAPL.

:func:`open_meter` picks the source this host has: ``tegrastats`` on a Jetson, else RAPL package
energy (``/sys/class/powercap``), else none, with the reason. A meter is started right before the
timed loop and stopped right after it (:func:`measuring`); :func:`~pocketgan.runtime.power.energy.power_records`
turns the reading into each artifact's ``power`` record (energy per frame in mJ, average power per
domain). :func:`device_state` is the Jetson record of the host (power mode, clocks, temperatures).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.power.energy import EnergyReading, no_power, power_records
from pocketgan.runtime.power.jetson import TegrastatsMeter, is_jetson, jetson_state, locked_clocks
from pocketgan.runtime.power import rapl
from pocketgan.runtime.power.rapl import RaplUnavailable, rapl_meter

__all__ = ["EnergyReading", "Measurement", "PowerMeter", "device_state", "locked_clocks", "measuring",
           "no_power", "open_meter", "power_records"]  # fmt: skip

#: tegrastats' sampling interval during the timed loop.
TEGRASTATS_INTERVAL_MS = 100


class PowerMeter(Protocol):
    """Measures one window: :meth:`start` before the timed loop, :meth:`stop` after it."""

    source: str

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...


@dataclass
class Measurement:
    """What :func:`measuring` yields: after the block, the ``reading`` or the ``reason`` there is none."""

    reading: EnergyReading | None = None
    reason: str | None = None

    def records(self, frames: list[int], busy_ms: list[float]) -> list[dict[str, Any]]:
        """One ``power`` record per interleaved artifact (see :func:`power_records`)."""
        if self.reading is None:
            return [no_power(self.reason or "not measured") for _ in frames]
        return power_records(self.reading, frames, busy_ms)


def open_meter(powercap: Path | None = None, tegrastats: str = "tegrastats") -> PowerMeter | str:
    """This host's power meter, or the reason there is none (a string for the JSON); ``powercap``
    defaults to :data:`pocketgan.runtime.power.rapl.POWERCAP`."""
    if shutil.which(tegrastats):
        return TegrastatsMeter(TEGRASTATS_INTERVAL_MS, tegrastats)
    try:
        return rapl_meter(powercap if powercap is not None else rapl.POWERCAP)
    except RaplUnavailable as exc:
        return f"no tegrastats on PATH (not a Jetson) and {exc}"


@contextmanager
def measuring(meter: PowerMeter | str | None) -> Iterator[Measurement]:
    """Measure the block with ``meter`` (a reason string or ``None``: nothing measured, and why).

    A meter that fails is not an error of the benchmark: the timing stands and the reason is recorded.
    """
    if meter is None or isinstance(meter, str):
        yield Measurement(reason=meter or "power not measured (--no-power)")
        return
    measurement = Measurement()
    try:
        meter.start()
    except (PocketganError, OSError) as exc:
        measurement.reason = f"{meter.source} failed to start: {exc}"
        yield measurement
        return
    try:
        yield measurement
    finally:
        try:
            measurement.reading = meter.stop()
        except (PocketganError, OSError, ValueError) as exc:
            measurement.reason = f"{meter.source}: {exc}"


def device_state() -> dict[str, Any]:
    """``{"jetson": {...}}`` on a Jetson (power mode, clocks, temperatures now), else ``{}``."""
    return {"jetson": jetson_state()} if is_jetson() else {}
