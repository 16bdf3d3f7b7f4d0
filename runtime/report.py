"""Presenting benchmark results: a rich table on the terminal and a JSON list on disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pocketgan.core.fsio import write_json_atomic
from pocketgan.runtime.bench import BenchResult

_PROVIDER_SUFFIX = "ExecutionProvider"


def results_table(results: Sequence[BenchResult]) -> Table:
    """One column per result, one row per figure; ``vs first`` is the first mean latency over this one's."""
    table = Table(title="pocketgan bench", title_justify="left")
    table.add_column("")
    for r in results:
        table.add_column(r.artifact, justify="right", overflow="fold")
    baseline = results[0].latency.mean_ms if results else 0.0
    placed = any(r.placement is not None for r in results)
    counted = any(r.macs for r in results)
    for label, cell in _ROWS:
        if label == "placement" and not placed:  # no placement row when none was recorded (--no-placement)
            continue
        if label in _EFFICIENCY_ROWS and not counted:  # no MACs known: nothing to hold to the compute limit
            continue
        if label in _POWER_ROWS and not any(_energy(r) is not None for r in results):  # no power source here
            continue
        table.add_row(label, *(cell(r, baseline) for r in results))
    return table


def _efficiency(field: str, fmt: str) -> Callable[[BenchResult, float], str]:
    def cell(r: BenchResult, _baseline: float) -> str:
        value = getattr(r.efficiency, field, None) if r.efficiency is not None else None
        return fmt.format(value) if value is not None else "n/a"

    return cell


def _ms(field: str) -> Callable[[BenchResult, float], str]:
    return lambda r, _baseline: f"{getattr(r.latency, field):.3f}"


_ROWS: list[tuple[str, Callable[[BenchResult, float], str]]] = [
    ("backend", lambda r, _: r.backend),
    ("providers", lambda r, _: ", ".join(p.removesuffix(_PROVIDER_SUFFIX) for p in r.providers)),
    ("placement", lambda r, _: r.placement.summary() if r.placement is not None else "n/a"),
    ("input", lambda r, _: "x".join(str(d) for d in r.input_shape) + (" z (random)" * (r.input_kind == "latent"))),
    ("threads", lambda r, _: str(r.threads) if r.threads else "default"),
    ("iterations", lambda r, _: f"{r.latency.count} (+{r.warmup_iterations} warm-up"
     + (f", {r.lead_in_iterations} lead-in)" if r.lead_in_iterations else ")")),
    *((f"{name} ms", _ms(f"{name}_ms")) for name in ("min", "mean", "p50", "p90", "p95", "p99", "max", "std")),
    ("CV", lambda r, _: f"[yellow]{r.latency.cv:.1%}[/]" if r.latency.noisy else f"{r.latency.cv:.1%}"),
    ("images/s", lambda r, _: f"{r.throughput:.1f}"),
    ("peak RSS MiB", lambda r, _: f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "n/a"),
    ("speed vs first", lambda r, base: f"{base / r.latency.mean_ms:.2f}x" if r.latency.mean_ms > 0 else "n/a"),
    ("GMACs", lambda r, _: f"{r.macs / 1e9:.3g}" if r.macs else "n/a"),
    ("% of compute limit", _efficiency("percent_of_limit", "{:.1f}%")),
    ("speedup ÷ MAC reduction", _efficiency("speedup_per_mac_reduction", "{:.2f}")),
]
_ROWS += [
    ("energy/frame mJ", lambda r, _: f"{_energy(r):.2f}" if _energy(r) is not None else "n/a"),
    ("avg power W", lambda r, _: f"{r.power['avg_power_mw'] / 1e3:.2f}" if _energy(r) is not None else "n/a"),
]
#: Rows shown only when some result has a power measurement (runtime.power).
_POWER_ROWS = ("energy/frame mJ", "avg power W")


def _energy(result: BenchResult) -> float | None:
    return result.power.get("energy_per_frame_mj")


def power_line(results: Sequence[BenchResult]) -> str:
    """``power: <source> (total: <domains>)``, or why nothing was measured."""
    power = results[0].power if results else {}
    if power.get("source") is None:
        return f"power: not measured ({power.get('reason', 'no power source')})"
    shared = "; the interleaved artifacts share its energy by their time" if len(results) > 1 else ""
    interval = f", {power['samples']} samples every {power['interval_ms']} ms" if "interval_ms" in power else ""
    return f"power: {power['source']} over the timed loop (total: {' + '.join(power['total'])}{interval}){shared}"


#: Rows shown only when some artifact carries its MACs.
_EFFICIENCY_ROWS = ("GMACs", "% of compute limit", "speedup ÷ MAC reduction")


def efficiency_lines(results: Sequence[BenchResult]) -> list[str]:
    """The compute limit the % row uses and the baseline of speedup ÷ MAC reduction (nothing when not measured)."""
    lines = []
    limit = next((r.host["compute_limit"] for r in results if "compute_limit" in r.host), None)
    if limit is not None:
        int8 = f", {limit['int8_gmacs']:.0f} GMAC/s int8" if limit.get("int8_gmacs") else ", no int8 dot products"
        threads = f"{limit['threads']} thread{'s' if limit['threads'] != 1 else ''}"
        lines.append(f"compute limit: {limit['fp32_gmacs']:.0f} GMAC/s fp32{int8} at {threads} "
                     "(best GEMM of the installed libraries; cached per host)")  # fmt: skip
    baseline = next((r.efficiency.baseline for r in results if r.efficiency and r.efficiency.baseline), None)
    if baseline is not None and any(r.macs for r in results):
        lines.append(f"speedup ÷ MAC reduction against {baseline} (1.00: latency fell as much as the MACs)")
    return lines


def host_line(results: Sequence[BenchResult]) -> str:
    """``host: <cpu> (<isa>, N cores), <os>, python X, numpy Y, onnxruntime Z``."""
    if not results:
        return ""
    host = results[0].host
    versions = {**host.get("versions", {}), **{k: v for r in results for k, v in r.versions.items()}}
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if k != "pocketgan")
    isa = f"{host['isa']}, " if host.get("isa") else ""
    machine = f"{host.get('cpu')} ({isa}{host.get('cores')} cores), {host.get('os')}"
    return f"host: {machine}, python {host.get('python')}, {libraries}"


def print_results(results: Sequence[BenchResult], console: Console, err_console: Console) -> None:
    """The table and host on ``console``; each warning once on ``err_console``."""
    console.print(results_table(results))
    console.print(host_line(results), soft_wrap=True)
    for line in efficiency_lines(results):
        console.print(line, soft_wrap=True, markup=False)
    console.print(power_line(results), soft_wrap=True, markup=False)
    seen: set[str] = set()
    for r in results:
        for warning in r.warnings:
            if warning not in seen:
                seen.add(warning)
                err_console.print(f"warning: {warning}", soft_wrap=True, markup=False)


def write_results_json(results: Sequence[BenchResult], path: str | os.PathLike[str]) -> Path:
    """Write the list of result dicts (raw samples included) atomically."""
    return write_json_atomic(path, [r.to_dict() for r in results])
