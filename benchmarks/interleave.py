"""Interleaving benchmark: what per-iteration round robin does to latency, against settled turns and each alone.

A runtime's worker threads keep spinning for milliseconds after a call (onnxruntime's intra-op pool,
OpenVINO's TBB arena, XNNPACK's pthreadpool). When several runtimes are timed one iteration each in
turn, every call shares the cores with the previous runtime's spinners. This script measures the same
artifacts three ways, one after the other in one process:

- **alone**: each artifact by itself (``pocketgan.runtime.benchmark([runner])``), once before and once
  after the interleaved runs; the mean of the two p50s is the reference (drift between them shows);
- **round robin**: all interleaved one iteration each in turn (``block_ms=0, settle_ms=0``: the engine's
  schedule before turns);
- **turns**: all interleaved with the engine's defaults (``settle_ms`` idle, a lead-in call, then
  back-to-back iterations for ``block_ms``; :mod:`pocketgan.runtime.bench`).

For every artifact it prints p50 for each run and the two interleaved p50s as ratios to alone.
Models are random-weight ``--models`` references exported to ONNX once; every one runs on onnxruntime and
on OpenVINO (the same ``model.onnx``), so the run mixes two runtimes as ``pocketgan-bench --backend auto``
does.

    python benchmarks/interleave.py [--size 256] [--threads 2] [--duration 10]
        [--models resnet9:ngf=64,mobile-resnet:ngf=16,fast-resnet] [--out benchmarks/results/interleave]

Prints a table and writes ``<out>/interleave.json``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.console import console
from pocketgan.export.api import export_model
from pocketgan.export.job import ExportOptions
from pocketgan.models import load_model
from pocketgan.runtime import benchmark, load
from pocketgan.runtime.bench import BenchSettings
from latency_args import bench_settings, latency_parser, write_record  # benchmarks/latency_args.py (beside this script)

MODELS = "resnet9:ngf=64,mobile-resnet:ngf=16,fast-resnet"
BACKENDS = ("ort", "openvino")
COLUMNS = ("alone before", "alone after", "round robin", "turns")


def export_all(refs: list[str], size: int, out: Path) -> list[Path]:
    """Every reference exported to ONNX (random weights, parity-checked) under ``out/onnx/<i>``."""
    paths = []
    for i, ref in enumerate(refs):
        torch.manual_seed(0)
        console.print(f"exporting {ref} …")
        sidecar = export_model(load_model(ref), "onnx", out / "onnx" / str(i), ExportOptions(size=(size, size)))
        paths.append(out / "onnx" / str(i) / sidecar.file)
    return paths


def measure(runners: list[Any], settings: BenchSettings) -> dict[str, list[float]]:
    """p50 (ms) of every runner in each :data:`COLUMNS` run, and ``alone``: the mean of the two alone runs."""
    def p50(results: list[Any]) -> list[float]:
        return [r.latency.p50_ms for r in results]

    p = {"alone before": p50([benchmark([runner], settings)[0] for runner in runners])}
    console.print("alone: done; round robin …")
    p["round robin"] = p50(benchmark(runners, dataclasses.replace(settings, block_ms=0.0, settle_ms=0.0)))
    console.print("round robin: done; turns …")
    p["turns"] = p50(benchmark(runners, settings))
    p["alone after"] = p50([benchmark([runner], settings)[0] for runner in runners])
    p["alone"] = [(a + b) / 2 for a, b in zip(p["alone before"], p["alone after"], strict=True)]
    return p


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("model", "backend", *[f"{s} p50 ms" for s in COLUMNS], "round robin ÷ alone", "turns ÷ alone"):
        table.add_column(column, justify="left" if column in ("model", "backend") else "right")
    for row in rows:
        p50 = row["p50_ms"]
        table.add_row(row["model"], row["backend"], *[f"{p50[s]:.2f}" for s in COLUMNS],
                      f"{row['round_robin_over_alone']:.2f}×", f"{row['turns_over_alone']:.2f}×")  # fmt: skip
    console.print(table)


def main() -> None:
    parser = latency_parser(__doc__, duration=10.0, duration_help="timed seconds of each schedule's run, at least",
                            out=Path("benchmarks/results/interleave"))  # fmt: skip
    parser.add_argument("--models", type=lambda s: s.split(","), default=MODELS.split(","))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    paths = export_all(args.models, args.size, args.out)
    pairs = [(ref, path, backend) for ref, path in zip(args.models, paths, strict=True) for backend in BACKENDS]
    runners = [load(path, backend=backend, threads=args.threads) for _, path, backend in pairs]
    settings = dataclasses.replace(bench_settings(args), placement=False, power=False)
    p50 = measure(runners, settings)
    rows = []
    for i, (ref, _, backend) in enumerate(pairs):
        times = {s: p50[s][i] for s in (*COLUMNS, "alone")}
        rows.append({"model": ref, "backend": backend, "p50_ms": times,
                     "round_robin_over_alone": times["round robin"] / times["alone"],
                     "turns_over_alone": times["turns"] / times["alone"]})  # fmt: skip
    host = benchmark(runners[:1], dataclasses.replace(settings, iterations=1, duration_s=0))[0].host
    title = (f"interleaving: {args.size}×{args.size}, batch 1, {args.threads} threads, {host.get('cpu')} "
             f"({host.get('isa')})")  # fmt: skip
    print_table(rows, title)
    write_record("interleave", args, started, host, settings=dataclasses.asdict(settings), rows=rows)


if __name__ == "__main__":
    main()
