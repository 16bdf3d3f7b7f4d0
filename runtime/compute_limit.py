"""The host's compute limit: the fastest multiply-add rate any installed library reaches here, measured once.

A generator is a stack of convolutions, i.e. GEMMs; it cannot run faster than the best GEMM the host
runs. :func:`host_compute_limit` times square GEMMs (:mod:`pocketgan.runtime.gemm_probe`: numpy's
BLAS, onnxruntime's MLAS and OpenVINO's oneDNN when installed) at the benchmark's thread count and
keeps the fastest fp32 rate as the **fp32 limit** (GMAC/s) and onnxruntime's ``MatMulInteger`` as the
**int8 limit**. The int8 probe runs on every host, but only a host with int8 dot products (VNNI,
AVX-VNNI, AMX, ARM dot product: :func:`pocketgan.core.hostinfo.host_isa`) gets an int8 limit that an
int8 artifact is held to; without them int8 kernels multiply in saturating int16 pairs and the probe's
rate is recorded for information only (an int8 artifact there is held to the fp32 limit).

The result is cached per host as JSON under ``$POCKETGAN_CACHE/host`` (default
``~/.cache/pocketgan/host``), keyed by CPU model, instruction-set flags, thread count and library
versions, so a benchmark pays the ~2 s probe once; ``refresh=True`` measures again. A busy machine
measures a lower limit: the probe keeps each library's best run, and the cache file can be deleted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import read_json, write_json_atomic
from pocketgan.core.hostinfo import host_isa
from pocketgan.core.keys import fingerprint
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.runtime import gemm_probe
from pocketgan.runtime.gemm_probe import DEFAULT_BUDGET_S, DEFAULT_N, GemmProbe
from pocketgan.runtime.host import cpu_model, package_versions

if TYPE_CHECKING:
    from pocketgan.runtime.runner import Runner

#: Bumped when the probe changes what it measures (old cache files are then ignored).
PROBE_VERSION = 1


@dataclass(frozen=True)
class ComputeLimit:
    """Multiply-accumulates per second this host reaches at ``threads`` threads: fp32 and (with int8 dot
    products) int8, with every probe that was run."""

    cpu: str
    isa: str
    threads: int
    fp32_gmacs: float
    int8_gmacs: float | None
    int8_dot_product: bool
    probes: list[GemmProbe] = field(default_factory=list)
    measured_at: str = ""

    def gmacs_for(self, precision: str | None) -> float:
        """The limit an artifact of ``precision`` is held to: the int8 one for ``int8`` where the host has
        int8 dot products, else fp32 (fp16 artifacts run fp32 kernels on CPUs)."""
        if precision == "int8" and self.int8_gmacs is not None:
            return self.int8_gmacs
        return self.fp32_gmacs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the record stored in the cache and in the bench JSON's host record)."""
        return {"probe_version": PROBE_VERSION, "cpu": self.cpu, "isa": self.isa, "threads": self.threads,
                "fp32_gmacs": self.fp32_gmacs, "int8_gmacs": self.int8_gmacs,
                "int8_dot_product": self.int8_dot_product, "measured_at": self.measured_at,
                "probes": [p.to_dict() for p in self.probes]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComputeLimit:
        int8 = data.get("int8_gmacs")
        probes = [GemmProbe.from_dict(p) for p in data.get("probes", [])]
        return cls(str(data["cpu"]), str(data["isa"]), int(data["threads"]), float(data["fp32_gmacs"]),
                   None if int8 is None else float(int8), bool(data["int8_dot_product"]), probes,
                   str(data.get("measured_at", "")))  # fmt: skip


def probe_threads(threads: int | None) -> int:
    """The thread count to probe at: the benchmark's ``--threads``, else every usable core (the backends' default)."""
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cache_dir() -> Path:
    """``$POCKETGAN_CACHE/host`` when the variable is set, else ``~/.cache/pocketgan/host``."""
    root = os.environ.get("POCKETGAN_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "pocketgan") / "host"


def cache_path(threads: int | None) -> Path:
    """The cache file of this host's limit at ``threads``: keyed by CPU, ISA flags, threads and library versions."""
    isa = host_isa()
    versions = {k: v for k, v in package_versions().items() if k != "pocketgan"}
    key = fingerprint(PROBE_VERSION, cpu_model(), isa.arch, list(isa.features), probe_threads(threads), versions)
    return cache_dir() / f"compute-limit-{key}.json"


def host_compute_limit(
    threads: int | None = None,
    *,
    refresh: bool = False,
    progress: ProgressCallback | None = None,
) -> ComputeLimit:
    """This host's :class:`ComputeLimit` at ``threads`` (default: all usable cores), from the cache when
    it was measured before, else probed now (reported to ``progress``) and cached."""
    path = cache_path(threads)
    if not refresh and path.is_file():
        try:
            return ComputeLimit.from_dict(read_json(path))
        except (PocketganError, KeyError, TypeError, ValueError, OSError):
            pass  # an unreadable or older record: measure again
    limit = measure_compute_limit(probe_threads(threads), progress=progress)
    write_json_atomic(path, limit.to_dict())
    return limit


def measure_compute_limit(
    threads: int,
    n: int = DEFAULT_N,
    budget_s: float = DEFAULT_BUDGET_S,
    progress: ProgressCallback | None = None,
) -> ComputeLimit:
    """Run every available probe (:func:`available_probes`) at ``threads`` threads; no cache."""
    probes: list[GemmProbe] = []
    candidates = available_probes()
    with ProgressTask(progress, f"compute limit ({threads} thread{'s' if threads > 1 else ''})",
                      len(candidates)) as task:  # fmt: skip
        for name, probe in task.track(candidates):
            task.update(status=name)
            try:
                probes.append(probe(n, threads, budget_s))
            except Exception:  # a library that cannot run the probe here is simply not counted
                continue
    return limit_from_probes(probes, threads)


def limit_from_probes(probes: Sequence[GemmProbe], threads: int) -> ComputeLimit:
    """The :class:`ComputeLimit` of measured ``probes``: the fastest fp32 probe, the fastest int8 one where the
    host has int8 dot products."""
    isa = host_isa()
    fp32 = [p.gmacs for p in probes if p.dtype == "fp32"]
    if not fp32:
        raise RuntimeError("no fp32 GEMM probe could run (numpy itself failed)")
    int8 = [p.gmacs for p in probes if p.dtype == "int8"]
    int8_limit = max(int8) if int8 and isa.int8_dot_product else None
    return ComputeLimit(cpu_model(), isa.label, threads, max(fp32), int8_limit, isa.int8_dot_product, list(probes),
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip


def available_probes() -> list[tuple[str, Callable[[int, int, float], GemmProbe]]]:
    """``(name, probe(n, threads, budget_s))`` for numpy and each installed runtime."""
    from importlib.util import find_spec

    probes: list[tuple[str, Callable[[int, int, float], GemmProbe]]] = [("numpy fp32", gemm_probe.numpy_sgemm)]
    if find_spec("onnxruntime") is not None:
        probes += [("onnxruntime fp32", lambda n, t, b: gemm_probe.ort_gemm("fp32", n, t, b)),
                   ("onnxruntime int8", lambda n, t, b: gemm_probe.ort_gemm("int8", n, t, b))]  # fmt: skip
    if find_spec("openvino") is not None:
        probes.append(("openvino fp32", gemm_probe.openvino_sgemm))
    return probes


#: ``--compute-limit`` choices: read the cache (probe when missing), probe again, or skip.
LIMIT_MODES = ("cached", "refresh", "off")


def limit_if_needed(
    runners: Sequence[Runner], threads: int | None, mode: str = "cached", progress: ProgressCallback | None = None
) -> ComputeLimit | None:
    """:func:`host_compute_limit` (``mode`` ``cached`` or ``refresh``) when some runner's artifact carries its MACs
    (else there is nothing to hold to it); ``None`` for ``off``."""
    if mode not in LIMIT_MODES:
        raise PocketganError(f"--compute-limit must be {', '.join(LIMIT_MODES)}; got {mode!r}")
    if mode == "off" or not any(runner.info.profile.get("macs") for runner in runners):
        return None
    return host_compute_limit(threads, refresh=mode == "refresh", progress=progress)
