"""What makes Jetson numbers trustworthy (as jetson_benchmarks and jtop record it): power mode, clocks,
GPU/EMC frequencies, temperatures, and power rails sampled with ``tegrastats`` during the timed loop.

- :func:`jetson_state`: ``nvpmodel -q`` (the power mode), ``jetson_clocks --show`` (are the clocks
  locked? GPU and EMC frequencies), the thermal zones, the board model and L4T release. It goes in
  the bench JSON's host record as ``host["jetson"]``.
- :class:`TegrastatsMeter`: average power per rail over the timed loop and which rail is the total: the
  module's input rail where there is one (``VDD_IN`` on Orin NX/Nano and Xavier NX, ``POM_5V_IN`` on Nano),
  else the sum of every rail (AGX Orin, AGX Xavier).
- :func:`locked_clocks`: ``jetson_clocks --store FILE``, ``jetson_clocks``, the run, then
  ``jetson_clocks --restore FILE`` even when the run fails (``--lock-clocks``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from statistics import fmean
from typing import Any

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.power.energy import EnergyReading, from_average_power
from pocketgan.runtime.power.tegrastats import TegrastatsSample, TegrastatsSampler

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_MODEL = Path("/proc/device-tree/model")
THERMAL = Path("/sys/devices/virtual/thermal")
#: Module input rails: the whole board's power where tegrastats reports one.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
_KEY_VALUE = re.compile(r"(\w+)=(\S+)")
_COMMAND_TIMEOUT_S = 30


def is_jetson() -> bool:
    """A Jetson: L4T's release file, or ``tegrastats`` on PATH."""
    return TEGRA_RELEASE.is_file() or shutil.which("tegrastats") is not None


def jetson_state() -> dict[str, Any]:
    """The Jetson record of the host: model, L4T, power mode, clocks and temperatures now."""
    return {
        "model": _read(DEVICE_MODEL).rstrip("\x00") or None,
        "l4t": _read(TEGRA_RELEASE).splitlines()[0].lstrip("# ") if TEGRA_RELEASE.is_file() else None,
        "power_mode": power_mode(),
        "clocks": clocks_state(),
        "temperatures_c": thermal_zones(),
    }


def power_mode() -> dict[str, Any]:
    """``nvpmodel -q``: ``{"name": "MAXN", "id": 0}``, or ``{"error": ...}``."""
    try:
        lines = _command(["nvpmodel", "-q"]).splitlines()
    except PocketganError as exc:
        return {"error": str(exc)}
    name = next((line.split(":", 1)[1].strip() for line in lines if "Power Mode" in line), None)
    ident = next((int(line) for line in (s.strip() for s in lines) if line.isdigit()), None)
    return {"name": name, "id": ident}


def clocks_state(show: str | None = None) -> dict[str, Any]:
    """``jetson_clocks --show`` parsed: locked or not, GPU and EMC frequencies (MHz), per-CPU min/max/current.

    Locked means what ``jetson_clocks`` sets: every online CPU and the GPU at min = max (and the EMC
    frequency overridden, where the line reports ``FreqOverride``).
    """
    if show is None:
        try:
            show = _command(["jetson_clocks", "--show"], root=True)
        except PocketganError as exc:
            return {"locked": None, "error": str(exc)}
    cpus, units = {}, {}
    for line in show.splitlines():
        head = line.split(":", 1)[0].split(" ", 1)[0].strip()
        fields = dict(_KEY_VALUE.findall(line))
        if head.startswith("cpu") and fields.get("Online", "1") == "1" and "MinFreq" in fields:
            cpus[head] = {k: int(fields[k]) / 1e3 for k in ("MinFreq", "MaxFreq", "CurrentFreq") if k in fields}
        elif head in ("GPU", "EMC") and "MinFreq" in fields:
            units[head] = {k: int(v) / 1e6 for k, v in fields.items() if k.endswith("Freq")}
            if "FreqOverride" in fields:
                units[head]["FreqOverride"] = int(fields["FreqOverride"])
    pinned = [f["MinFreq"] == f["MaxFreq"] for f in (*cpus.values(), *(v for k, v in units.items() if k == "GPU"))]
    override = units.get("EMC", {}).get("FreqOverride", 1)
    return {
        "locked": bool(pinned) and all(pinned) and override == 1,
        "gpu_mhz": _mhz_fields(units.get("GPU")),
        "emc_mhz": _mhz_fields(units.get("EMC")),
        "cpu_mhz": {name: _mhz_fields(f) for name, f in cpus.items()},
    }


def _mhz_fields(fields: dict[str, float] | None) -> dict[str, float] | None:
    if not fields:
        return None
    return {k.removesuffix("Freq").lower(): v for k, v in fields.items() if k.endswith("Freq")}


def thermal_zones(root: Path = THERMAL) -> dict[str, float]:
    """``thermal_zone*/type`` → degrees C (from milli-degrees); sensors that are off are left out."""
    temperatures = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            celsius = int((zone / "temp").read_text()) / 1000.0
        except (OSError, ValueError):
            continue
        if celsius > -200:
            temperatures[_read(zone / "type").strip() or zone.name] = celsius
    return temperatures


def total_rails(rails: Sequence[str]) -> tuple[str, ...]:
    """The rails whose sum is the module's power: its input rail, or every rail."""
    return next(((name,) for name in INPUT_RAILS if name in rails), tuple(rails))


def tegrastats_reading(samples: Sequence[TegrastatsSample], elapsed_s: float, interval_ms: int) -> EnergyReading:
    """Average power per rail over ``samples`` held for ``elapsed_s``, with GPU/EMC frequency and temperatures."""
    rails = list(dict.fromkeys(name for s in samples for name in s.rails_mw))
    avg = {name: fmean(s.rails_mw.get(name, 0.0) for s in samples) for name in rails}
    details: dict[str, Any] = {"samples": len(samples), "interval_ms": interval_ms}
    for key in ("gpu_load_pct", "gpu_freq_mhz", "emc_load_pct", "emc_freq_mhz"):
        values = [getattr(s, key) for s in samples if getattr(s, key) is not None]
        if values:
            details[key] = fmean(values)
    names = {name for s in samples for name in s.temperatures_c}
    details["max_temperatures_c"] = {n: max(s.temperatures_c.get(n, float("-inf")) for s in samples) for n in names}
    return from_average_power("tegrastats", avg, elapsed_s, total_rails(rails), **details)


class TegrastatsMeter:
    """Power rails sampled by ``tegrastats`` from :meth:`start` to :meth:`stop`."""

    source = "tegrastats"

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats") -> None:
        self.sampler = TegrastatsSampler(interval_ms, command)
        self._window = (0.0, 0.0)

    def start(self) -> None:
        """Start tegrastats, wait for its first line (so the loop is covered from its start)."""
        self.sampler.start()
        deadline = time.monotonic() + max(2.0, 5 * self.sampler.interval_ms / 1000)
        while not self.sampler.samples and time.monotonic() < deadline:
            time.sleep(0.01)
        self._window = (time.monotonic(), 0.0)

    def stop(self) -> EnergyReading:
        """Stop tegrastats; the reading of the samples taken in the window."""
        start, stop = self._window[0], time.monotonic()
        self.sampler.stop()
        samples = self.sampler.between(start, stop)
        if not samples:
            raise PocketganError(
                f"no tegrastats sample during the timed loop ({stop - start:.2f} s, interval "
                f"{self.sampler.interval_ms} ms): raise --duration"
            )
        return tegrastats_reading(samples, stop - start, self.sampler.interval_ms)


@contextmanager
def locked_clocks(enabled: bool = True) -> Iterator[None]:
    """Lock the clocks with ``jetson_clocks`` for the body and restore the stored state after, even on error."""
    if not enabled:
        yield
        return
    if shutil.which("jetson_clocks") is None:
        raise PocketganError("--lock-clocks needs jetson_clocks (a Jetson with JetPack); it is not on PATH")
    with tempfile.TemporaryDirectory(prefix="pocketgan-clocks-") as tmp:
        stored = str(Path(tmp) / "jetson_clocks.conf")
        _command(["jetson_clocks", "--store", stored], root=True)
        try:
            _command(["jetson_clocks"], root=True)
            yield
        finally:
            _command(["jetson_clocks", "--restore", stored], root=True)


def _command(argv: list[str], root: bool = False) -> str:
    """Run a Jetson tool; its failure is one :class:`PocketganError` line (root tools through ``sudo -n``)."""
    if root and os.geteuid() != 0 and shutil.which("sudo"):
        argv = ["sudo", "-n", *argv]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PocketganError(f"{argv[0]}: {getattr(exc, 'strerror', None) or exc}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        hint = " (it needs root: run as root or allow it in sudoers)" if root else ""
        raise PocketganError(f"{' '.join(argv)} failed: {why[-1] if why else f'exit {done.returncode}'}{hint}")
    return done.stdout


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
