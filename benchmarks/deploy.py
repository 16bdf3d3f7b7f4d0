"""Deployment benchmark: teacher vs student vs pruned teachers, profiled, exported and timed in one run.

For ``resnet9:ngf=64`` (the pix2pix/CycleGAN teacher), ``mobile-resnet:ngf=16`` (OMGD's student)
and ``resnet9:ngf=64`` pruned to 90% and 97.5% fewer MACs (torch-pruning, L1), it reports fvcore
MACs, params, ONNX parity against PyTorch, and latency at 256×256 batch 1 of ONNX Runtime beside
PyTorch eager, all eight measured interleaved in one benchmark call so their ratios are fair.
Weights are random (latency and MACs don't depend on them).

    python benchmarks/deploy.py [--size 256] [--threads 2] [--iterations 20] [--duration 10]
                                [--out benchmarks/results/deploy]

Prints a table and writes ``<out>/deploy.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.console import console, format_count
from pocketgan.export.api import export_model
from pocketgan.export.job import ExportOptions
from pocketgan.models import load_model, save_model
from pocketgan.models.profile import profile_model
from pocketgan.models.prune import prune_model
from pocketgan.runtime import benchmark, load
from latency_args import MAC_COUNTER, bench_settings, latency_parser, write_record  # benchmarks/latency_args.py (beside this script)

MODELS: list[tuple[str, str, float | None]] = [
    ("teacher resnet9 ngf64", "resnet9:ngf=64", None),
    ("mobile-resnet ngf16", "mobile-resnet:ngf=16", None),
    ("resnet9 pruned -90%", "resnet9:ngf=64", 0.90),
    ("resnet9 pruned -97.5%", "resnet9:ngf=64", 0.975),
]


def prepare(name: str, ref: str, target_rate: float | None, size: int, out: Path) -> dict[str, Any]:
    """Build (and prune) the model, save its model directory, profile it and export ONNX with parity."""
    torch.manual_seed(0)
    model_dir = out / "models" / name.replace(" ", "_")
    model = load_model(ref).model
    provenance: dict[str, Any] = {"source": ref}
    if target_rate is not None:
        result = prune_model(model, target_rate=target_rate, input_size=(size, size))
        model, provenance = result.model, result.provenance()
    report = profile_model(model, (1, 3, size, size))
    save_model(model, model_dir, provenance=provenance, profile=report.to_profile())
    sidecar = export_model(load_model(model_dir), "onnx", out / "onnx" / model_dir.name, ExportOptions(size=(size, size)))
    parity = sidecar.parity
    return {
        "name": name,
        "reference": ref,
        "target_rate": target_rate,
        "model_dir": str(model_dir),
        "onnx": str(out / "onnx" / model_dir.name / sidecar.file),
        "macs": report.macs,
        "params": report.params,
        "parity_max_abs": parity.max_abs if parity else None,
        "parity_psnr_db": parity.psnr_db if parity else None,
    }


def main() -> None:
    parser = latency_parser(__doc__, duration=10.0, duration_help="timed seconds per model, at least",
                            out=Path("benchmarks/results/deploy"))  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    rows = []
    for name, ref, rate in MODELS:
        console.print(f"preparing {name} …")
        rows.append(prepare(name, ref, rate, args.size, args.out))
    teacher_macs = rows[0]["macs"]
    for row in rows:
        row["compression"] = 1 - row["macs"] / teacher_macs

    import pocketgan.torch_backend  # noqa: F401  (registers the torch backend)

    runners = []
    for row in rows:
        runners.append(load(row["onnx"], backend="ort", threads=args.threads))
        runners.append(load(row["model_dir"], backend="torch", threads=args.threads))
    settings = bench_settings(args)
    console.print(f"benchmarking {len(runners)} runners interleaved …")
    results = benchmark(runners, settings)
    for i, row in enumerate(rows):
        for backend, result in (("ort", results[2 * i]), ("torch", results[2 * i + 1])):
            stats = result.latency
            row[backend] = {"p50_ms": stats.p50_ms, "p90_ms": stats.p90_ms, "mean_ms": stats.mean_ms,
                            "cv": stats.cv, "fps": result.throughput, "providers": result.providers}  # fmt: skip

    print_table(rows, args)
    write_record("deploy", args, started, {**results[0].host, **results[0].versions, "machine": platform.machine()},
                 mac_counter=MAC_COUNTER, models=rows, raw=[r.to_dict() for r in results])  # fmt: skip


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table(title=f"deploy benchmark: {args.size}×{args.size}, batch 1, {args.threads} threads")
    for column in ("model", "MACs (fvcore)", "params", "MAC reduction", "ONNX parity max|Δ|",
                   "ORT p50 ms", "torch p50 ms", "ORT speed-up vs torch", "ORT FPS"):  # fmt: skip
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            row["name"],
            format_count(row["macs"]),
            format_count(row["params"]),
            f"{row['compression'] * 100:.2f}%",
            f"{row['parity_max_abs']:.1e}",
            f"{row['ort']['p50_ms']:.1f}",
            f"{row['torch']['p50_ms']:.1f}",
            f"{row['torch']['p50_ms'] / row['ort']['p50_ms']:.2f}×",
            f"{row['ort']['fps']:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
