"""CPU package energy from Linux RAPL (``/sys/class/powercap/intel-rapl:*``; AMD too on recent kernels).

Each zone has a cumulative ``energy_uj`` counter that wraps at ``max_energy_range_uj``. The meter reads
every zone when the timed loop starts, polls them from a background thread (once a second by default,
so a counter that wraps quickly is never missed twice) and reads them when it stops; a reading smaller
than the previous one has wrapped once. Package zones (``package-N``) are the total; their sub-zones
(``core``, ``uncore``, ``dram``) are recorded beside them. Since Linux 5.10 ``energy_uj`` is readable by
root only (CVE-2020-8694): :func:`find_zones` then says so and the bench JSON carries the reason.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pocketgan.runtime.power.energy import EnergyReading

POWERCAP = Path("/sys/class/powercap")
#: Seconds between background reads of the counters.
POLL_S = 1.0


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone: its directory, name (``package-0``, ``core``, ``dram``…) and wrap range (µJ)."""

    path: Path
    name: str
    max_range_uj: int

    def read_uj(self) -> int:
        """The cumulative counter now, in µJ."""
        return int((self.path / "energy_uj").read_text().strip())


class RaplUnavailable(Exception):
    """No usable RAPL zone; the message says why (absent, or not readable)."""


def find_zones(root: Path = POWERCAP) -> list[RaplZone]:
    """Every readable ``intel-rapl`` zone under ``root`` (package zones and their sub-zones)."""
    if not root.is_dir():
        raise RaplUnavailable(f"no RAPL: {root} does not exist (not Linux, or a VM without powercap)")
    dirs = sorted(d for d in root.iterdir() if d.name.startswith("intel-rapl:") and (d / "energy_uj").exists())
    if not dirs:
        raise RaplUnavailable(f"no RAPL: {root} has no intel-rapl zone")
    zones = []
    for d in dirs:
        name = (d / "name").read_text().strip() if (d / "name").exists() else d.name
        parent = d.name.count(":") > 1 and next((z for z in zones if d.name.startswith(z.path.name + ":")), None)
        zone = RaplZone(d, f"{parent.name}/{name}" if parent else name, int((d / "max_energy_range_uj").read_text()))
        try:
            zone.read_uj()
        except PermissionError:
            raise RaplUnavailable(
                f"RAPL is not readable: {d / 'energy_uj'}: permission denied (root only since Linux 5.10; "
                "run as root or make it readable: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj)"
            ) from None
        zones.append(zone)
    return zones


def wrapped_delta(before: int, after: int, max_range: int) -> int:
    """``after - before`` of a counter that wraps to 0 after ``max_range`` (at most one wrap)."""
    return after - before if after >= before else after + max_range - before


class RaplMeter:
    """Energy per RAPL zone between :meth:`start` and :meth:`stop`."""

    source = "rapl"

    def __init__(self, zones: list[RaplZone], poll_s: float = POLL_S) -> None:
        self.zones = zones
        self.poll_s = poll_s
        self._last: list[int] = []
        self._total_uj: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._error: Exception | None = None  # a background read that failed (the counter vanished)

    def poll(self) -> None:
        """Read every counter and add its (wrapped) increase since the last read."""
        with self._lock:
            for i, zone in enumerate(self.zones):
                now = zone.read_uj()
                self._total_uj[i] += wrapped_delta(self._last[i], now, zone.max_range_uj)
                self._last[i] = now

    def start(self) -> None:
        """Take the first reading and start polling in the background."""
        self._last = [zone.read_uj() for zone in self.zones]
        self._total_uj = [0] * len(self.zones)
        self._started = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_until_stopped, name="rapl", daemon=True)
        self._thread.start()

    def _poll_until_stopped(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except (OSError, ValueError) as exc:
                self._error = exc
                return

    def stop(self) -> EnergyReading:
        """The last reading; energy per zone since :meth:`start`."""
        elapsed = time.perf_counter() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        self.poll()
        energy = {zone.name: uj / 1000.0 for zone, uj in zip(self.zones, self._total_uj, strict=True)}
        return EnergyReading(self.source, elapsed, energy, total_zones(list(energy)))


def total_zones(names: list[str]) -> tuple[str, ...]:
    """The zones whose sum is the CPU's energy: every ``package-N`` (else every top-level zone, e.g. ``psys``
    alone); never a sub-zone, which its package already counts."""
    top = [name for name in names if "/" not in name]
    return tuple(name for name in top if name.startswith("package-")) or tuple(top)


def rapl_meter(root: Path = POWERCAP) -> RaplMeter:
    """A meter over the zones under ``root``; :class:`RaplUnavailable` when none is usable."""
    return RaplMeter(find_zones(Path(os.fspath(root))))
