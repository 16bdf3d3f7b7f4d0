"""The torch-free runtime: backend registry, ONNX Runtime runners, translate(), statistics, the engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pocketgan.runtime as runtime
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.runtime import pixels
from pocketgan.runtime.bench import BenchSettings, benchmark
from pocketgan.runtime.host import host_info, peak_rss_mb
from pocketgan.runtime.ort_backend import choose_providers
from pocketgan.runtime.runner import Runner, RunnerInfo
from pocketgan.runtime.stats import LatencyStats

from conftest import SIZE

FAST = BenchSettings(warmup_ms=20, iterations=5, duration_s=0.1)


@pytest.fixture(autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)  # restored: later test files keep conftest's one thread


# -- registry and loading ---------------------------------------------------------------------


def test_registry_lists_ort_and_rejects_unknown_backends(artifacts):
    assert "ort" in runtime.list_backends()
    with pytest.raises(PocketganError, match="unknown backend 'snpe'"):
        runtime.load(artifacts.static, backend="snpe")


def test_ort_runner_reports_signature_providers_and_sidecar(artifacts):
    runner = runtime.load(artifacts.static, threads=1)
    assert (runner.input_name, runner.output_name) == ("input", "output")
    assert runner.input_shape == [1, 3, SIZE, SIZE] and runner.output_shape == [1, 3, SIZE, SIZE]
    assert runner.providers == ["CPUExecutionProvider"]  # what the session uses on this CPU-only host
    assert runner.info.manifest is not None and runner.info.manifest.opset == 17
    assert runner.io.value_range == (-1.0, 1.0) and runner.io.size_multiple == 4
    assert runner.info.threads == 1 and runner.info.warnings == []


def test_dynamic_dims_are_named_and_run_matches_torch(artifacts):
    runner = runtime.load(artifacts.dynamic)
    assert runner.input_shape == ["batch", 3, "height", "width"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 40, 48)).astype(np.float32)
    out = runner.run(x)
    assert out.shape == (3, 3, 40, 48) and out.dtype == np.float32
    with torch.inference_mode():
        expected = artifacts.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_export_directory_and_bare_artifact(artifacts, tmp_path):
    (tmp_path / "model.onnx").write_bytes(artifacts.static.read_bytes())
    assert runtime.load(tmp_path).input_shape == [1, 3, SIZE, SIZE]
    bare = runtime.load(artifacts.bare)
    assert bare.info.manifest is None and "no sidecar" in bare.info.warnings[0]


def test_sidecar_of_another_file_is_flagged(artifacts, tmp_path):
    copy = tmp_path / "static.onnx"
    copy.write_bytes(artifacts.static.read_bytes())
    sidecar = json.loads(Path(f"{artifacts.static}.json").read_text())
    (tmp_path / "static.onnx.json").write_text(json.dumps({**sidecar, "sha256": "0" * 64}))
    assert runtime.load(artifacts.static).info.warnings == []
    assert any("sha256 does not match" in w for w in runtime.load(copy).info.warnings)


@pytest.mark.parametrize("content", [b"", b"not an onnx model\n", "truncate"])
def test_corrupt_onnx_is_one_line_error(artifacts, tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(artifacts.static.read_bytes()[:4000] if content == "truncate" else content)
    with pytest.raises(PocketganError, match="cannot load ONNX model") as info:
        runtime.load(path)
    assert "\n" not in str(info.value)


def test_missing_artifact_is_an_error(tmp_path):
    with pytest.raises(PocketganError, match="no such ONNX file"):
        runtime.load(tmp_path / "nope.onnx")


def test_provider_preference_and_explicit_choice(artifacts):
    available = ["AzureExecutionProvider", "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert choose_providers(available) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert choose_providers(["CPUExecutionProvider", "CoreMLExecutionProvider"]) == [
        "CoreMLExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert choose_providers(available, ["cuda", "cpu"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert runtime.load(artifacts.static, providers=["cpu"]).providers == ["CPUExecutionProvider"]
    with pytest.raises(PocketganError, match="CUDAExecutionProvider is not available"):
        runtime.load(artifacts.static, providers=["cuda"])


def test_concrete_input_shape_rules(artifacts):
    static, dynamic = runtime.load(artifacts.static), runtime.load(artifacts.dynamic)
    assert static.concrete_input_shape() == (1, 3, SIZE, SIZE)
    assert static.concrete_input_shape(size=(SIZE, SIZE)) == (1, 3, SIZE, SIZE)
    assert dynamic.concrete_input_shape(4, (64, 48)) == (4, 3, 64, 48)
    for runner, batch, size, message in [
        (dynamic, 1, None, "dynamic input size .* pass --size H or --size HxW"),
        (dynamic, 1, (30, 32), "multiples of 4"),
        (static, 2, None, "fixed batch of 1"),
        (static, 1, (64, 64), "fixed 32x32 input"),
    ]:
        with pytest.raises(PocketganError, match=message):
            runner.concrete_input_shape(batch, size)
    with pytest.raises(PocketganError, match="onnxruntime failed on input"):
        static.run(np.zeros((1, 4, SIZE, SIZE), np.float32))


# -- pixels and translate -------------------------------------------------------------------------


def test_pixels_round_trip_exactly_in_any_value_range():
    image = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    for value_range in ((-1.0, 1.0), (0.0, 1.0)):
        io = IOSpec.from_value_range(*value_range)
        tensor = pixels.to_tensor(image, io)
        assert tensor.shape == (1, 3, 6, 10) and tensor.dtype == np.float32
        assert tensor.min() >= value_range[0] and tensor.max() <= value_range[1]
        np.testing.assert_array_equal(pixels.to_image(tensor[0], io), image)
    assert pixels.fit_size(37, 51, 4) == (36, 52) and pixels.fit_size(1, 1, 4) == (4, 4)


def test_translate_returns_uint8_rgb_at_the_input_size(artifacts):
    image = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    static = runtime.load(artifacts.static)
    out = static.translate(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    manual = pixels.to_image(static.run(pixels.to_tensor(image, static.io))[0], static.io)
    np.testing.assert_array_equal(out, manual)
    odd = np.random.default_rng(3).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    for runner, (h, w) in ((static, (32, 32)), (runtime.load(artifacts.dynamic), (36, 48))):  # resized in and back
        result = runner.translate(odd)
        assert result.shape == (37, 50, 3) and result.dtype == np.uint8
        fed = cv2.resize(odd, (w, h), interpolation=cv2.INTER_AREA)  # the sidecar's "area" (shrinking)
        made = pixels.to_image(runner.run(fed.astype(np.float32)[None].transpose(0, 3, 1, 2) / 127.5 - 1)[0], runner.io)
        np.testing.assert_array_equal(result, cv2.resize(made, (50, 37), interpolation=cv2.INTER_CUBIC))


@pytest.mark.parametrize("image", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8)])
def test_translate_rejects_wrong_images(artifacts, image):
    with pytest.raises(PocketganError, match="expected"):
        runtime.load(artifacts.static).translate(image)


# -- statistics, host, engine ----------------------------------------------------------------------


def test_latency_stats_known_values_and_ordering():
    stats = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0])
    assert (stats.count, stats.min_ms, stats.mean_ms, stats.p50_ms, stats.max_ms) == (4, 1.0, 2.5, 2.5, 4.0)
    assert stats.std_ms == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert stats.cv == pytest.approx(stats.std_ms / 2.5) and stats.noisy
    assert stats.throughput(2) == pytest.approx(800.0)
    skewed = LatencyStats.from_samples(np.random.default_rng(4).lognormal(0, 1, 1000))
    ordered = [skewed.min_ms, skewed.p50_ms, skewed.p90_ms, skewed.p95_ms, skewed.p99_ms, skewed.max_ms]
    assert ordered == sorted(ordered) and skewed.min_ms < skewed.max_ms
    assert not LatencyStats.from_samples([5.0, 5.0]).noisy
    with pytest.raises(PocketganError):
        LatencyStats.from_samples([])


def test_host_info_and_peak_rss():
    host = host_info()
    assert host["cpu"] and host["cores"] >= 1 and host["python"].count(".") == 2
    assert {"numpy", "onnxruntime"} <= set(host["versions"])
    assert peak_rss_mb() > 10


class _Recording(Runner):
    """Wraps a real runner and logs every call (name, start, end in seconds), to observe the engine's schedule."""

    def __init__(self, inner: Runner, log: list[tuple[str, float, float]]) -> None:
        super().__init__(inner.info)
        self.inner, self.log = inner, log

    def run(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.inner.run(batch)
        self.log.append((self.name, start, time.perf_counter()))
        return out


def _turns(log: list[tuple[str, float, float]]) -> list[tuple[str, int, float, float]]:
    """The log as turns: runs of consecutive calls by one runner (name, calls, first start, last end)."""
    turns: list[tuple[str, int, float, float]] = []
    for name, start, end in log:
        if turns and turns[-1][0] == name:
            turns[-1] = (name, turns[-1][1] + 1, turns[-1][2], end)
        else:
            turns.append((name, 1, start, end))
    return turns


def test_engine_interleaves_artifacts_in_settled_turns(artifacts):
    log: list[tuple[str, float, float]] = []
    runners = [_Recording(runtime.load(p, threads=1), log) for p in (artifacts.static, artifacts.dynamic)]
    settings = BenchSettings(size=(SIZE, SIZE), warmup_ms=20, iterations=6, duration_s=0.25, block_ms=30,
                             settle_ms=8, placement=False)  # fmt: skip
    results = benchmark(runners, settings)
    warmup = sum(r.warmup_iterations for r in results)
    turns = _turns(log[warmup:])
    names = [r.name for r in runners]
    assert [t[0] for t in turns] == names * (len(turns) // 2) and len(turns) >= 4  # whole rounds, in order
    for before, after in zip(turns, turns[1:]):
        assert after[2] - before[3] >= 0.008  # the settle pause: the previous runtime's threads go to sleep
    for name, calls, start, end in turns[:-2]:  # the last round may end early: the run is done
        assert end - start >= 0.028 and calls >= 2  # back to back for block_ms (the engine's clock reads last)
    for result in results:
        mine = [t for t in turns if t[0] == result.artifact]
        assert 1 <= result.lead_in_iterations <= len(mine) - 1  # untimed: at most one per turn, none in the first
        assert result.latency.count == sum(t[1] for t in mine) - result.lead_in_iterations >= 6
        assert result.elapsed_s >= 0.25
    assert [r.artifact for r in results] == names


def test_one_artifact_runs_without_pauses_or_lead_ins(artifacts):
    log: list[tuple[str, float, float]] = []
    runner = _Recording(runtime.load(artifacts.static, threads=1), log)
    settings = BenchSettings(size=(SIZE, SIZE), warmup_ms=0, iterations=1, duration_s=0.1, block_ms=10,
                             settle_ms=50, placement=False)  # fmt: skip
    (result,) = benchmark([runner], settings)
    timed = log[result.warmup_iterations:]
    assert result.latency.count == len(timed) > 10 and result.lead_in_iterations == 0
    assert max(b[1] - a[2] for a, b in zip(timed, timed[1:])) < 0.05  # never the 50 ms settle


def test_engine_stops_on_the_later_of_iterations_and_duration(artifacts):
    runner = runtime.load(artifacts.static, threads=1)
    events: list = []  # ProgressEvents: one per timed round ("1 round", "2 rounds", ...) between start and end
    by_count = benchmark([runner], BenchSettings(warmup_ms=0, iterations=7, duration_s=0, block_ms=0),
                         events.append)[0]  # fmt: skip  (block_ms=0: a turn is one iteration)
    fractions = [e.completed / e.total for e in events if e.task.startswith("timing") and e.status and not e.finished]
    assert by_count.latency.count == 7 and by_count.warmup_iterations == 1
    assert len(fractions) == 7 and fractions == sorted(fractions) and fractions[-1] == 1.0
    by_time = benchmark([runner], BenchSettings(warmup_ms=0, iterations=1, duration_s=0.1))[0]
    assert by_time.elapsed_s >= 0.1 and by_time.latency.count > 1
    assert len(by_time.samples_ms) == by_time.latency.count


class _Alternating(Runner):
    """A runner whose latency alternates between two sleeps: a deliberately noisy workload."""

    def __init__(self) -> None:
        super().__init__(_info())
        self.calls = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(0.004 if self.calls % 2 else 0.0005)
        return batch


def _info() -> RunnerInfo:
    shape: list[int | str] = [1, 3, 8, 8]
    return RunnerInfo("noisy", "test", [TensorInfo("x", shape)], [TensorInfo("y", shape)], ["sleep"])


def test_engine_warns_about_high_variation():
    result = benchmark([_Alternating()], BenchSettings(warmup_ms=0, iterations=10, duration_s=0))[0]
    assert result.latency.cv > 0.1
    assert any("varies a lot" in w for w in result.warnings)


def test_settings_are_validated():
    for kwargs in ({"batch": 0}, {"iterations": 0}, {"duration_s": -1}, {"size": (0, 32)}):
        with pytest.raises(PocketganError):
            BenchSettings(**kwargs)
    with pytest.raises(PocketganError, match="--block-ms and --settle-ms"):
        BenchSettings(settle_ms=-1)


def test_lazy_public_api():
    assert runtime.BenchSettings is BenchSettings and runtime.Runner is Runner
    with pytest.raises(AttributeError):
        runtime.no_such_thing  # noqa: B018


# -- torch-free guarantees ----------------------------------------------------------------------------

SITECUSTOMIZE = textwrap.dedent(
    """
    import atexit, json, os, sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test ({name})")
            return None

    sys.meta_path.insert(0, BlockTorch())

    @atexit.register
    def _dump_modules():
        with open(os.environ["POCKETGAN_MODULES_LOG"], "w") as handle:
            json.dump(sorted(sys.modules), handle)
    """
)
FORBIDDEN = ("torch", "pocketgan.models", "pocketgan.distill", "pocketgan.export", "pocketgan.torch_backend")


def _run_without_torch(tmp_path: Path, command: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    blocker = tmp_path / "no_torch"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(blocker), "POCKETGAN_MODULES_LOG": str(log), "COLUMNS": "200"}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return proc, json.loads(log.read_text()) if log.exists() else []


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_runtime_and_pocketgan_bench_work_with_torch_unimportable(artifacts, tmp_path):
    proc, _ = _run_without_torch(tmp_path, [sys.executable, "-c", "import torch"])
    assert proc.returncode != 0 and "torch is blocked" in proc.stderr  # the blocker really blocks

    script = (
        "import numpy as np, pocketgan.runtime as rt; "
        f"r = rt.load({str(artifacts.static)!r}); "
        "out = r.translate(np.zeros((32, 32, 3), np.uint8)); print('ok', out.shape, out.dtype)"
    )
    proc, modules = _run_without_torch(tmp_path, [sys.executable, "-c", script])
    assert proc.returncode == 0, proc.stderr
    assert "ok (32, 32, 3) uint8" in proc.stdout
    assert "pocketgan.runtime" in modules and _forbidden(modules) == []

    script_path = Path(sys.executable).with_name("pocketgan-bench")
    entry = [str(script_path)] if script_path.exists() else [sys.executable, "-m", "pocketgan.runtime.cli"]
    out = tmp_path / "bench.json"
    args = [str(artifacts.static), "--duration", "0.1", "--iterations", "3", "--warmup-ms", "10", "--json", str(out)]
    proc, modules = _run_without_torch(tmp_path, entry + args)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())[0]["latency_ms"]["count"] >= 3
    assert "pocketgan.runtime.cli" in modules and _forbidden(modules) == []
