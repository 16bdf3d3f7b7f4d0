"""Where a benchmark ran: CPU model and instruction set, cores, OS, Python and library versions, peak memory."""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pocketgan.core.hostinfo import host_isa

#: Packages whose versions are recorded when installed (looked up by distribution name, never imported).
RECORDED_PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "pocketgan")
_CPUINFO_KEYS = ("model name", "Model", "Hardware", "cpu model", "Processor")


@lru_cache(maxsize=1)
def host_info() -> dict[str, Any]:
    """A JSON-ready description of this machine and software stack.

    ``isa`` names the instruction-set extensions that decide int8 speed and correctness
    (e.g. "x86-64 AVX2 (no VNNI)", see :mod:`pocketgan.core.hostinfo`); ``cpu_features`` lists them.
    """
    isa = host_isa()
    return {
        "cpu": cpu_model(),
        "isa": isa.label,
        "cpu_features": list(isa.features),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
    }


def host_record() -> dict[str, Any]:
    """:func:`host_info` plus the device's state now: on a Jetson, ``jetson`` (power mode, clocks locked?,
    GPU/EMC frequencies, temperatures: :func:`pocketgan.runtime.power.device_state`)."""
    from pocketgan.runtime.power import device_state

    return {**host_info(), **device_state()}


def cpu_model() -> str:
    """CPU model from ``/proc/cpuinfo`` (x86 ``model name``, ARM/Jetson ``Model``/``Hardware``) or ``platform``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip(), value.strip())
        for key in _CPUINFO_KEYS:
            if key in fields:
                return fields[key]
    return platform.processor() or platform.machine() or "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`RECORDED_PACKAGES` (missing ones are left out)."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (``getrusage``; psutil where that is missing)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere
    except ImportError:  # Windows
        pass
    try:
        import psutil

        memory = psutil.Process().memory_info()
        return getattr(memory, "peak_wset", memory.rss) / 2**20
    except ImportError:
        return None


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()
