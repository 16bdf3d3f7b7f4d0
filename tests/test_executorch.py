"""ExecuTorch: real ``.pte`` lowering (XNNPACK fp32, PT2E int8, CoreML), the inspector's delegation coverage before
and after the rewrites, and real ``executorch.runtime`` sessions behind the ``executorch`` backend."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.core.contract import IOSpec
from pocketgan.core.coverage import coverage_of
from pocketgan.core.errors import MissingDependencyError, PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import load_model, wrap
from runner_parity import assert_runner_matches_pytorch

pytest.importorskip("executorch.runtime")
SIZE = 32
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "50", "--threads", "1")
STUDENT = "mobile-resnet:ngf=4,n_blocks=1"  # the real architecture, one residual block: lowering stays quick
#: How ExecuTorch's inspector names the ops of an undecomposed InstanceNorm and of a decomposed reflection pad.
INSTANCE_NORM_OP = "aten__native_batch_norm_legit_no_stats"
DECOMPOSED_PAD_OPS = {"aten_arange_start_step", "aten_abs_default", "aten_index_tensor"}


class _PadNormNet(nn.Module):
    """Two reflection pads, two InstanceNorms, an output-padded deconvolution: what splits an XNNPACK graph."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(3, width, 3), nn.InstanceNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.InstanceNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(width, 3, 3), nn.Tanh(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Half(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return load_model(STUDENT)


@pytest.fixture(scope="module")
def padnorm():
    torch.manual_seed(0)
    return wrap(_PadNormNet(), IOSpec(size_multiple=2))


@pytest.fixture(scope="module")
def exports(student, padnorm, tmp_path_factory):
    """``{name: (directory, sidecar)}``: the student fp32 (default rewrites), and the pad/norm net with no
    rewrites, the default ones, the reflection pad kept whole, and int8 (8 synthetic calibration inputs)."""
    root = tmp_path_factory.mktemp("executorch")
    plans = {
        "student": (student, ExportOptions(size=(SIZE, SIZE))),
        "none": (padnorm, ExportOptions(size=(SIZE, SIZE), format_options={"rewrites": "none"})),
        "default": (padnorm, ExportOptions(size=(SIZE, SIZE))),
        "kept": (padnorm, ExportOptions(size=(SIZE, SIZE),
                                        format_options={"rewrites": "instance-norm-decomposed,reflection-pad-kept"})),
        "int8": (padnorm, ExportOptions(size=(SIZE, SIZE), precision="int8", calibration_samples=8)),
    }  # fmt: skip
    return {name: (root / name, export_model(model, "executorch", root / name, options))
            for name, (model, options) in plans.items()}  # fmt: skip


def test_fp32_program_matches_pytorch_within_1e4(exports, student):
    out, sidecar = exports["student"]
    assert sorted(p.name for p in out.iterdir()) == ["model.pte", "model.pte.json"]
    assert sidecar.format == "executorch" and sidecar.precision == "fp32" and sidecar.parity.max_abs <= 1e-4
    assert sidecar.extra["delegate"] == "xnnpack" and "XNNPACK" in sidecar.exporter
    runner = runtime.load(out / "model.pte", backend="executorch", threads=1)
    assert_runner_matches_pytorch(runner, student, SIZE, seed=3)
    assert runner.input_shape == [1, 3, SIZE, SIZE] and runner.output_shape == [1, 3, SIZE, SIZE]
    assert runner.providers == ["ExecuTorch:XNNPACK"] and runner.info.precision == "fp32"


def test_int8_is_quantized_by_pt2e_and_passes_its_psnr_gate(exports):
    (fp32_dir, fp32), (int8_dir, int8) = exports["default"], exports["int8"]
    assert int8.parity.passed and int8.parity.psnr_db >= 25.0 and int8.parity.max_abs > fp32.parity.max_abs
    assert int8.extra["int8"]["calibration"] == {"source": "synthetic inputs", "samples": 8}
    assert "XNNPACKQuantizer" in int8.extra["int8"]["scheme"]
    # int8 weights: the 16-channel convolutions' float32 weights shrink to a quarter
    assert (int8_dir / "model.pte").stat().st_size < 0.8 * (fp32_dir / "model.pte").stat().st_size
    # int8's default keeps InstanceNorm whole (its decomposed form loses too much in int8): the two norms are
    # left to the portable kernels; the quantize/dequantize nodes are delegated, so more ops run inside XNNPACK
    assert int8.extra["rewrites"] == {"reflection-pad": 2}
    assert coverage_of(int8.extra).by_op == {INSTANCE_NORM_OP: 2}
    assert coverage_of(int8.extra).delegated > coverage_of(fp32.extra).delegated


def test_without_rewrites_instance_norm_and_reflection_pads_split_the_graph(exports):
    coverage = coverage_of(exports["none"][1].extra)
    assert coverage.backend == "XNNPACK" and "get_delegation_info" in coverage.source
    assert coverage.by_op[INSTANCE_NORM_OP] == 2  # both norms left to the portable kernels
    assert DECOMPOSED_PAD_OPS <= set(coverage.by_op)  # each reflection pad became index arithmetic
    assert coverage.islands >= 3 and exports["none"][1].extra["rewrites"] == {}


def test_default_rewrites_put_the_whole_graph_in_one_xnnpack_island(exports):
    before, after = coverage_of(exports["none"][1].extra), coverage_of(exports["default"][1].extra)
    assert exports["default"][1].extra["rewrites"] == {"instance-norm-decomposed": 2, "reflection-pad": 2}
    assert after.fallback == 0 and after.islands == 1  # the whole graph is one XNNPACK delegate
    assert after.fraction > before.fraction and before.islands > 1
    assert exports["default"][1].parity.max_abs <= 1e-4


def test_keeping_the_reflection_pad_whole_leaves_one_portable_op_per_pad(exports):
    sidecar = exports["kept"][1]
    coverage = coverage_of(sidecar.extra)
    assert coverage.by_op == {"aten_reflection_pad2d_default": 2} and coverage.fallback == 2
    assert sidecar.extra["rewrites"] == {"instance-norm-decomposed": 2, "reflection-pad-kept": 2}
    assert coverage.fraction > coverage_of(exports["none"][1].extra).fraction
    assert sidecar.parity.max_abs <= 1e-4


def test_threads_size_executorchs_threadpool_once_per_process(exports):
    from executorch.extension.pybindings import portable_lib

    path = exports["default"][0] / "model.pte"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    one = runtime.load(path, backend="executorch", threads=1)
    assert portable_lib._threadpool_get_thread_count() == 1 and one.info.threads == 1
    # XNNPACK programs keep the pool they were loaded with: resizing it under `one` would crash its next run
    with pytest.raises(PocketganError, match="threadpool is process-wide .* 1 thread: load programs with --threads 2"):
        runtime.load(path, backend="executorch", threads=2)
    assert runtime.load(path, backend="executorch").info.threads == 1  # no --threads: the pool as it is
    expected = one.run(x)
    del one
    gc.collect()
    two = runtime.load(path, backend="executorch", threads=2)  # nothing alive runs on the old pool
    assert portable_lib._threadpool_get_thread_count() == 2 and two.info.threads == 2
    np.testing.assert_allclose(two.run(x), expected, atol=1e-6)
    with pytest.raises(PocketganError, match="threads must be >= 1"):
        runtime.load(path, backend="executorch", threads=0)
    del two
    gc.collect()


def test_a_bare_pte_carries_its_io_spec(tmp_path):
    spec = IOSpec.from_value_range(0.0, 1.0, channel_order="BGR", size_multiple=1)
    export_model(wrap(_Half(), spec), "executorch", tmp_path / "export", ExportOptions(size=(SIZE, SIZE)))
    device = tmp_path / "device"
    device.mkdir()
    shutil.copy(tmp_path / "export" / "model.pte", device / "model.pte")  # no sidecar
    runner = runtime.load(device, backend="executorch")
    assert runner.info.manifest is None and runner.info.warnings == []
    assert runner.io.value_range == (0.0, 1.0) and runner.io.channel_order == "BGR"
    assert runner.io.fixed_size == (SIZE, SIZE) and runner.placement({}) is None
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(runner.translate(image).astype(float), image / 2.0, atol=1.0)


def test_the_coreml_delegate_converts_here_but_is_not_checked(padnorm, tmp_path):
    pytest.importorskip("coremltools")
    sidecar = export_model(padnorm, "executorch", tmp_path, ExportOptions(size=(SIZE, SIZE), delegate="coreml"))
    assert sidecar.parity is None and "no CoreMLBackend" in sidecar.extra["parity"]
    assert coverage_of(sidecar.extra).backend == "CoreML" and (tmp_path / "model.pte").stat().st_size > 0
    with pytest.raises(PocketganError, match="ExecuTorch cannot load the program"):
        runtime.load(tmp_path, backend="executorch")


def test_vendor_delegates_without_their_sdk_fail_in_one_line(padnorm, tmp_path):
    for delegate, needs in (("mediatek", "NeuroPilot"), ("qnn", "Qualcomm AI Engine Direct SDK")):
        with pytest.raises(PocketganError, match=needs):
            export_model(padnorm, "executorch", tmp_path / delegate, ExportOptions(size=(SIZE, SIZE), delegate=delegate))
        assert not (tmp_path / delegate).exists()


def test_bad_options_are_one_line_errors(padnorm, tmp_path):
    cases = [
        (ExportOptions(delegate="xnnpak"), "did you mean xnnpack"),
        (ExportOptions(format_options={"rewrite": "none"}), "has no option 'rewrite'"),
        (ExportOptions(format_options={"rewrites": "instance-norm"}), "did you mean"),
        (ExportOptions(precision="int8", delegate="coreml"), "exports fp32 only"),
        (ExportOptions(precision="fp16"), "supports --precision fp32, int8"),
    ]
    for options, message in cases:
        with pytest.raises(PocketganError, match=message):
            export_model(padnorm, "executorch", tmp_path / "out", options)
    with pytest.raises(PocketganError, match="does not take --delegate"):
        export_model(padnorm, "onnx", tmp_path / "onnx", ExportOptions(delegate="coreml"))


def test_missing_extra_is_one_line(padnorm, exports, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)  # import executorch now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[executorch\]"):
        export_model(padnorm, "executorch", tmp_path / "out", ExportOptions(size=(SIZE, SIZE)))
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[executorch\]"):
        runtime.load(exports["default"][0], backend="executorch")


def test_importing_the_backend_imports_no_torch():
    code = "import sys, pocketgan.runtime.executorch_backend; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]


def test_cli_export_then_pocketgan_bench(cli, bench, tmp_path):
    result = cli("export", STUDENT, "--format", "executorch", "--size", str(SIZE), "-o", tmp_path / "pte",
                 "--option", "rewrites=all")  # fmt: skip
    assert result.code == 0, result.out + result.err
    sidecar = json.loads((tmp_path / "pte" / "model.pte.json").read_text())
    # by hand: pads = stem + output + 2 in the block; norms = 3 down + 2 up + 4 in the separable block;
    # the two upsampling deconvolutions have output_padding=1; nothing is left to keep whole
    assert sidecar["extra"]["rewrites"] == {"reflection-pad": 4, "instance-norm-decomposed": 9, "conv-transpose-crop": 2}
    assert sidecar["extra"]["coverage"]["fallback"] == 0 and sidecar["extra"]["coverage"]["islands"] == 1
    run = bench("pocketgan-bench", tmp_path / "pte" / "model.pte", *FAST)
    assert run.code == 0, run.out + run.err
    (record,) = run.results
    assert record["backend"] == "executorch" and record["threads"] == 1 and record["input_shape"] == [1, 3, SIZE, SIZE]
    assert record["placement"]["by_provider"] == {"XNNPACK delegate": sidecar["extra"]["coverage"]["delegated"]}
    assert record["latency_ms"]["p50_ms"] > 0
    bad = cli("export", STUDENT, "--format", "executorch", "--delegate", "tpu", "-o", tmp_path / "bad")
    assert bad.code != 0 and "--delegate must be one of" in bad.out + bad.err and "Traceback" not in bad.out + bad.err
