"""``tegrastats`` on a Jetson: one parser for the Nano, Xavier and Orin line formats, and a sampler.

The published formats differ in the rail names and units, not in shape (JetPack 4 Nano, JetPack 4/5
Xavier, JetPack 5/6 Orin)::

    RAM 1216/3956MB (lfb 420x4MB) ... CPU [2%@102,off] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 ... GPU@23.5C
        POM_5V_IN 1115/1115 POM_5V_GPU 0/0 POM_5V_CPU 161/161                         (Nano, mW)
    ... EMC_FREQ 0% GR3D_FREQ 0% ... GPU 0/0 CPU 155/155 SOC 1241/1241 CV 0/0 SYS5V 1784/1784  (Xavier, mW)
    ... GR3D_FREQ 0%@[305,305] ... VDD_GPU_SOC 3215mW/3215mW VDD_CPU_CV 802mW/802mW VIN_SYS_5V0 ...  (Orin)

A rail reads ``NAME instantaneous/average``; only the instantaneous value is used (the average is
tegrastats' own since it started). Temperatures of ``-256C`` are sensors that are off and are dropped.
:class:`TegrastatsSampler` runs ``tegrastats --interval MS`` in a background process and keeps each
line with its arrival time, so the samples of the timed loop can be picked out afterwards.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field

from pocketgan.core.errors import PocketganError

_RAIL = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_TEMP = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?=\s|$)")
_FREQ = re.compile(r"\b(EMC_FREQ|GR3D_FREQ|GR3D2_FREQ) (\d+)%(?:@\[?([\d,]+)\]?)?")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
#: A temperature at or below this is a sensor that is switched off (tegrastats prints ``-256C``).
SENSOR_OFF_C = -200.0
#: tegrastats' fields that look like rails (``NAME a/b``) but are not power.
_NOT_RAILS = frozenset({"RAM", "SWAP", "IRAM", "lfb"})


@dataclass(frozen=True)
class TegrastatsSample:
    """One tegrastats line: instantaneous power per rail (mW), loads, frequencies and temperatures."""

    rails_mw: dict[str, float]
    temperatures_c: dict[str, float] = field(default_factory=dict)
    gpu_load_pct: float | None = None
    gpu_freq_mhz: float | None = None
    emc_load_pct: float | None = None
    emc_freq_mhz: float | None = None
    cpu_load_pct: list[float | None] = field(default_factory=list)  # None: core off
    ram_used_mb: int | None = None


def parse_line(line: str) -> TegrastatsSample:
    """Parse one tegrastats line of any of the Nano, Xavier and Orin formats."""
    rails = {name: float(now) for name, now, _avg in _RAIL.findall(line) if name not in _NOT_RAILS}
    temperatures = {name: float(t) for name, t in _TEMP.findall(line) if float(t) > SENSOR_OFF_C}
    freqs = {name: (float(load), _mhz(mhz)) for name, load, mhz in _FREQ.findall(line)}
    gpu = freqs.get("GR3D_FREQ", (None, None))
    emc = freqs.get("EMC_FREQ", (None, None))
    ram = _RAM.search(line)
    cpu = _CPU.search(line)
    return TegrastatsSample(
        rails_mw=rails,
        temperatures_c=temperatures,
        gpu_load_pct=gpu[0],
        gpu_freq_mhz=gpu[1],
        emc_load_pct=emc[0],
        emc_freq_mhz=emc[1],
        cpu_load_pct=[_cpu_load(core) for core in cpu.group(1).split(",")] if cpu else [],
        ram_used_mb=int(ram.group(1)) if ram else None,
    )


def _mhz(text: str) -> float | None:
    """``"76"`` → 76.0; Orin's per-GPC ``"305,305"`` → their mean; empty → None."""
    values = [float(v) for v in text.split(",") if v]
    return sum(values) / len(values) if values else None


def _cpu_load(core: str) -> float | None:
    load = core.strip().partition("%")[0]
    return float(load) if load and load != "off" else None


class TegrastatsSampler:
    """``tegrastats --interval MS`` in a background process; :meth:`between` gives the samples of a window.

    Use as a context manager: samples are collected from ``__enter__`` until ``__exit__``.
    """

    def __init__(self, interval_ms: int = 100, command: str = "tegrastats") -> None:
        self.interval_ms = interval_ms
        self.command = command
        self.samples: list[tuple[float, TegrastatsSample]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> TegrastatsSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start ``tegrastats`` and the thread that reads its lines."""
        try:
            self._process = subprocess.Popen(
                [self.command, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            )  # fmt: skip
        except OSError as exc:
            raise PocketganError(f"cannot start {self.command}: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if line.strip():
                self.samples.append((time.monotonic(), parse_line(line)))

    def stop(self) -> None:
        """Stop ``tegrastats`` (terminate, then kill after 5 s) and its reader."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def between(self, start: float, stop: float) -> list[TegrastatsSample]:
        """The samples that arrived in ``[start, stop]`` (``time.monotonic()`` seconds)."""
        return [sample for at, sample in list(self.samples) if start <= at <= stop]
