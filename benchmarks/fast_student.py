"""fast-resnet ablation: from ``mobile-resnet:ngf=16`` to ``fast-resnet``, one design change at a time.

For every step (:data:`STEPS`) it reports fvcore MACs and params at 1×3×SIZE×SIZE, whether the exported
ONNX graph still holds a BatchNormalization / InstanceNormalization / ConvTranspose / Pad node, and
latency p50 on onnxruntime and on OpenVINO (running the same ``model.onnx``), every artifact timed
interleaved in one ``pocketgan.runtime.benchmark`` call (batch 1, ``--threads`` threads). Weights are
random: latency and MACs don't depend on them. The teacher ``resnet9:ngf=64`` is in the same run, for
the real speedup ÷ MAC reduction column.

``--quality LABEL,...`` also distills the named steps with OMGD on the built-in recipe's task and
budget (the default students' settings: 1000 steps, lr 1e-3, ``DEFAULT_OMGD``) through the pipeline
(cached: a student distilled once is reused), plus ``unet64:ngf=24,upsample=resize,block=separable``
(the recipe's own student), and adds PSNR/SSIM to the ground truth, PSNR to the teacher and FID/KID.

    python benchmarks/fast_student.py [--size 256] [--threads 2] [--duration 20]
                                      [--quality mobile-resnet,fast-resnet] [--out benchmarks/results/fast_student]

Prints a table and writes ``<out>/fast_student.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.console import console, format_count
from pocketgan.export.api import export_model
from pocketgan.export.job import ExportOptions
from pocketgan.models import load_model
from pocketgan.models.profile import profile_model
from pocketgan.runtime import benchmark, load
from latency_args import MAC_COUNTER, bench_settings, latency_parser, write_record  # benchmarks/latency_args.py (beside this script)

TEACHER = ("teacher", "resnet9:ngf=64", "the pix2pix teacher (speedup ÷ MAC reduction against it)")
MOBILE = "fast-resnet:stem=conv,upsample=deconv,norm=instance,block=separable,n_blocks=9"
#: (label, architecture, the change from the step before).
STEPS: list[tuple[str, str, str]] = [
    ("mobile-resnet", "mobile-resnet:ngf=16", "OMGD's student: reflect pads, IN, 7×7 ends, deconv, separable"),
    ("zero-pad", MOBILE, "zero padding inside the convs (no Pad nodes)"),
    ("bn", MOBILE.replace("norm=instance", "norm=batch"), "BatchNorm, folded into the convs at export"),
    ("s2d", "fast-resnet:upsample=deconv", "space-to-depth stem (PixelUnshuffle 4 + 3×3 conv to the trunk)"),
    ("fast-resnet", "fast-resnet", "sub-pixel upsampling (conv + PixelShuffle) head: the default"),
    ("instance", "fast-resnet:norm=instance", "the default with InstanceNorm back (what folding BN buys at the end)"),
    ("no-norm", "fast-resnet:norm=none", "the default without any norm"),
    ("dense-2", "fast-resnet:block=dense,n_blocks=2", "2 dense blocks instead of 9 separable ones (same trunk width)"),
    ("dense-ngf12", "fast-resnet:block=dense,ngf=12,n_blocks=4", "4 dense blocks 48 wide"),
]
RECIPE_STUDENT = ("unet64-sep24", "unet64:ngf=24,upsample=resize,block=separable", "the built-in recipe's student")
NODE_KINDS = ("BatchNormalization", "InstanceNormalization", "ConvTranspose", "Pad")


def prepare(label: str, ref: str, size: int, out: Path) -> dict[str, Any]:
    """Profile ``ref`` and export it to ONNX (random weights, parity-checked); count the node kinds left."""
    import onnx

    torch.manual_seed(0)
    loaded = load_model(ref)
    report = profile_model(loaded.model, (1, 3, size, size))
    sidecar = export_model(loaded, "onnx", out / "onnx" / label, ExportOptions(size=(size, size), samples=2))
    path = out / "onnx" / label / sidecar.file
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    return {
        "label": label, "reference": ref, "onnx": str(path), "macs": report.macs, "params": report.params,
        "parity_max_abs": sidecar.parity.max_abs, "nodes": len(ops),
        "node_kinds": {kind: ops.count(kind) for kind in NODE_KINDS},
    }  # fmt: skip


def measure_latency(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """ORT and OpenVINO (on the same .onnx) for every row, interleaved in one call; returns host info."""
    runners = [load(row["onnx"], backend=backend, threads=args.threads) for row in rows for backend in args.backends]
    console.print(f"benchmarking {len(runners)} artifacts interleaved …")
    results = iter(benchmark(runners, bench_settings(args)))
    first = None
    for row in rows:
        for backend in args.backends:
            result = next(results)
            first = first or result
            row[backend] = {"p50_ms": result.latency.p50_ms, "p90_ms": result.latency.p90_ms,
                            "cv": result.latency.cv, "providers": result.providers}  # fmt: skip
    return {**first.host, **first.versions, "machine": platform.machine()}


def add_ratios(rows: list[dict[str, Any]], backends: list[str]) -> None:
    """MAC reduction, real speedup and their ratio against the teacher (row 0), and speedup vs mobile-resnet."""
    teacher, mobile = rows[0], rows[1]
    for row in rows[1:]:
        row["mac_reduction"] = teacher["macs"] / row["macs"]
        for backend in backends:
            speedup = teacher[backend]["p50_ms"] / row[backend]["p50_ms"]
            row[backend]["speedup_vs_teacher"] = speedup
            row[backend]["speedup_over_mac_reduction"] = speedup / row["mac_reduction"]
            row[backend]["speedup_vs_mobile_resnet"] = mobile[backend]["p50_ms"] / row[backend]["p50_ms"]


def omgd_student(label: str, ref: str) -> dict[str, Any]:
    """The built-in recipe's OMGD student entry (its steps, lr and options) into ``ref``."""
    from pocketgan.config import DEFAULT_OMGD, default_students

    entry = default_students()[0]
    return {"name": f"omgd-{label}", "method": "omgd", "student": ref, "steps": entry.steps, "batch": entry.batch,
            "lr": entry.lr, "options": dict(DEFAULT_OMGD)}  # fmt: skip


def measure_quality(labels: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Distill the named steps (and the recipe's student) with OMGD on the built-in task; their eval rows."""
    from pocketgan.config import load_config
    from pocketgan.pipeline import run_pipeline

    known = {label: ref for label, ref, _ in [*STEPS, RECIPE_STUDENT]}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise SystemExit(f"--quality: unknown step {unknown[0]} (choose from {', '.join(known)})")
    students = [omgd_student(label, known[label]) for label in dict.fromkeys([*labels, RECIPE_STUDENT[0]])]
    overrides = [f"students={json.dumps(students)}", f"bench.threads={args.threads}"]
    run_dir = args.out / "run"
    started = time.perf_counter()
    run_pipeline(load_config("default", overrides), run_dir, recipe_path="default", overrides=overrides)
    console.print(f"pipeline: {time.perf_counter() - started:.0f} s")
    models = json.loads((run_dir / "results.json").read_text())["models"]
    return {row["model"].removeprefix("omgd-"): row for row in models}


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, quality: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=f"fast-resnet ablation: {args.size}×{args.size}, batch 1, {args.threads} threads")
    columns = ["step", "MACs", "params", "BN/IN/deconv/pad nodes",
               *[f"{b} p50 ms" for b in args.backends], *[f"{b} ×mobile" for b in args.backends],
               *[f"{b} speedup÷MACred" for b in args.backends], "PSNR GT", "PSNR teacher", "FID"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in rows:
        q = quality.get(row["label"], {})
        kinds = "/".join(str(row["node_kinds"][k]) for k in NODE_KINDS)
        table.add_row(
            row["label"], format_count(row["macs"]), format_count(row["params"]), kinds,
            *[f"{row[b]['p50_ms']:.2f}" for b in args.backends],
            *[f"{row[b].get('speedup_vs_mobile_resnet', 0):.2f}×" for b in args.backends],
            *[f"{row[b].get('speedup_over_mac_reduction', 0):.2f}" for b in args.backends],
            *[_number(q.get(key)) for key in ("psnr", "psnr_teacher", "fid")],
        )  # fmt: skip
    console.print(table)


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def main() -> None:
    parser = latency_parser(__doc__, duration=20.0, duration_help="timed seconds of the whole run, at least",
                            out=Path("benchmarks/results/fast_student"))  # fmt: skip
    parser.add_argument("--backends", type=lambda s: s.split(","), default=["ort", "openvino"])
    parser.add_argument("--steps", type=lambda s: s.split(","), default=None, help="only these ablation steps")
    parser.add_argument("--quality", type=lambda s: s.split(","), default=[],
                        help="steps to distill with OMGD on the built-in task (e.g. mobile-resnet,fast-resnet)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    steps = [s for s in [*STEPS, RECIPE_STUDENT] if args.steps is None or s[0] in args.steps or s[0] == "mobile-resnet"]
    rows = []
    for label, ref, change in [TEACHER, *steps]:
        console.print(f"{label}: profiling and exporting {ref} …")
        rows.append({**prepare(label, ref, args.size, args.out), "change": change})
    host = measure_latency(rows, args)
    add_ratios(rows, args.backends)
    quality = measure_quality(args.quality, args) if args.quality else {}
    print_table(rows, args, quality)
    write_record("fast_student", args, started, host, mac_counter=MAC_COUNTER, steps=rows, quality=quality)


if __name__ == "__main__":
    main()
