"""Which int8 kernels this CPU can run: its instruction-set extensions (standard library only).

onnxruntime's x86 int8 convolutions multiply uint8 activations by int8 weights. Without VNNI
(AVX2, or AVX-512 without VNNI) they use ``vpmaddubsw``, which adds pairs of products into int16
and *saturates*: 2 × 255 × 127 overflows, so a full-range int8 model can lose ~14 dB on such a CPU
while it passes on a VNNI one. Weights in the reduced (7-bit) range cannot overflow
(2 × 255 × 64 = 32640 ≤ 32767). VNNI, AMX and ARM's dot-product instructions accumulate in int32
and have no such limit. :func:`host_isa` tells them apart so export and bench can name them.

``host_isa().label`` is e.g. ``"x86-64 AVX-512 VNNI"``, ``"x86-64 AVX2 (no VNNI)"`` or ``"arm64 NEON dot-product"``.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

#: The flags that decide int8 kernels (Linux ``/proc/cpuinfo`` spelling), in the order recorded.
X86_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
ARM_FLAGS = ("neon", "asimd", "asimddp", "i8mm")
#: Flags whose int8 dot products accumulate in int32 without saturating.
DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
_X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
_ARM64_MACHINES = frozenset({"aarch64", "arm64", "armv8l"})
# macOS ``sysctl`` names of the same features.
_SYSCTL_FLAGS = {
    "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx512vnni": "avx512_vnni",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.neon": "asimd",
    "hw.optional.AdvSIMD": "asimd",
}


@dataclass(frozen=True)
class HostISA:
    """This CPU's architecture and the instruction-set extensions that matter for int8 inference.

    ``label`` is for people ("x86-64 AVX2 (no VNNI)"); ``int8_dot_product`` says whether full-range
    int8 weights are safe with onnxruntime's CPU kernels here (VNNI, AMX or ARM dot product).
    """

    arch: str
    features: tuple[str, ...]
    label: str
    int8_dot_product: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"label", "arch", "features", "int8_dot_product"}``."""
        return {"label": self.label, "arch": self.arch, "features": list(self.features),
                "int8_dot_product": self.int8_dot_product}  # fmt: skip


@lru_cache(maxsize=1)
def host_isa() -> HostISA:
    """This machine's :class:`HostISA` (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS)."""
    machine = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = cpuinfo_flags(cpuinfo.read_text(errors="replace"))
    elif sys.platform == "darwin":
        flags = _sysctl_flags()
    else:
        flags = None  # Windows and others: the architecture only
    return describe_isa(machine, flags)


def cpuinfo_flags(text: str) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` text (x86 ``flags``, ARM ``Features``)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def describe_isa(machine: str, flags: frozenset[str] | None) -> HostISA:
    """A :class:`HostISA` for ``platform.machine()`` and its feature ``flags`` (None: unknown)."""
    name = machine.lower()
    if name in _X86_MACHINES:
        arch, known = ("x86-64" if name in ("x86_64", "amd64") else "x86"), X86_FLAGS
    elif name in _ARM64_MACHINES:
        arch, known = "arm64", ARM_FLAGS
    elif name.startswith("arm"):
        arch, known = "arm", ARM_FLAGS
    else:
        arch, known = machine or "unknown", ()
    if flags is None:
        return HostISA(arch, (), f"{arch} (extensions unknown)", False)
    features = tuple(f for f in known if f in flags)
    dot_product = any(f in DOT_PRODUCT_FLAGS for f in features)
    return HostISA(arch, features, f"{arch} {_extensions(arch, set(features))}".strip(), dot_product)


def _extensions(arch: str, features: set[str]) -> str:
    if arch.startswith("x86"):
        return _x86_extensions(features)
    if arch.startswith("arm"):
        if "asimddp" in features:
            return "NEON dot-product" + (" + i8mm" if "i8mm" in features else "")
        return "NEON (no dot-product)" if features & {"neon", "asimd"} else "(no NEON)"
    return ""


def _x86_extensions(features: set[str]) -> str:
    if "avx512_vnni" in features:
        base = "AVX-512 VNNI"
    elif "avx_vnni" in features:
        base = "AVX2 + AVX-VNNI"
    elif "avx512f" in features:
        base = "AVX-512 (no VNNI)"
    elif "avx2" in features:
        base = "AVX2 (no VNNI)"
    else:
        base = "without AVX2"
    return base + (" + AMX-INT8" if "amx_int8" in features else "")


def _sysctl_flags() -> frozenset[str] | None:
    """Feature flags from macOS ``sysctl`` (keys that are absent or 0 are not set)."""
    try:
        result = subprocess.run(["sysctl", *_SYSCTL_FLAGS], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    flags = set()
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip() == "1" and key.strip() in _SYSCTL_FLAGS:
            flags.add(_SYSCTL_FLAGS[key.strip()])
    return frozenset(flags)
