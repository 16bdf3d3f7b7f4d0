"""`pocketgan bench` and `pocketgan-bench`: statistics, JSON, interleaving, backends, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressEvent
from pocketgan.runtime.bench import BenchResult, BenchSettings, benchmark
from pocketgan.runtime.stats import LatencyStats

from conftest import FAST, SIZE

PROGRAMS = ("pocketgan", "pocketgan-bench")
TABLE_ROWS = ("min", "mean", "p50", "p90", "p95", "p99", "max")


def table_cell(out: str, row: str) -> str:
    """The first value cell of a row of the printed results table (``│ p50 ms │ 0.240 │``)."""
    line = next(line for line in out.splitlines() if re.match(rf"^│ {re.escape(row)}\s+│", line))
    return line.split("│")[2].strip()


def test_latency_statistics_of_a_known_sample():
    stats = LatencyStats.from_samples([7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0])  # 1..10, unsorted
    assert (stats.count, stats.min_ms, stats.max_ms, stats.mean_ms) == (10, 1.0, 10.0, 5.5)
    # Linear interpolation between order statistics: p = x[k] + f (x[k+1] - x[k]) at rank p/100 * (n - 1).
    assert (stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms) == pytest.approx((5.5, 9.1, 9.55, 9.91))
    assert stats.std_ms == pytest.approx(3.0276504)  # sample std of 1..10: sqrt(110/12)
    assert stats.cv == pytest.approx(0.5504819) and stats.noisy
    assert stats.throughput(4) == pytest.approx(727.2727)  # 4 images per 5.5 ms


def test_latency_statistics_edge_cases():
    steady = LatencyStats.from_samples([2.0, 2.0, 2.0, 2.0])
    assert (steady.std_ms, steady.cv, steady.noisy, steady.p99_ms) == (0.0, 0.0, False, 2.0)
    single = LatencyStats.from_samples([4.0])
    assert (single.count, single.std_ms, single.p50_ms, single.throughput(1)) == (1, 0.0, 4.0, 250.0)
    assert not LatencyStats.from_samples([10.0, 11.0]).noisy  # CV 0.707 / 10.5 = 6.7%: under the 10% flag
    with pytest.raises(PocketganError, match="no timed samples"):
        LatencyStats.from_samples([])


def test_the_json_record_of_a_known_result():
    latency = LatencyStats.from_samples([2.0, 4.0, 6.0])
    result = BenchResult(
        artifact="a.onnx", backend="ort", providers=["CPUExecutionProvider"], input_shape=[3, 3, 32, 32], batch=3,
        threads=2, warmup_iterations=5, warmup_ms=100.0, elapsed_s=0.012, latency=latency,
        samples_ms=[2.0, 4.0, 6.0], peak_rss_mb=80.0,
    )  # fmt: skip
    record = result.to_dict()
    assert record["throughput_ips"] == pytest.approx(750.0)  # a batch of 3 every 4 ms
    assert record["iterations"] == 3 and record["latency_ms"]["p50_ms"] == 4.0 and record["latency_ms"]["max_ms"] == 6.0
    assert record["latency_ms"]["std_ms"] == 2.0 and record["samples_ms"] == [2.0, 4.0, 6.0]


def test_the_engine_reports_warm_up_then_timing_in_percent(artifacts):
    from pocketgan import runtime

    events: list[ProgressEvent] = []
    (result,) = benchmark([runtime.load(artifacts.static, threads=1)],
                          BenchSettings(warmup_ms=0, iterations=4, duration_s=0, block_ms=0),
                          progress=events.append)  # fmt: skip  (block_ms=0: one iteration per turn)
    finished = ["warm-up (1 artifact)", "timing 1 artifact", "placement (1 artifact)"]
    assert [e.task for e in events if e.finished] == finished
    timing = [e for e in events if e.task == "timing 1 artifact"]
    assert [e.completed for e in timing] == [0.0, 25.0, 50.0, 75.0, 100.0, 100.0] and timing[0].total == 100.0
    assert [e.status for e in timing[1:-1]] == ["1 round", "2 rounds", "3 rounds", "4 rounds"]
    assert result.latency.count == 4


@pytest.mark.parametrize("program", PROGRAMS)
def test_bench_reports_stats_raw_samples_and_the_host(bench, artifacts, program):
    run = bench(program, artifacts.static, *FAST)
    assert run.code == 0, run.err
    (result,) = run.results
    latency = result["latency_ms"]
    for row in TABLE_ROWS:  # the table prints the figures the JSON records
        assert table_cell(run.out, f"{row} ms") == f"{latency[f'{row}_ms']:.3f}"
    assert table_cell(run.out, "images/s") == f"{result['throughput_ips']:.1f}"
    assert len(result["samples_ms"]) == latency["count"] == result["iterations"] >= 5
    assert result["elapsed_s"] >= 0.2 and result["warmup_iterations"] >= 1 and result["warmup_ms"] == 50
    assert result["backend"] == "ort" and result["providers"] == ["CPUExecutionProvider"]
    assert result["input_shape"] == [1, 3, SIZE, SIZE] and result["threads"] == 1 and result["batch"] == 1
    assert result["peak_rss_mb"] > 10
    host = result["host"]
    assert host["cpu"] and host["cores"] >= 1 and host["os"] and host["python"]
    assert {"numpy", "onnxruntime"} <= set(host["versions"]) and "onnxruntime" in result["versions"]
    assert f"({host['isa']}, {host['cores']} cores)" in run.out  # the host line names the ISA
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # the features recorded are the CPU's own flags
        flags = set(next(line for line in cpuinfo.read_text().splitlines()
                         if line.startswith(("flags", "Features"))).split(":", 1)[1].split())  # fmt: skip
        assert set(host["cpu_features"]) <= flags
        assert ("avx512_vnni" in flags) == ("AVX-512 VNNI" in host["isa"])


def test_several_artifacts_run_interleaved_in_one_timed_phase(bench, artifacts, tmp_path):
    run = bench("pocketgan-bench", artifacts.static, artifacts.dynamic, "--size", SIZE, *FAST)
    assert run.code == 0, run.err
    first, second = run.results
    assert (first["artifact"], second["artifact"]) == (str(artifacts.static), str(artifacts.dynamic))
    assert first["iterations"] >= 5 and second["iterations"] >= 5  # FAST's --iterations, each
    assert first["elapsed_s"] == second["elapsed_s"]  # the same timed phase
    assert "speed vs first" in run.out and "1.00x" in run.out
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # atomic write: no temp files left


def test_dynamic_batch_and_size(bench, artifacts):
    run = bench("pocketgan-bench", artifacts.dynamic, "--batch", 3, "--size", "40x48", *FAST)
    assert run.code == 0, run.err
    (result,) = run.results
    assert result["input_shape"] == [3, 3, 40, 48] and result["batch"] == 3
    assert table_cell(run.out, "input") == "3x3x40x48"


def test_the_old_json_flag_still_writes_the_results(bench, artifacts, tmp_path):
    run = bench("pocketgan-bench", artifacts.static, *FAST, "--json", tmp_path / "old.json", json_out=False)
    assert run.code == 0, run.err
    assert (tmp_path / "old.json").is_file() and f"wrote {tmp_path / 'old.json'}" in run.out


def test_torch_backend_on_an_architecture_reference(bench):
    run = bench("pocketgan", "mobile-resnet:ngf=4", "--backend", "torch", "--size", SIZE, *FAST)
    assert run.code == 0, run.err
    (result,) = run.results
    assert result["backend"] == "torch" and result["providers"] == ["torch-eager:cpu"]
    assert result["input_shape"] == [1, 3, SIZE, SIZE] and result["threads"] == 1
    assert result["versions"]["torch"] == torch.__version__.split("+")[0]
    assert result["iterations"] >= 5


def test_torch_and_ort_compared_in_one_interleaved_run(bench, artifacts, tmp_path):
    from pocketgan.models import create_generator, save_model

    model_dir = tmp_path / "student"
    save_model(create_generator("mobile-resnet", ngf=4), model_dir)
    args = (model_dir, artifacts.dynamic, "--backend", "torch", "--backend", "ort", "--size", f"{SIZE}x{SIZE}")
    run = bench("pocketgan", *args, *FAST)
    assert run.code == 0, run.err
    assert [r["backend"] for r in run.results] == ["torch", "ort"]
    assert min(r["iterations"] for r in run.results) >= 5  # FAST's --iterations, each
    assert run.results[0]["elapsed_s"] == run.results[1]["elapsed_s"]  # one timed phase: interleaved


def test_torch_backend_through_the_runtime_registry():
    import pocketgan.torch_backend  # noqa: F401  (registers "torch")
    from pocketgan import runtime

    assert {"ort", "torch"} <= set(runtime.list_backends())
    runner = runtime.load("mobile-resnet:ngf=4", backend="torch")
    assert runner.input_shape == ["batch", 3, "height", "width"]
    out = runner.translate(torch.randint(0, 256, (SIZE, SIZE, 3), dtype=torch.uint8).numpy())
    assert out.shape == (SIZE, SIZE, 3) and str(out.dtype) == "uint8"
    with pytest.raises(PocketganError, match="no CUDA device"):
        runtime.load("mobile-resnet:ngf=4", backend="torch", providers=["cuda"])


def _corrupt(tmp_path, artifacts):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(artifacts.static.read_bytes()[:3000])
    return path


@pytest.mark.parametrize(
    "program, make_args, message",
    [
        ("pocketgan-bench", lambda tmp, a: [tmp / "missing.onnx"], "no such ONNX file"),
        ("pocketgan", lambda tmp, a: [_corrupt(tmp, a)], "cannot load ONNX model"),
        ("pocketgan-bench", lambda tmp, a: [a.dynamic], "dynamic input size .* pass --size H or --size HxW"),
        ("pocketgan-bench", lambda tmp, a: [a.static, "--size", 64], "fixed 32x32 input; --size 64x64 does not fit"),
        ("pocketgan-bench", lambda tmp, a: [a.dynamic, "--size", "32 32"], "--size takes H or HxW"),
        ("pocketgan", lambda tmp, a: [a.static, "--batch", 2], "fixed batch of 1"),
        ("pocketgan", lambda tmp, a: [a.dynamic, "--size", 30], "multiples of 4"),
        ("pocketgan", lambda tmp, a: [a.static, "--backend", "snpe"], "unknown backend 'snpe'"),
        (
            "pocketgan-bench",
            lambda tmp, a: [a.static, "--backend", "torch"],
            r"unknown backend 'torch'; choose from (\w+, )*ort, (\w+, )*auto$",
        ),
        (
            "pocketgan",
            lambda tmp, a: [a.static, a.static, a.static, "--backend", "ort", "--backend", "ort"],
            "once per artifact",
        ),  # fmt: skip
        ("pocketgan", lambda tmp, a: [a.static, "--backend", "torch"], "torch backend takes a model directory"),
        ("pocketgan", lambda tmp, a: ["resnet7:ngf=4", "--backend", "torch", "--size", 32], "resnet7"),
        ("pocketgan-bench", lambda tmp, a: [a.static, "-o", tmp], "-o/--out .* is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bench, artifacts, tmp_path, program, make_args, message):
    args = make_args(tmp_path, artifacts)
    run = bench(program, *args, *FAST, json_out="-o" not in args)  # else: no JSON may appear
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in run.err + run.out and run.results is None


def test_missing_sidecar_warns_on_stderr_and_in_json(bench, artifacts):
    run = bench("pocketgan-bench", artifacts.bare, *FAST)
    assert run.code == 0, run.err
    assert "warning:" in run.err and "no sidecar" in run.err
    assert run.results[0]["warnings"] and "no sidecar" in run.results[0]["warnings"][0]
