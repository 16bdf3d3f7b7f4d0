"""Browser demo benchmark: `pocketgan web` sites in headless Chromium (onnxruntime-web), beside native onnxruntime.

For each model (random weights, seed 0: latency does not depend on them) it exports ONNX at its size, builds
the site (pinned onnxruntime-web from the cache), opens it in headless Chromium (``--disable-gpu``: WebGPU has
no adapter, so the page runs on wasm; the backend that ran is recorded) with a fake 30 fps camera, and reports
the page's live camera FPS and inference p50/p90 over ``--seconds``, then ``--runs`` back-to-back inferences
(the model-bound FPS, not capped by the camera), beside native onnxruntime on the same file at the same threads.

    python benchmarks/web.py [--models mobile-resnet:ngf=4@64,mobile-resnet:ngf=16@256] [--seconds 5]
                             [--runs 30] [--out benchmarks/results/web] [--screenshot docs/web-demo.png]

Prints one line per model and writes ``<out>/web.json``; ``--screenshot`` saves the page (camera, output, FPS,
model card) of the last model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pocketgan.core.fsio import write_json_atomic
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import load_model
from pocketgan.runtime import BenchSettings, benchmark, host_info, load
from pocketgan.runtime.web import ORT_WEB_VERSION, build_site
from pocketgan.runtime.web.browser import headless_page, write_y4m

DEFAULT_MODELS = "mobile-resnet:ngf=4@64,mobile-resnet:ngf=16@256"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="MODEL@SIZE, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="camera seconds per model")
    parser.add_argument("--runs", type=int, default=30, help="back-to-back inferences per model")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/web"))
    parser.add_argument("--screenshot", type=Path, default=None)
    return parser.parse_args()


def prepare(ref: str, size: int, out: Path) -> Path:
    """Export ``ref`` (seed 0) at ``size`` and build its site; the site folder."""
    torch.manual_seed(0)
    name = f"{Path(ref).name.replace(':', '_').replace('=', '')}_{size}"  # a model directory: its folder name
    export_model(load_model(ref), "onnx", out / "onnx" / name, ExportOptions(size=(size, size)))
    return build_site(out / "onnx" / name / "model.onnx", out / "sites" / name).out


def measure_page(page: Any, seconds: float, runs: int) -> dict[str, Any]:
    """Live camera stats after ``seconds``, then ``runs`` back-to-back inferences."""
    backend = page.evaluate("window.pocketgan.ready")
    page.evaluate("window.pocketgan.startCamera('user')")
    page.wait_for_function("window.pocketgan.stats().frames >= 3", timeout=120_000)
    time.sleep(seconds)
    camera = page.evaluate("window.pocketgan.stats()")
    page.evaluate("window.pocketgan.stop()")
    ms = page.evaluate(f"window.pocketgan.benchmark({int(runs)})")["ms"]
    p50 = statistics.median(ms)
    return {"backend": backend, "threads": camera["threads"], "cross_origin_isolated": camera["isolated"],
            "camera": camera, "back_to_back_ms": ms, "back_to_back_p50_ms": p50,
            "model_bound_fps": 1000.0 / p50}  # fmt: skip


def native_p50(site: Path, threads: int) -> float:
    """Native onnxruntime p50 (ms) on the site's model at ``threads`` threads."""
    runner = load(site / "model.onnx", threads=threads)
    settings = BenchSettings(warmup_ms=500, iterations=20, duration_s=3, placement=False, power=False)
    return benchmark([runner], settings)[0].latency.p50_ms


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="pocketgan-web-bench-") as scratch:  # exports and sites: ~30 MB each
        records = run_models(args, Path(scratch))
    write_json_atomic(args.out / "web.json", {"onnxruntime_web": ORT_WEB_VERSION, "host": host_info(),
                                              "models": records})  # fmt: skip
    print(f"wrote {args.out / 'web.json'}")


def run_models(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Export, build, open and measure every model of ``--models``; one record each."""
    video = write_y4m(work / "camera.y4m", width=320, height=240, frames=60)
    records = []
    models = [item.rsplit("@", 1) for item in args.models.split(",")]
    for index, (ref, size) in enumerate(models):
        site = prepare(ref, int(size), work)
        with headless_page(site, camera=video, viewport=(1000, 940)) as page:
            record = {"model": ref, "size": int(size), **measure_page(page, args.seconds, args.runs)}
            if args.screenshot and index == len(models) - 1:
                page.evaluate("window.pocketgan.startCamera('user')")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(args.screenshot), full_page=True)
        record["native_ort_p50_ms"] = native_p50(site, record["threads"])
        records.append(record)
        camera = record["camera"]
        print(f"{ref} @ {size}: {record['backend']} ({record['threads']} threads), camera {camera['fps']:.1f} FPS, "
              f"inference p50 {camera['inference']['p50']:.1f} ms / p90 {camera['inference']['p90']:.1f} ms; "
              f"back-to-back p50 {record['back_to_back_p50_ms']:.1f} ms ({record['model_bound_fps']:.1f} FPS); "
              f"native onnxruntime p50 {record['native_ort_p50_ms']:.1f} ms")  # fmt: skip
    return records


if __name__ == "__main__":
    main()
