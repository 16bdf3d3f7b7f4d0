"""Speed benchmark: teacher, OMGD's student and fast-resnet, fp32 and int8, on every installed backend, in one run.

For ``resnet9:ngf=64`` (the pix2pix teacher), ``mobile-resnet:ngf=16`` (OMGD's 40× student) and
``fast-resnet`` (the latency-designed student; left out with a note when it is not registered) it
exports every installed target that runs here (onnx → onnxruntime, openvino, executorch, tflite,
ncnn; fp32 and, where the format has it, int8), loads each artifact on every installed backend that
can run it (``pocketgan-bench --backend auto``), and times them all *interleaved in one benchmark
call* at 1×3×S×S. Each row carries **% of the compute limit** (:mod:`pocketgan.runtime.compute_limit`,
probed at the same thread count) and **speedup ÷ MAC reduction** against the teacher's fp32 artifact on
the same backend (:mod:`pocketgan.runtime.efficiency`).

Weights are random unless ``--model LABEL=DIR`` gives a model directory (latency does not depend on
the weights; int8 *quality* does). ``--data DIR`` calibrates int8 on real images (default: the model's
own dataset from its provenance, else synthetic) and reports every int8 artifact's PSNR against the
same model's fp32 ONNX output on those images (the export's own parity PSNR is on synthetic grids).

The host's ISA is named in the title and the JSON. ``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment makes
OpenVINO (oneDNN) use AVX2 kernels only, emulating a host without VNNI; onnxruntime's MLAS has no
such switch, so its rows stay those of this host (the JSON records ``emulated_isa``).

    python benchmarks/speed.py [--size 256] [--threads 2] [--iterations 20] [--duration 30]
        [--model LABEL=REF ...] [--only LABEL ...] [--formats onnx,openvino] [--data DIR]
        [--int8-range reduced|full] [--out benchmarks/results/speed]

Prints a table and writes ``<out>/speed.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.console import console
from pocketgan.core.errors import PocketganError
from pocketgan.core.hostinfo import host_isa
from pocketgan.export.api import export_model
from pocketgan.export.formats import FORMATS
from pocketgan.export.job import ExportOptions
from pocketgan.models import load_model
from pocketgan.models.registry import GENERATORS
from pocketgan.runtime import benchmark, load
from pocketgan.runtime.compute_limit import host_compute_limit
from pocketgan.runtime.efficiency import annotate
from pocketgan.runtime.registry import backends_for
from latency_args import bench_settings, latency_parser, write_record  # benchmarks/latency_args.py (beside this script)

TEACHER = "teacher"
MODELS = {TEACHER: "resnet9:ngf=64", "mobile-resnet ngf16": "mobile-resnet:ngf=16", "fast-resnet": "fast-resnet"}
CANDIDATE_FORMATS = ("onnx", "openvino", "executorch", "tflite", "ncnn")
PRECISIONS = ("fp32", "int8")
PSNR_IMAGES = 8


def parse_args() -> argparse.Namespace:
    parser = latency_parser(__doc__, duration=30.0, duration_help="timed seconds of the whole run, at least",
                            out=Path("benchmarks/results/speed"))  # fmt: skip
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=REF",
                        help="replace or add a model: a label and an architecture reference or model directory")
    parser.add_argument("--only", action="append", default=[], metavar="LABEL",
                        help="benchmark only these models (without the teacher there is no speedup column)")
    parser.add_argument("--formats", default=",".join(CANDIDATE_FORMATS), help="formats to try (installed ones run)")
    parser.add_argument("--data", type=Path, default=None, help="real images: int8 calibration and int8-vs-fp32 PSNR")
    parser.add_argument("--int8-range", default="reduced", choices=("reduced", "full"))
    parser.add_argument("--samples", type=int, default=2, help="parity inputs per export")
    parser.add_argument("--calibration-samples", type=int, default=16)
    return parser.parse_args()


def chosen_models(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """``{label: ref}`` to benchmark (the teacher first) and notes on what was left out."""
    models, notes = dict(MODELS), []
    for item in args.model:
        label, sep, ref = item.partition("=")
        if not sep:
            raise PocketganError(f"--model needs LABEL=REF, got {item!r}")
        models[label] = ref
    if "fast-resnet" not in GENERATORS.names() and models.get("fast-resnet") == "fast-resnet":
        del models["fast-resnet"]
        notes.append("fast-resnet is not registered in this checkout: left out")
    if args.only:
        models = {label: ref for label, ref in models.items() if label in args.only}  # no teacher: no speedup
    return models, notes


def installed_targets(formats: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(format, precision)`` pairs that can be built and run here, and why the others are left out."""
    targets, notes = [], []
    for fmt in [f.strip() for f in formats.split(",") if f.strip()]:
        spec = FORMATS.get(fmt)
        if spec is None:
            notes.append(f"{fmt}: no row in the formats table in this checkout")
            continue
        why = spec.build.unmet() or spec.cannot_run_here()
        if why:
            notes.append(f"{fmt}: {why}")
            continue
        targets += [(fmt, p) for p in PRECISIONS if p in spec.precisions]
        if "int8" not in spec.precisions:
            notes.append(f"{fmt}: no int8 export")
    return targets, notes


def export_rows(label: str, ref: str, targets: list[tuple[str, str]], args: argparse.Namespace,
                notes: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Export ``ref`` as every target (a failed export becomes a note); one row per artifact."""
    torch.manual_seed(0)
    loaded = load_model(ref)
    rows = []
    for fmt, precision in targets:
        out = args.out / "models" / label.replace(" ", "-") / f"{fmt}-{precision}"  # git-ignored
        options = ExportOptions(size=(args.size, args.size), precision=precision, samples=args.samples,
                                calibration=args.data if precision == "int8" else None,
                                calibration_samples=args.calibration_samples, int8_range=args.int8_range,
                                min_psnr_db=0.0 if precision == "int8" else None)  # fmt: skip
        console.print(f"{label}: exporting {fmt} {precision} …")
        try:
            sidecar = export_model(loaded, fmt, out, options)
        except Exception as exc:  # an exporter still being written, a converter that fails on this graph
            notes.append(f"{label} {fmt} {precision}: export failed ({str(exc).splitlines()[0][:160]})")
            continue
        rows.append({"model": label, "ref": ref, "format": fmt, "precision": precision,
                     "artifact": str(out / sidecar.file),
                     "parity_psnr_db": sidecar.parity.psnr_db if sidecar.parity else None,
                     "calibration": sidecar.extra.get("calibration")})  # fmt: skip
    return rows


def load_all(rows: list[dict[str, Any]], threads: int, notes: list[str]) -> tuple[list[dict[str, Any]], list[Any]]:
    """One (row, runner) per artifact × installed backend that can run it; a backend that fails is a note."""
    expanded, runners = [], []
    for row in rows:
        for backend in backends_for(row["artifact"]):
            try:
                runners.append(load(row["artifact"], backend=backend, threads=threads))
            except Exception as exc:
                notes.append(f"{row['model']} {row['format']} {row['precision']} on {backend}: "
                             f"{str(exc).splitlines()[0][:160]}")  # fmt: skip
                continue
            expanded.append({**row, "backend": backend})
    return expanded, runners


def int8_psnr(rows: list[dict[str, Any]], runners: list[Any], args: argparse.Namespace) -> None:
    """``psnr_vs_fp32_db`` of every int8 row: its output against the same model's fp32 ONNX on onnxruntime,
    on ``--data`` images (real), averaged over :data:`PSNR_IMAGES` images."""
    if args.data is None:
        return
    from pocketgan.export.samples import read_calibration_images

    by_key = {(r["model"], r["format"], r["precision"], r["backend"]): runner for r, runner in zip(rows, runners)}
    for row, runner in zip(rows, runners):
        reference = by_key.get((row["model"], "onnx", "fp32", "ort"))
        if row["precision"] != "int8" or reference is None:
            continue
        images = read_calibration_images(args.data, runner.io, (args.size, args.size), limit=PSNR_IMAGES).numpy()
        low, high = runner.io.value_range
        scores = [psnr(runner.run(x[None]), reference.run(x[None]), high - low) for x in images]
        row["psnr_vs_fp32_db"] = float(np.mean(scores))


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB of ``a`` against ``b`` for values spanning ``peak``."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def annotate_per_backend(rows: list[dict[str, Any]], results: list[Any], limit: Any) -> None:
    """Efficiency of every result against the teacher's fp32 artifact on the same backend (else the teacher's
    fastest fp32 one), then copied into the rows."""
    teacher = [(r, res) for r, res in zip(rows, results) if r["model"] == TEACHER and r["precision"] == "fp32"]
    for backend in dict.fromkeys(r["backend"] for r in rows):
        group = [res for r, res in zip(rows, results) if r["backend"] == backend]
        same = [res for r, res in teacher if r["backend"] == backend]
        base = same[0] if same else min((res for _, res in teacher), key=lambda res: res.latency.p50_ms, default=None)
        annotate(group + ([base] if base is not None and base not in group else []), limit,
                 base.artifact if base is not None else None)  # fmt: skip
    for row, result in zip(rows, results):
        row.update(macs=result.macs, p50_ms=result.latency.p50_ms, p90_ms=result.latency.p90_ms,
                   cv=result.latency.cv, providers=result.providers, **result.efficiency.to_dict())  # fmt: skip


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models, notes = chosen_models(args)
    targets, target_notes = installed_targets(args.formats)
    notes += target_notes
    rows = [row for label, ref in models.items() for row in export_rows(label, ref, targets, args, notes)]
    rows, runners = load_all(rows, args.threads, notes)
    int8_psnr(rows, runners, args)
    limit = host_compute_limit(args.threads, refresh=True)  # measured under the same load as the run
    console.print(f"benchmarking {len(runners)} artifact × backend pairs interleaved …")
    results = benchmark(runners, bench_settings(args))
    annotate_per_backend(rows, results, limit)
    print_table(rows, args, limit.to_dict())
    for line in [*fastest(rows), *notes]:
        console.print(line, soft_wrap=True, markup=False)
    write_record("speed", args, started, results[0].host, isa=host_isa().label,
                 emulated_isa=os.environ.get("ONEDNN_MAX_CPU_ISA"), compute_limit=limit.to_dict(), models=models,
                 rows=rows, fastest=fastest(rows), notes=notes, raw=[r.to_dict() for r in results])  # fmt: skip


def fastest(rows: list[dict[str, Any]]) -> list[str]:
    """Per model: its fastest artifact × backend, and whether int8 beats fp32 there."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["p50_ms"])
        best = mine[0]
        fp32 = next((r for r in mine if r["precision"] == "fp32"), None)
        int8 = next((r for r in mine if r["precision"] == "int8"), None)
        verdict = ""
        if fp32 and int8:
            verdict = (f"; fastest int8 ({int8['format']} on {int8['backend']}, {int8['p50_ms']:.1f} ms) is "
                       f"{fp32['p50_ms'] / int8['p50_ms']:.2f}x the fastest fp32 ({fp32['format']} on "
                       f"{fp32['backend']}, {fp32['p50_ms']:.1f} ms)")  # fmt: skip
        lines.append(f"{model}: fastest {best['format']} {best['precision']} on {best['backend']} "
                     f"(p50 {best['p50_ms']:.1f} ms){verdict}")  # fmt: skip
    return lines


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, limit: dict[str, Any]) -> None:
    from rich.table import Table

    emulated = os.environ.get("ONEDNN_MAX_CPU_ISA")
    isa = host_isa().label + (f", oneDNN limited to {emulated} (OpenVINO rows emulated)" if emulated else "")
    int8 = f", {limit['int8_gmacs']:.0f} int8" if limit.get("int8_gmacs") else ""
    table = Table(title=f"speed: {args.size}×{args.size}, batch 1, {args.threads} threads, {isa}; compute limit "
                        f"{limit['fp32_gmacs']:.0f} GMAC/s fp32{int8}")  # fmt: skip
    columns = ("model", "format", "prec.", "backend", "GMACs", "p50 ms", "p90 ms", "% limit", "speedup",
               "÷ MAC red.", "PSNR dB")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "format", "backend") else "right")
    cell = lambda value, fmt: "–" if value is None else format(value, fmt)  # noqa: E731
    for r in rows:
        quality = r.get("psnr_vs_fp32_db", r["parity_psnr_db"] if r["precision"] == "int8" else None)
        gmacs = r["macs"] / 1e9 if r["macs"] else None
        table.add_row(r["model"], r["format"], r["precision"], r["backend"], cell(gmacs, ".2f"), f"{r['p50_ms']:.1f}",
                      f"{r['p90_ms']:.1f}", cell(r["percent_of_limit"], ".1f"), cell(r["speedup"], ".1f"),
                      cell(r["speedup_per_mac_reduction"], ".2f"), cell(quality, ".1f"))  # fmt: skip
    console.print(table)
    console.print("PSNR: int8 against the same model's fp32 ONNX on --data images (real) when given, else the "
                  "export's parity PSNR on synthetic inputs; speedup and ÷ MAC red. against the teacher fp32 on the "
                  "same backend.", soft_wrap=True)  # fmt: skip


if __name__ == "__main__":
    main()
