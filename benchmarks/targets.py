"""Deployment targets benchmark: every format that runs here, for the teacher and the student, in one run.

For ``resnet9:ngf=64`` (the pix2pix/CycleGAN teacher) and ``mobile-resnet:ngf=16`` (OMGD's student) at
256×256, it exports onnx fp32/fp16/int8, ort fp32, openvino fp32/fp16/int8 and the phone formats:
executorch fp32/int8 (XNNPACK), ncnn fp32/fp16 and tflite fp32/fp16/int8 (LiteRT + XNNPACK), plus the
phone formats' fp32 *without* their graph rewrites (tflite keeps only the conv-transpose-crop it cannot
convert without), each checked against PyTorch by ``export_model``. It then times all of them
*interleaved in one benchmark call* with the backend the formats table names, plus OpenVINO running the
fp32 ``model.onnx`` itself (the same file as onnxruntime). It reports size, parity (max abs, PSNR),
delegation coverage (ops inside XNNPACK / ncnn, as the runtime's own inspector counts them), p50/p90,
the host's ISA, and which backend is fastest for each model here and by how much. Weights are random
(latency does not depend on them; int8 quality on trained weights calibrated on the dataset is higher,
so the int8 PSNR gate is off here and the PSNR reported). Needs ``pocketgan[openvino,executorch,ncnn]``
and ``ai-edge-litert`` in this venv (``.[dev]``), and LiteRT's converter in ``--litert-python``'s venv
(``.ci/litert-venv``: litert-torch cannot share a venv with executorch); ``--no-litert`` leaves tflite out.

    python benchmarks/targets.py [--size 256] [--threads 2] [--iterations 20] [--duration 20]
                                 [--litert-python .venv-litert/bin/python] [--out benchmarks/results/targets]

Prints a table and writes ``<out>/targets.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.console import console
from pocketgan.core.coverage import coverage_of
from pocketgan.core.fsio import read_json
from pocketgan.core.hostinfo import host_isa
from pocketgan.export.api import export_model
from pocketgan.export.formats import format_spec
from pocketgan.export.job import ExportOptions
from pocketgan.models import load_model
from pocketgan.runtime import benchmark, load
from latency_args import bench_settings, latency_parser, write_record  # benchmarks/latency_args.py (beside this script)

MODELS = [("teacher resnet9 ngf64", "resnet9:ngf=64"), ("student mobile-resnet ngf16", "mobile-resnet:ngf=16")]
#: (format, precision, rewrites) in the table's order; rewrites None: the format's default set.
TARGETS = [("onnx", "fp32", None), ("onnx", "fp16", None), ("onnx", "int8", None), ("ort", "fp32", None),
           ("openvino", "fp32", None), ("openvino", "fp16", None), ("openvino", "int8", None),
           ("executorch", "fp32", "none"), ("executorch", "fp32", None), ("executorch", "int8", None),
           ("ncnn", "fp32", None), ("ncnn", "fp16", None),
           ("tflite", "fp32", "conv-transpose-crop"), ("tflite", "fp32", None), ("tflite", "fp16", None),
           ("tflite", "int8", None)]  # fmt: skip
#: Formats exported by the LiteRT venv's ``pocketgan`` (its converter cannot live in this venv).
LITERT_FORMATS = ("tflite",)


def export_all(name: str, ref: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Export ``ref`` in every target; one row per artifact (plus OpenVINO on the fp32 ONNX file)."""
    torch.manual_seed(0)
    loaded = load_model(ref)
    rows = []
    for fmt, precision, rewrites in TARGETS:
        if fmt in LITERT_FORMATS and args.no_litert:
            continue
        label = f"{fmt}-{precision}" + (f"-rewrites-{rewrites}" if rewrites else "")
        out = args.out / "models" / name.split()[0] / label  # git-ignored
        int8 = {"calibration_samples": args.calibration_samples, "min_psnr_db": 0.0} if precision == "int8" else {}
        options = ExportOptions(size=(args.size, args.size), precision=precision, samples=args.samples, **int8,
                                format_options={"rewrites": rewrites} if rewrites else {})  # fmt: skip
        console.print(f"{name}: exporting {label} …")
        if fmt in LITERT_FORMATS:
            sidecar_path = export_in_litert_venv(loaded, out, options, args)
            sidecar = read_json(sidecar_path)
            file, parity, extra = sidecar["file"], sidecar["parity"], sidecar.get("extra", {})
        else:
            manifest = export_model(loaded, fmt, out, options)
            file, parity, extra = manifest.file, manifest.parity.to_dict(), manifest.extra
        rows.append(_row(name, fmt, precision, rewrites, out / file, parity, extra))
    fp32 = rows[0]
    rows.append({**fp32, "format": "onnx (OpenVINO runs the .onnx)", "backend": "openvino"})
    return rows


def _row(name: str, fmt: str, precision: str, rewrites: str | None, artifact: Path, parity: dict[str, Any],
         extra: dict[str, Any]) -> dict[str, Any]:
    spec = format_spec(fmt)
    files = [artifact, *(artifact.with_name(c) for c in spec.companions)]
    coverage = coverage_of(extra)
    return {
        "model": name, "format": fmt if rewrites is None else f"{fmt} (rewrites: {rewrites})", "precision": precision,
        "backend": spec.backend, "artifact": str(artifact), "size_mb": sum(f.stat().st_size for f in files) / 1e6,
        "parity_max_abs": parity["max_abs"], "parity_psnr_db": parity["psnr_db"],
        "rewrites": extra.get("rewrites", {}), "coverage": coverage.to_dict() if coverage else None,
        "coverage_short": coverage.short() if coverage else "",
    }  # fmt: skip


def export_in_litert_venv(loaded: Any, out: Path, options: ExportOptions, args: argparse.Namespace) -> Path:
    """Export ``loaded`` to tflite with the LiteRT venv's ``pocketgan export`` (same weights: a model directory)."""
    from pocketgan.models import save_model

    model_dir = out.parent / "model-dir"
    if not (model_dir / "model.json").is_file():
        save_model(loaded, model_dir)
    command = [str(args.litert_python), "-m", "pocketgan.cli", "export", str(model_dir), "--format", "tflite",
               "-p", options.precision, "--size", str(args.size), "-o", str(out), "--samples", str(options.samples),
               "--calibration-samples", str(options.calibration_samples)]  # fmt: skip
    if options.precision == "int8":
        command += ["--min-psnr", "0"]
    command += [f"--option=rewrites={value}" for value in options.format_options.values()]
    subprocess.run(command, check=True, stdout=sys.stderr)
    return next(out.glob("*.tflite.json"))


def main() -> None:
    parser = latency_parser(__doc__, duration=20.0, duration_help="timed seconds of the whole run, at least",
                            out=Path("benchmarks/results/targets"))  # fmt: skip
    parser.add_argument("--samples", type=int, default=2, help="parity inputs per export")
    parser.add_argument("--calibration-samples", type=int, default=8)
    parser.add_argument("--litert-python", type=Path, default=Path(".venv-litert/bin/python"),
                        help="a python whose venv has pocketgan[litert] (made by .ci/litert-venv)")
    parser.add_argument("--no-litert", action="store_true", help="leave the tflite rows out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = [row for name, ref in MODELS for row in export_all(name, ref, args)]
    runners = [load(row["artifact"], backend=row["backend"], threads=args.threads) for row in rows]
    settings = bench_settings(args)
    console.print(f"benchmarking {len(runners)} artifacts interleaved …")
    results = benchmark(runners, settings)
    for row, result in zip(rows, results, strict=True):
        row.update(p50_ms=result.latency.p50_ms, p90_ms=result.latency.p90_ms, cv=result.latency.cv,
                   providers=result.providers)  # fmt: skip
    print_table(rows, args)
    for line in fastest(rows):
        console.print(line)
    write_record("targets", args, started, {**results[0].host, "isa": host_isa().label}, artifacts=rows,
                 fastest=fastest(rows), raw=[r.to_dict() for r in results])  # fmt: skip


def fastest(rows: list[dict[str, Any]]) -> list[str]:
    """Per model: the fastest fp32 backend on the same ONNX file, and the fastest artifact overall."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        ort, ov = mine[0], mine[-1]  # the fp32 model.onnx on onnxruntime and on OpenVINO
        quicker, slower = sorted((ort, ov), key=lambda r: r["p50_ms"])
        best = min(mine, key=lambda r: r["p50_ms"])
        lines.append(
            f"{model}: on the same fp32 model.onnx {quicker['backend']} is {slower['p50_ms'] / quicker['p50_ms']:.2f}x "
            f"faster than {slower['backend']} (p50 {quicker['p50_ms']:.1f} vs {slower['p50_ms']:.1f} ms); fastest "
            f"artifact: {best['format']} {best['precision']} on {best['backend']} (p50 {best['p50_ms']:.1f} ms)"
        )
    return lines


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.table import Table

    title = f"targets: {args.size}×{args.size}, batch 1, {args.threads} threads, host {host_isa().label}"
    table = Table(title=title)
    columns = ("model", "format", "precision", "backend", "size MB", "max |Δ|", "PSNR dB", "delegated", "p50 ms",
               "p90 ms")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "format", "backend", "delegated") else "right")
    for r in rows:
        table.add_row(r["model"], r["format"], r["precision"], r["backend"], f"{r['size_mb']:.2f}",
                      f"{r['parity_max_abs']:.1e}", f"{r['parity_psnr_db']:.1f}", r["coverage_short"],
                      f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
