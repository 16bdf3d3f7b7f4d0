"""The host's compute limit (GEMM probes, cached per host) and the bench columns built on it:
% of the compute limit and speedup ÷ MAC reduction against ``--baseline``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hand_macs import hand_macs
from pocketgan.core.errors import PocketganError
from pocketgan.runtime import compute_limit as cl
from pocketgan.runtime import gemm_probe
from pocketgan.runtime.compute_limit import ComputeLimit, host_compute_limit, measure_compute_limit
from pocketgan.runtime.efficiency import check_baseline, macs_at, percent_of_limit, speedup_per_mac_reduction

FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "20", "--threads", "1", "--no-placement", "--no-power")
SMALL_PROBE = {"n": 128, "budget_s": 0.02}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "host"


# --------------------------------------------------------------------------------------------- the probes
@pytest.mark.parametrize(("op", "types", "dtypes"), [
    ("MatMul", (1, 1, 1), (np.float32, np.float32)),
    ("MatMulInteger", (2, 3, 6), (np.uint8, np.int8)),
])  # fmt: skip
def test_the_hand_written_onnx_graph_is_valid_and_multiplies(op, types, dtypes):
    import onnx
    import onnxruntime as ort

    data = gemm_probe.matmul_model_bytes(op, 16, *types)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    rng = np.random.default_rng(1)
    a = rng.integers(0, 200, (16, 16)).astype(dtypes[0])
    b = rng.integers(-100, 100, (16, 16)).astype(dtypes[1])
    (c,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"A": a, "B": b})
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_probe_measures_a_plausible_rate_with_every_installed_library():
    limit = measure_compute_limit(threads=1, **SMALL_PROBE)
    libraries = {p.library.split()[0] for p in limit.probes}
    assert {"numpy", "onnxruntime"} <= libraries
    # One core of any CPU this runs on does between 0.05 and 2000 GMAC/s fp32 (a 128³ GEMM in 1 µs – 40 ms).
    assert 0.05 < limit.fp32_gmacs < 2000
    assert limit.fp32_gmacs == max(p.gmacs for p in limit.probes if p.dtype == "fp32")
    assert all(p.threads == 1 and p.n == 128 and p.runs >= 2 for p in limit.probes)
    assert (limit.int8_gmacs is not None) == limit.int8_dot_product


def test_the_limit_is_cached_per_host_and_thread_count(cache, monkeypatch):
    calls = []
    real = cl.measure_compute_limit

    def counted(threads, **kwargs):
        calls.append(threads)
        return real(threads, **SMALL_PROBE)

    monkeypatch.setattr(cl, "measure_compute_limit", counted)
    first = host_compute_limit(1)
    assert calls == [1] and cl.cache_path(1).is_file() and cl.cache_path(1).parent == cache
    assert host_compute_limit(1) == first and calls == [1]  # read back from the file, not probed again
    assert json.loads(cl.cache_path(1).read_text())["fp32_gmacs"] == first.fp32_gmacs
    host_compute_limit(2)
    assert calls == [1, 2] and cl.cache_path(2) != cl.cache_path(1)
    host_compute_limit(1, refresh=True)
    assert calls == [1, 2, 1]


def test_a_corrupt_cache_file_is_measured_again(cache, monkeypatch):
    monkeypatch.setattr(cl, "measure_compute_limit", lambda threads, **_: _limit(50.0, None, threads))
    cl.cache_path(1).parent.mkdir(parents=True)
    cl.cache_path(1).write_text("{not json")
    assert host_compute_limit(1).fp32_gmacs == 50.0


def _limit(fp32: float, int8: float | None, threads: int = 1) -> ComputeLimit:
    return ComputeLimit("test cpu", "x86-64 test", threads, fp32, int8, int8 is not None)


def test_int8_artifacts_are_held_to_the_int8_limit_only_with_dot_products():
    assert _limit(74.0, 300.0).gmacs_for("int8") == 300.0
    assert _limit(74.0, 300.0).gmacs_for("fp16") == 74.0
    assert _limit(74.0, None).gmacs_for("int8") == 74.0  # AVX2 without VNNI: no int8 limit of its own


# ---------------------------------------------------------------------------------------------- arithmetic
def test_percent_of_the_limit_on_the_issues_figures():
    # resnet9:ngf=64, 49.68 GMACs in 676 ms against 74 GMAC/s: 49.68 / (0.676 × 74) = 99.31 %
    assert percent_of_limit(49.68e9, 676.0, 74.0) == pytest.approx(99.31, abs=0.01)
    # mobile-resnet:ngf=16, 1.01 GMACs in 37 ms: 1.01 / (0.037 × 74) = 36.89 %
    assert percent_of_limit(1.01e9, 37.0, 74.0) == pytest.approx(36.89, abs=0.01)


def test_speedup_per_mac_reduction_on_the_issues_figures():
    # 676/37 = 18.27× faster for 49.68/1.01 = 49.19× fewer MACs: 0.3714 of the MAC cut
    assert speedup_per_mac_reduction(676.0, 49.68e9, 37.0, 1.01e9) == pytest.approx(0.3714, abs=1e-4)
    assert speedup_per_mac_reduction(100.0, 8e9, 25.0, 2e9) == pytest.approx(1.0)  # 4× faster, 4× fewer


def test_macs_are_scaled_to_the_benchmarked_shape():
    profile = {"macs": 1_000_000, "input_shape": [1, 3, 256, 256]}
    assert macs_at(profile, (1, 3, 256, 256)) == 1_000_000
    assert macs_at(profile, (2, 3, 128, 128)) == 500_000  # 2 × 128² = half of 256²
    assert macs_at(profile, (1, 1, 256, 256)) is None  # another channel count: another computation
    assert macs_at({}, (1, 3, 256, 256)) is None


def test_the_baseline_must_be_benchmarked():
    assert check_baseline(None, ["a.onnx", "b.onnx"]) == "a.onnx"
    assert check_baseline(None, ["a.onnx", "a.onnx"]) is None  # one artifact on two backends: nothing to compare
    assert check_baseline("./b.onnx", ["a.onnx", "b.onnx"]) == "b.onnx"
    with pytest.raises(PocketganError, match="--baseline c.onnx is not one of the benchmarked artifacts"):
        check_baseline("c.onnx", ["a.onnx", "b.onnx"])


# ------------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two real ONNX exports at 32×32 with their MACs embedded: mobile-resnet ngf=8 and ngf=4."""
    from pocketgan.export.api import export_model
    from pocketgan.export.job import ExportOptions
    from pocketgan.models import load_model

    root = tmp_path_factory.mktemp("efficiency")
    paths, macs = [], []
    for ngf in (8, 4):
        torch.manual_seed(0)
        loaded = load_model(f"mobile-resnet:ngf={ngf}")
        sidecar = export_model(loaded, "onnx", root / f"ngf{ngf}", ExportOptions(size=(32, 32), samples=1))
        paths.append(root / f"ngf{ngf}" / sidecar.file)
        macs.append(hand_macs(loaded.model.eval(), 32))
    return paths, macs


def test_bench_reports_both_columns_against_the_baseline(bench, exported, cache):
    (big, small), (big_macs, small_macs) = exported
    cl.cache_path(1).parent.mkdir(parents=True)
    cl.cache_path(1).write_text(json.dumps(_limit(20.0, None).to_dict()))  # a known limit: no probe runs
    run = bench("pocketgan-bench", small, big, "--baseline", big, *FAST)
    assert run.code == 0, run.err
    assert "% of compute limit" in run.out and "speedup ÷ MAC reduction" in run.out
    assert f"against {big}" in run.out and "compute limit: 20 GMAC/s fp32" in run.out
    by_name = {r["artifact"]: r for r in run.results}
    assert by_name[str(big)]["macs"] == big_macs and by_name[str(small)]["macs"] == small_macs
    for record in run.results:
        p50 = record["latency_ms"]["p50_ms"]
        assert record["host"]["compute_limit"]["fp32_gmacs"] == 20.0
        assert record["efficiency"]["percent_of_limit"] == pytest.approx(100 * record["macs"] / (p50 / 1e3 * 20e9))
    big_p50, small_p50 = by_name[str(big)]["latency_ms"]["p50_ms"], by_name[str(small)]["latency_ms"]["p50_ms"]
    assert by_name[str(big)]["efficiency"]["speedup_per_mac_reduction"] == pytest.approx(1.0)
    expected = (big_p50 / small_p50) / (big_macs / small_macs)
    assert by_name[str(small)]["efficiency"]["speedup_per_mac_reduction"] == pytest.approx(expected)
    assert by_name[str(small)]["efficiency"]["baseline"] == str(big)


def test_a_baseline_that_is_not_benchmarked_is_one_line(bench, exported, cache, tmp_path):
    (big, small), _ = exported
    run = bench("pocketgan", small, big, "--baseline", tmp_path / "other.onnx", *FAST)
    assert run.code == 2 and run.results is None
    assert run.err.strip().count("\n") == 0 and "is not one of the benchmarked artifacts" in run.err
    assert not cache.exists()  # rejected before anything was loaded or probed


def test_compute_limit_off_skips_the_probe_and_refresh_measures_again(bench, exported, cache, monkeypatch):
    (big, _), _ = exported
    run = bench("pocketgan-bench", big, "--compute-limit", "off", *FAST)
    assert run.code == 0, run.err
    assert not cache.exists() and "compute_limit" not in run.results[0]["host"]
    assert run.results[0]["efficiency"]["percent_of_limit"] is None
    cl.cache_path(1).parent.mkdir(parents=True)
    cl.cache_path(1).write_text(json.dumps(_limit(20.0, None).to_dict()))
    monkeypatch.setattr(cl, "measure_compute_limit", lambda threads, **_: _limit(40.0, None, threads))
    run = bench("pocketgan-bench", big, "--compute-limit", "refresh", *FAST)
    assert run.results[0]["host"]["compute_limit"]["fp32_gmacs"] == 40.0
    assert json.loads(cl.cache_path(1).read_text())["fp32_gmacs"] == 40.0
    run = bench("pocketgan-bench", big, "--compute-limit", "sometimes", *FAST)
    assert run.code == 2 and "--compute-limit must be cached, refresh, off" in run.err and run.results is None
