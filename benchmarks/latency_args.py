"""The command line the latency benchmarks share (``deploy.py``, ``targets.py``): size, threads, timing, output."""

from __future__ import annotations

import argparse
from pathlib import Path

from pocketgan.runtime.bench import BenchSettings


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
