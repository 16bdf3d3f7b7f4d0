"""`pocketgan bench` and `pocketgan-bench`: statistics, JSON, interleaving, backends, bad input."""

from __future__ import annotations

import re

import pytest
import torch

from pocketgan.core.errors import PocketganError

from conftest import FAST, SIZE

PROGRAMS = ("pocketgan", "pocketgan-bench")
LATENCY_ORDER = ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


@pytest.mark.parametrize("program", PROGRAMS)
def test_bench_reports_ordered_stats_and_raw_samples(bench, artifacts, program):
    run = bench(program, artifacts.static, *FAST)
    assert run.code == 0, run.err
    assert "p50 ms" in run.out and "images/s" in run.out and "host:" in run.out
    (result,) = run.results
    latency = result["latency_ms"]
    assert [latency[k] for k in LATENCY_ORDER] == sorted(latency[k] for k in LATENCY_ORDER)
    assert latency["min_ms"] <= latency["mean_ms"] <= latency["max_ms"] and latency["std_ms"] >= 0
    assert latency["cv"] == pytest.approx(latency["std_ms"] / latency["mean_ms"])
    assert len(result["samples_ms"]) == latency["count"] == result["iterations"] >= 5
    assert min(result["samples_ms"]) == latency["min_ms"] and max(result["samples_ms"]) == latency["max_ms"]
    assert result["elapsed_s"] >= 0.2 and result["warmup_iterations"] >= 1 and result["warmup_ms"] == 50
    assert result["throughput_ips"] == pytest.approx(1000.0 / latency["mean_ms"])
    assert result["backend"] == "ort" and result["providers"] == ["CPUExecutionProvider"]
    assert result["input_shape"] == [1, 3, SIZE, SIZE] and result["threads"] == 1 and result["batch"] == 1
    assert result["peak_rss_mb"] > 10
    host = result["host"]
    assert host["cpu"] and host["cores"] >= 1 and host["os"] and host["python"]
    assert {"numpy", "onnxruntime"} <= set(host["versions"]) and "onnxruntime" in result["versions"]


def test_several_artifacts_run_interleaved_with_equal_counts(bench, artifacts, tmp_path):
    run = bench("pocketgan-bench", artifacts.static, artifacts.dynamic, "--size", SIZE, SIZE, *FAST)
    assert run.code == 0, run.err
    first, second = run.results
    assert (first["artifact"], second["artifact"]) == (str(artifacts.static), str(artifacts.dynamic))
    assert first["iterations"] == second["iterations"] >= 5  # one iteration each per round
    assert first["elapsed_s"] == second["elapsed_s"]  # the same timed phase
    assert "speed vs first" in run.out and "1.00x" in run.out
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # atomic write: no temp files left


def test_dynamic_batch_and_size(bench, artifacts):
    run = bench("pocketgan-bench", artifacts.dynamic, "--batch", 3, "--size", 40, 48, *FAST)
    assert run.code == 0, run.err
    (result,) = run.results
    assert result["input_shape"] == [3, 3, 40, 48] and result["batch"] == 3
    assert result["throughput_ips"] == pytest.approx(3000.0 / result["latency_ms"]["mean_ms"])


def test_torch_backend_on_an_architecture_reference(bench):
    run = bench("pocketgan", "mobile-resnet:ngf=4", "--backend", "torch", "--size", SIZE, SIZE, *FAST)
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
    args = (model_dir, artifacts.dynamic, "--backend", "torch", "--backend", "ort", "--size", SIZE, SIZE)
    run = bench("pocketgan", *args, *FAST)
    assert run.code == 0, run.err
    assert [r["backend"] for r in run.results] == ["torch", "ort"]
    assert run.results[0]["iterations"] == run.results[1]["iterations"]


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
        ("pocketgan-bench", lambda tmp, a: [a.dynamic], "dynamic input size .* pass --size H W"),
        ("pocketgan-bench", lambda tmp, a: [a.static, "--size", 64, 64], "fixed 32x32 input"),
        ("pocketgan", lambda tmp, a: [a.static, "--batch", 2], "fixed batch of 1"),
        ("pocketgan", lambda tmp, a: [a.dynamic, "--size", 30, 30], "multiples of 4"),
        ("pocketgan", lambda tmp, a: [a.static, "--backend", "tflite"], "unknown backend 'tflite'"),
        (
            "pocketgan-bench",
            lambda tmp, a: [a.static, "--backend", "torch"],
            "unknown backend 'torch'; choose from ort$",
        ),
        (
            "pocketgan",
            lambda tmp, a: [a.static, a.static, a.static, "--backend", "ort", "--backend", "ort"],
            "once per artifact",
        ),  # fmt: skip
        ("pocketgan", lambda tmp, a: [a.static, "--backend", "torch"], "torch backend takes a model directory"),
        ("pocketgan", lambda tmp, a: ["resnet7:ngf=4", "--backend", "torch", "--size", 32, 32], "resnet7"),
        ("pocketgan-bench", lambda tmp, a: [a.static, "--json", tmp], "is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bench, artifacts, tmp_path, program, make_args, message):
    args = make_args(tmp_path, artifacts)
    run = bench(program, *args, *FAST, json_out="--json" not in args)  # else: no JSON may appear
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
