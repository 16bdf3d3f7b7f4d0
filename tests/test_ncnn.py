"""ncnn: real pnnx conversions (fp32, fp16), real ncnn sessions, coverage, the sidecar it depends on, the CLI."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.core.coverage import coverage_of
from pocketgan.core.errors import MissingDependencyError, ParityError, PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.export.ncnn_format import convert_with_pnnx, ncnn_coverage, read_param
from pocketgan.models import load_model, wrap
from runner_parity import assert_runner_matches_pytorch

ncnn = pytest.importorskip("ncnn")
pnnx = pytest.importorskip("pnnx")
SIZE = 32
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "50", "--threads", "1")
PUBLISHED = ["model.ncnn.bin", "model.ncnn.param", "model.ncnn.param.json"]


def modules_of(model: nn.Module, kind: type) -> int:
    return sum(type(m) is kind for m in model.modules())


@pytest.fixture(scope="module")
def exports(tiny_student, tmp_path_factory):
    """``{precision: (directory, sidecar)}`` of the ncnn exports of ``mobile-resnet:ngf=4`` at 32 px."""
    root = tmp_path_factory.mktemp("ncnn")
    return {p: (root / p, export_model(tiny_student, "ncnn", root / p, ExportOptions(size=(SIZE, SIZE), precision=p)))
            for p in ("fp32", "fp16")}  # fmt: skip


def test_fp32_pair_matches_pytorch_and_only_the_pair_and_its_sidecar_are_published(exports, tiny_student):
    out, sidecar = exports["fp32"]
    assert sorted(p.name for p in out.iterdir()) == PUBLISHED  # pnnx's .pt/.py/.onnx/pnnx.* stayed in scratch
    assert sidecar.format == "ncnn" and sidecar.parity.max_abs <= 1e-4
    assert sidecar.extra["ncnn"]["weights"] == "fp32" and sidecar.extra["rewrites"] == {}
    runner = runtime.load(out, backend="ncnn")
    assert_runner_matches_pytorch(runner, tiny_student, SIZE, seed=3)
    assert runner.providers == ["CPU"] and runner.input_shape == [1, 3, SIZE, SIZE]
    assert runner.io.fixed_size == (SIZE, SIZE) and runner.info.precision == "fp32" and runner.info.profile["macs"] > 0


def test_coverage_counts_every_layer_of_the_generator_as_native(exports, tiny_student):
    out, sidecar = exports["fp32"]
    coverage = coverage_of(sidecar.extra)
    assert coverage.backend == "ncnn" and coverage.unit == "layers" and coverage.fallback == 0
    layers = sidecar.extra["ncnn"]["layers"]
    model = tiny_student.model
    assert layers["InstanceNorm"] == modules_of(model, nn.InstanceNorm2d)
    assert layers["Deconvolution"] == modules_of(model, nn.ConvTranspose2d)
    assert layers["Padding"] == modules_of(model, nn.ReflectionPad2d)
    assert coverage.delegated == sum(layers.values()) and "Input" not in layers
    lines = (out / "model.ncnn.param").read_text().splitlines()
    assert coverage.delegated == int(lines[1].split()[0]) - sum(line.split()[0] in ("Input", "Split") for line in lines[2:])
    placement = runtime.load(out, backend="ncnn").placement({"input": np.zeros((1, 3, SIZE, SIZE), np.float32)})
    assert placement.by_provider == {"CPU": coverage.delegated} and not placement.fallback_ops


def test_fp16_halves_the_weights_turns_fp16_storage_on_and_passes_its_psnr_gate(exports):
    (fp32_dir, _), (fp16_dir, sidecar) = exports["fp32"], exports["fp16"]
    ratio = (fp16_dir / "model.ncnn.bin").stat().st_size / (fp32_dir / "model.ncnn.bin").stat().st_size
    assert 0.4 < ratio < 0.6, ratio
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 50.0 and 1e-6 < sidecar.parity.max_abs <= 5e-2
    assert sidecar.extra["ncnn"]["fp16_storage"] is True
    runner = runtime.load(fp16_dir, backend="ncnn")
    assert runner.net.opt.use_fp16_storage and runner.info.precision == "fp16"
    assert not runtime.load(fp32_dir, backend="ncnn").net.opt.use_fp16_storage  # ncnn's default is on


def test_an_fp16_export_below_its_psnr_bar_fails_and_writes_nothing(tiny_student, tmp_path):
    with pytest.raises(ParityError, match="psnr"):
        export_model(tiny_student, "ncnn", tmp_path / "out", ExportOptions(size=(SIZE, SIZE), precision="fp16",
                                                                         min_psnr_db=150.0))  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_thread_count_reaches_ncnn(exports):
    for threads in (1, 2):
        runner = runtime.load(exports["fp32"][0], backend="ncnn", threads=threads)
        assert runner.info.threads == threads == runner.net.opt.num_threads


def test_without_its_sidecar_or_weights_the_pair_does_not_load(exports, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.ncnn.param", "model.ncnn.bin"):
        shutil.copy(exports["fp32"][0] / name, bare / name)
    with pytest.raises(PocketganError, match=r"carries no I/O spec and its sidecar model\.ncnn\.param\.json is missing"):
        runtime.load(bare / "model.ncnn.param", backend="ncnn")
    (bare / "model.ncnn.bin").unlink()
    with pytest.raises(PocketganError, match=r"model\.ncnn\.bin are missing"):
        runtime.load(bare, backend="ncnn")


def test_a_wrong_input_shape_is_one_line_not_a_crash(exports):
    runner = runtime.load(exports["fp32"][0], backend="ncnn")
    with pytest.raises(PocketganError, match=r"ncnn input must be N×3×32×32; got \(1, 1, 32, 32\)"):
        runner.run(np.zeros((1, 1, SIZE, SIZE), np.float32))


@pytest.mark.parametrize("missing, call", [
    ("pnnx", lambda student, tmp: export_model(student, "ncnn", tmp, ExportOptions(size=(SIZE, SIZE)))),
    ("ncnn", lambda student, tmp: runtime.load(tmp, backend="ncnn")),
])  # fmt: skip
def test_a_missing_extra_is_one_line_naming_it(missing, call, tiny_student, exports, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[ncnn\]"):
        call(tiny_student, exports["fp32"][0])


@pytest.mark.parametrize("arch, size", [("resnet9:ngf=4", 32), ("unet64:ngf=8", 64)])
def test_other_families_convert_and_match_pytorch(arch, size, tmp_path):
    torch.manual_seed(0)
    loaded = load_model(arch)
    sidecar = export_model(loaded, "ncnn", tmp_path, ExportOptions(size=(size, size)))
    assert sidecar.parity.max_abs <= 1e-4 and coverage_of(sidecar.extra).fallback == 0
    assert_runner_matches_pytorch(runtime.load(tmp_path, backend="ncnn"), loaded, size, seed=5)


def test_rewrites_option_runs_and_is_recorded(tiny_student, tmp_path):
    options = ExportOptions(size=(SIZE, SIZE), format_options={"rewrites": "all"})
    sidecar = export_model(tiny_student, "ncnn", tmp_path, options)
    model = tiny_student.model
    assert sidecar.extra["rewrites"] == {"reflection-pad": modules_of(model, nn.ReflectionPad2d),
                                         "conv-transpose-crop": modules_of(model, nn.ConvTranspose2d),
                                         "instance-norm-decomposed": modules_of(model, nn.InstanceNorm2d)}  # fmt: skip
    assert "InstanceNorm" not in sidecar.extra["ncnn"]["layers"] and sidecar.parity.max_abs <= 1e-4
    with pytest.raises(PocketganError, match="has no option 'rewrite' .*did you mean rewrites"):
        export_model(tiny_student, "ncnn", tmp_path / "x", ExportOptions(size=(SIZE, SIZE), format_options={"rewrite": "all"}))


class _Unconvertible(nn.Module):
    """A convolution followed by two ops pnnx has no ncnn layer for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.cumprod(y, dim=1) * torch.erfinv(y.clamp(-0.5, 0.5))


def test_layers_pnnx_leaves_unconverted_are_fallbacks_and_fail_the_export(tmp_path):
    trace = tmp_path / "m.pt"
    torch.jit.trace(_Unconvertible().eval(), torch.rand(1, 3, 8, 8)).save(str(trace))
    convert_with_pnnx(pnnx.EXEC_PATH, trace, [1, 3, 8, 8], tmp_path / "m.param", tmp_path / "m.bin", fp16=False)
    coverage = ncnn_coverage(read_param(tmp_path / "m.param"))
    assert coverage.fallback == 2 and coverage.by_op == {"aten::erfinv": 1, "torch.cumprod": 1}
    assert coverage.delegated == 3  # Convolution, Clip, BinaryOp (mul)
    with pytest.raises(PocketganError, match=r"ncnn cannot run what pnnx left unconverted: ncnn 3/5 layers, 2 fallback"):
        export_model(wrap(_Unconvertible()), "ncnn", tmp_path / "out", ExportOptions(size=(8, 8)))
    assert not (tmp_path / "out").exists()


def test_a_single_cli_export_prints_its_coverage_line(cli, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--format", "ncnn", "-p", "fp16", "-o", tmp_path, "--size", str(SIZE))
    assert result.code == 0, result.err
    layers = sum(json.loads((tmp_path / "model.ncnn.param.json").read_text())["extra"]["ncnn"]["layers"].values())
    assert f"delegation: ncnn {layers}/{layers} layers, no fallback" in result.out


def test_cli_export_shows_coverage_and_bench_runs_it_beside_onnxruntime(cli, bench, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--format", "ncnn,onnx", "-o", tmp_path, "--size", str(SIZE))
    assert result.code == 0, result.err
    assert "delegated" in result.out and "layers" in result.out
    run = bench("pocketgan-bench", tmp_path / "model.ncnn.param", tmp_path / "model.onnx", *FAST)
    assert run.code == 0, run.err
    assert [r["backend"] for r in run.results] == ["ncnn", "ort"]
    assert run.results[0]["elapsed_s"] == run.results[1]["elapsed_s"]  # one timed phase: interleaved
    assert min(len(r["samples_ms"]) for r in run.results) >= 5  # FAST's --iterations, each
    assert run.results[0]["threads"] == 1
    sidecar = json.loads((tmp_path / "model.ncnn.param.json").read_text())
    assert sidecar["extra"]["coverage"]["fallback"] == 0
