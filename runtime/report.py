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
    for label, cell in _ROWS:
        if label != "placement" or placed:  # no placement row when none was recorded (--no-placement)
            table.add_row(label, *(cell(r, baseline) for r in results))
    return table


def _ms(field: str) -> Callable[[BenchResult, float], str]:
    return lambda r, _baseline: f"{getattr(r.latency, field):.3f}"


_ROWS: list[tuple[str, Callable[[BenchResult, float], str]]] = [
    ("backend", lambda r, _: r.backend),
    ("providers", lambda r, _: ", ".join(p.removesuffix(_PROVIDER_SUFFIX) for p in r.providers)),
    ("placement", lambda r, _: r.placement.summary() if r.placement is not None else "n/a"),
    ("input", lambda r, _: "x".join(str(d) for d in r.input_shape) + (" z (random)" * (r.input_kind == "latent"))),
    ("threads", lambda r, _: str(r.threads) if r.threads else "default"),
    ("iterations", lambda r, _: f"{r.latency.count} (+{r.warmup_iterations} warm-up)"),
    *((f"{name} ms", _ms(f"{name}_ms")) for name in ("min", "mean", "p50", "p90", "p95", "p99", "max", "std")),
    ("CV", lambda r, _: f"[yellow]{r.latency.cv:.1%}[/]" if r.latency.noisy else f"{r.latency.cv:.1%}"),
    ("images/s", lambda r, _: f"{r.throughput:.1f}"),
    ("peak RSS MiB", lambda r, _: f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "n/a"),
    ("speed vs first", lambda r, base: f"{base / r.latency.mean_ms:.2f}x" if r.latency.mean_ms > 0 else "n/a"),
]


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
    seen: set[str] = set()
    for r in results:
        for warning in r.warnings:
            if warning not in seen:
                seen.add(warning)
                err_console.print(f"warning: {warning}", soft_wrap=True, markup=False)


def write_results_json(results: Sequence[BenchResult], path: str | os.PathLike[str]) -> Path:
    """Write the list of result dicts (raw samples included) atomically."""
    return write_json_atomic(path, [r.to_dict() for r in results])
