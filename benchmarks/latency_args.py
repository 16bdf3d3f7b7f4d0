"""What the latency benchmarks share (``deploy.py``, ``targets.py``, ``speed.py``, …): the command line (size,
threads, timing, output) and the JSON record each one writes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pocketgan import __version__
from pocketgan.console import console
from pocketgan.core.fsio import write_json_atomic
from pocketgan.runtime.bench import BenchSettings

#: How the MAC columns count (fvcore's convention), for the records that carry MACs.
MAC_COUNTER = "fvcore (1 fused multiply-add = 1 MAC; ConvTranspose over input positions)"


def latency_parser(doc: str, *, duration: float, duration_help: str, out: Path) -> argparse.ArgumentParser:
    """A parser described by ``doc``'s first line with ``--size --threads --iterations --duration --warmup-ms
    --block-ms --settle-ms --out``; the script adds its own arguments."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--duration", type=float, default=duration, help=duration_help)
    parser.add_argument("--warmup-ms", type=float, default=1000.0)
    parser.add_argument("--block-ms", type=float, default=100.0, help="one artifact's turn of back-to-back iterations")
    parser.add_argument("--settle-ms", type=float, default=20.0, help="idle before each turn (threads stop spinning)")
    parser.add_argument("--out", type=Path, default=out)
    return parser


def bench_settings(args: argparse.Namespace) -> BenchSettings:
    """Batch 1 at ``--size`` square, with the parsed timing arguments."""
    return BenchSettings(batch=1, size=(args.size, args.size), warmup_ms=args.warmup_ms,
                         iterations=args.iterations, duration_s=args.duration, block_ms=args.block_ms,
                         settle_ms=args.settle_ms)  # fmt: skip


def write_record(name: str, args: argparse.Namespace, started: float, host: dict[str, Any], **fields: Any) -> Path:
    """Write ``<--out>/<name>.json``: the benchmark's name, pocketgan's version, the 1×3×S×S input, the thread
    count, the host, the seconds since ``started`` (a ``time.perf_counter()``), then ``fields``; print its path."""
    record = {
        "benchmark": name, "pocketgan_version": __version__, "input_shape": [1, 3, args.size, args.size],
        "threads": args.threads, "host": host, "seconds": round(time.perf_counter() - started, 1), **fields,
    }  # fmt: skip
    path = write_json_atomic(args.out / f"{name}.json", record)
    console.print(f"wrote {path}")
    return path
