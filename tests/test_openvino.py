"""OpenVINO: real IR conversion (fp32, fp16-compressed, NNCF int8), the ``openvino`` backend, ``--backend auto``."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import MissingDependencyError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import wrap
from runner_parity import assert_runner_matches_pytorch

ov = pytest.importorskip("openvino")
SIZE = 32
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "50", "--threads", "1")


@pytest.fixture(scope="module")
def exports(tiny_student, tmp_path_factory):
    """``{precision: (directory, sidecar)}`` of the OpenVINO exports (int8 calibrated on 8 synthetic inputs)."""
    root = tmp_path_factory.mktemp("openvino")
    made = {}
    for precision in ("fp32", "fp16", "int8"):
        options = ExportOptions(size=(SIZE, SIZE), precision=precision, calibration_samples=8)
        made[precision] = (root / precision, export_model(tiny_student, "openvino", root / precision, options))
    return made


def test_fp32_ir_matches_pytorch_within_1e4(exports, tiny_student):
    out, sidecar = exports["fp32"]
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.xml", "model.xml.json"]
    assert sidecar.format == "openvino" and sidecar.parity.max_abs <= 1e-4
    runner = runtime.load(out / "model.xml", backend="openvino")
    assert_runner_matches_pytorch(runner, tiny_student, SIZE, seed=3)
    assert runner.providers == ["CPU"] and runner.input_shape == [1, 3, SIZE, SIZE]


def test_fp16_compresses_the_weights_and_passes_its_psnr_gate(exports):
    (fp32_dir, _), (fp16_dir, sidecar) = exports["fp32"], exports["fp16"]
    ratio = (fp16_dir / "model.bin").stat().st_size / (fp32_dir / "model.bin").stat().st_size
    assert 0.4 < ratio < 0.6, ratio
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 50.0 and sidecar.parity.max_abs <= 5e-2
    assert sidecar.extra["openvino"]["weights"] == "fp16-compressed"


def test_int8_is_quantized_by_nncf_and_passes_its_psnr_gate(exports):
    out, sidecar = exports["int8"]
    ops = {op.get_type_name() for op in ov.Core().read_model(str(out / "model.xml")).get_ops()}
    assert "FakeQuantize" in ops
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 25.0
    assert sidecar.extra["int8"]["calibration"] == {"source": "synthetic inputs", "samples": 8}


def test_rt_info_carries_the_spec_and_a_bare_ir_translates_with_it(tmp_path):
    spec = IOSpec.from_value_range(0.0, 1.0, channel_order="BGR", size_multiple=1)
    export_model(wrap(_Half(), spec), "openvino", tmp_path / "export", ExportOptions(size=(SIZE, SIZE)))
    model = ov.Core().read_model(str(tmp_path / "export" / "model.xml"))
    embedded = json.loads(model.get_rt_info(["pocketgan", "io"]).astype(str))
    assert embedded["channel_order"] == "BGR" and embedded["offset"] == 0.0 and embedded["fixed_size"] == [SIZE, SIZE]
    assert json.loads(model.get_rt_info(["pocketgan", "inputs"]).astype(str))[0]["shape"] == [1, 3, SIZE, SIZE]
    device = tmp_path / "device"
    device.mkdir()
    for name in ("model.xml", "model.bin"):  # no sidecar
        shutil.copy(tmp_path / "export" / name, device / name)
    runner = runtime.load(device, backend="openvino")
    assert runner.info.manifest is None and runner.info.warnings == []
    assert runner.io.value_range == (0.0, 1.0) and runner.io.channel_order == "BGR"
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(runner.translate(image).astype(float), image / 2.0, atol=1.0)


@pytest.mark.parametrize("threads", [1, 2])
def test_backend_sets_the_thread_count_and_the_latency_hint(exports, threads):
    runner = runtime.load(exports["fp32"][0] / "model.xml", backend="openvino", threads=threads)
    assert int(runner.compiled.get_property("INFERENCE_NUM_THREADS")) == threads and runner.info.threads == threads
    assert str(runner.compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"


def test_openvino_reads_an_onnx_file_with_its_embedded_spec(tiny_student, tmp_path):
    export_model(tiny_student, "onnx", tmp_path, ExportOptions(size=(SIZE, SIZE)))
    (tmp_path / "model.onnx.json").unlink()
    runner = runtime.load(tmp_path / "model.onnx", backend="openvino")
    assert runner.info.warnings == [] and runner.io.fixed_size == (SIZE, SIZE)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    np.testing.assert_allclose(runner.run(x), runtime.load(tmp_path / "model.onnx").run(x), atol=1e-4)


def test_bench_picks_the_backend_from_the_artifact(bench, exports):
    run = bench("pocketgan-bench", exports["fp32"][0] / "model.xml", *FAST)
    assert run.code == 0, run.err
    assert run.results[0]["backend"] == "openvino" and run.results[0]["providers"] == ["CPU"]


def test_backend_auto_times_every_installed_backend_interleaved(bench, tiny_student, tmp_path):
    export_model(tiny_student, "onnx", tmp_path, ExportOptions(size=(SIZE, SIZE)))
    run = bench("pocketgan-bench", tmp_path / "model.onnx", "--backend", "auto", *FAST)
    assert run.code == 0, run.err
    assert sorted(r["backend"] for r in run.results) == ["openvino", "ort"]
    assert all(len(r["samples_ms"]) >= 5 for r in run.results)  # FAST's --iterations, for each
    fastest = min(run.results, key=lambda r: r["latency_ms"]["p50_ms"])
    assert f"fastest here for {tmp_path / 'model.onnx'}: {fastest['backend']}" in run.out


def test_without_openvino_the_backend_names_the_extra(exports, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[openvino\]"):
        runtime.load(exports["fp32"][0] / "model.xml", backend="openvino")


class _Half(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5
