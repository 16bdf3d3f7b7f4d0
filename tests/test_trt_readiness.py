"""TensorRT readiness (runs here) and the TensorRT build settings that need no GPU; the build itself is marked."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from pocketgan.core.errors import PocketganError
from pocketgan.export import ExportOptions
from pocketgan.export.tensorrt import TensorRTSettings, calibration_batches, check_readiness
from pocketgan.export.trt_readiness import check_graph
from pocketgan.models import load_model

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def hand_built(nodes, inputs=("x",), initializers=(), opset=17, dims=(1, 3, 8, 8)):
    """A small graph from ``nodes`` with float inputs of ``dims`` and one output ``y``."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(dims)) for n in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(initializers),
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_an_unsupported_op_and_a_trap_are_named_with_the_node():
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [3], [1.0] * 3)
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [0.0] * 3)
    model = hand_built([
        helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["n"], name="norm1"),
        helper.make_node("Unique", ["n"], ["y"], name="uniq"),
    ], initializers=[scale, bias])  # fmt: skip
    report = check_graph(model, precision="fp16")
    assert not report.ready
    assert [(f.level, f.node, f.op) for f in report.of("fail")] == [("fail", "uniq", "Unique")]
    assert [(f.node, f.op) for f in report.of("trap")] == [("norm1", "InstanceNormalization")]
    assert report.fp32_layers == ["norm1"]
    assert report.verdict().startswith("TensorRT 10.x readiness (fp16): NOT ready, 1 nodes would fail (Unique")
    assert check_graph(model, precision="fp32").of("trap") == []  # FP16 traps only under fp16/int8


def test_resize_modes_conv_transpose_padding_and_custom_domains():
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 3, 3], [0.1] * 81)
    roi = helper.make_tensor("roi", TensorProto.FLOAT, [0], [])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    model = hand_built([
        helper.make_node("Resize", ["x", "roi", "scales"], ["r"], name="cubic", mode="cubic"),
        helper.make_node("ConvTranspose", ["r", "w"], ["t"], name="up", strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 1]),
        helper.make_node("ConvTranspose", ["t", "w"], ["a"], name="skew", pads=[0, 0, 1, 1]),
        helper.make_node("FusedConv", ["a", "w"], ["y"], name="ms", domain="com.microsoft"),
    ], initializers=[w, roi, scales])  # fmt: skip
    report = check_graph(model)
    fails = {f.node: f.message for f in report.of("fail")}
    assert set(fails) == {"cubic", "ms"} and "'cubic'" in fails["cubic"] and "plugin" in fails["ms"]
    fallbacks = {f.node: f.message for f in report.of("fallback")}
    assert "output_padding [1, 1]" in fallbacks["up"] and "asymmetric pads [0, 0, 1, 1]" in fallbacks["skew"]


def test_dynamic_dims_int64_beyond_int32_nonzero_zero_points_and_old_opsets():
    big = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 2**40])
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [3])
    model = hand_built([
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dequant"),
        helper.make_node("Reshape", ["d", "shape"], ["y"], name="flat"),
    ], initializers=[big, scale, zero], dims=("batch", 3, 8, 8), opset=8)  # fmt: skip
    report = check_graph(model)
    lines = [f.line() for f in report.findings]
    assert any("opset 8 is outside TensorRT 10.x's range 9-24" in line for line in lines)
    assert {f.node for f in report.of("fail") if "zero point must be 0" in f.message} == {"quant", "dequant"}
    assert any(f.node == "flat" and "beyond int32" in f.message for f in report.of("trap"))
    assert any(f.node == "x" and "dynamic dimensions batch" in f.message for f in report.of("trap"))
    assert not any("dynamic" in f.message for f in check_graph(model, profiles=True).findings)


@pytest.mark.parametrize("arch", ["resnet9:ngf=4", "mobile-resnet:ngf=4", "unet64:ngf=4,upsample=resize"])
def test_real_exported_pix2pix_generators_are_ready_with_their_traps_named(arch):
    result = check_readiness(load_model(arch), ExportOptions(size=(64, 64), precision="fp16"))
    report = result.report
    assert report.ready, report.verdict()
    assert report.ops.get("Conv", 0) > 0
    assert (report.ops.get("InstanceNormalization", 0) > 0) == arch.startswith(("resnet", "mobile"))  # U-Net: BN folded
    pinned = [f.node for f in report.of("trap") if f.op == "InstanceNormalization"]
    assert len(pinned) == report.ops.get("InstanceNormalization", 0) and set(pinned) <= set(report.fp32_layers)
    transposed = [f for f in report.of("fallback") if f.op == "ConvTranspose"]
    if "upsample=resize" in arch:  # resize-conv upsampling: no transposed convolution at all
        assert "ConvTranspose" not in report.ops and "Resize" in report.ops and not transposed
    else:  # pix2pix's ConvTranspose2d(k3, s2, p1, output_padding=1): each named
        assert len(transposed) == report.ops["ConvTranspose"] > 0
    command = result.settings.trtexec_line()
    assert "--fp16" in command and ("--precisionConstraints=obey" in command) == bool(report.fp32_layers)
    assert all(f"{name}:fp32" in command for name in report.fp32_layers)


def test_check_only_cli_prints_the_verdict_and_writes_the_report(cli, tmp_path):
    result = cli("export", "resnet9:ngf=4", "--format", "tensorrt", "--check-only", "-o", tmp_path, "--size", "32",
                 "-p", "fp16", "--dynamic-batch", "--max-batch", "4")  # fmt: skip
    assert result.code == 0, result.err
    assert "TensorRT 10.x readiness (fp16): ready" in result.out
    assert "--minShapes=input:1x3x32x32 --optShapes=input:1x3x32x32 --maxShapes=input:4x3x32x32" in result.out
    report = json.loads((tmp_path / "tensorrt_readiness.json").read_text())
    assert report["ready"] and report["tensorrt"]["profile"]["max"] == [4, 3, 32, 32]
    assert not (tmp_path / "model.engine").exists()
    checked = onnx.load(str(tmp_path / "tensorrt.onnx"))  # the graph the printed trtexec line builds
    assert "--onnx=tensorrt.onnx" in result.out and check_graph(checked, precision="fp16").ready


def test_check_only_on_a_bad_onnx_file_exits_one(cli, tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(hand_built([helper.make_node("Unique", ["x"], ["y"], name="u")]), str(path))
    result = cli("export", path, "--format", "tensorrt", "--check-only", "-o", tmp_path / "out")
    assert result.code == 1 and "fail     u (Unique)" in result.out and "NOT ready" in result.out
    assert "--shapes=input:1x3x8x8" in result.out  # the file's own input geometry
    wrong = cli("export", path, "--format", "onnx", "--check-only", "-o", tmp_path / "out")
    assert wrong.code == 2 and "--check-only applies to --format tensorrt" in wrong.err


def settings(**options):
    opts = ExportOptions(size=(64, 64), precision=options.pop("precision", "fp32"),
                         dynamic_batch=options.pop("dynamic", False), max_batch=options.pop("max_batch", 8))  # fmt: skip
    return TensorRTSettings.from_options(opts, (64, 64), 3, options)


def test_profiles_and_the_trtexec_command_line():
    s = settings(precision="int8", dynamic=True, max_batch=8, opt_batch=4, min_size=32, max_size="128x96",
                 workspace_mb=2048, calibration_cache="/c/cal.cache", timing_cache="/c/timing.cache")  # fmt: skip
    assert s.profile_shapes() == ((1, 3, 32, 32), (4, 3, 64, 64), (8, 3, 128, 96)) and s.dynamic_size
    assert s.trtexec_command() == [
        "trtexec", "--onnx=model.onnx", "--saveEngine=model.engine", "--memPoolSize=workspace:2048M",
        "--builderOptimizationLevel=3", "--minShapes=input:1x3x32x32", "--optShapes=input:4x3x64x64",
        "--maxShapes=input:8x3x128x96", "--fp16", "--int8", "--calib=cal.cache", "--timingCacheFile=timing.cache",
    ]  # fmt: skip
    static = settings()
    assert not static.dynamic and static.trtexec_command()[-1] == "--shapes=input:1x3x64x64"


@pytest.mark.parametrize("options, message", [
    ({"opt_batch": 4}, "min_batch <= opt_batch <= max_batch"),
    ({"min_size": 128}, "min_size 128x128 <= 64x64"),
    ({"workspace_mb": 0}, "workspace_mb must be at least 1"),
    ({"optimization_level": 7}, "optimization_level must be 0-5"),
    ({"worksapce_mb": 1}, "no option 'worksapce_mb' (did you mean workspace_mb?)"),
    ({"opt_batch": "four"}, "opt_batch must be an integer"),
])  # fmt: skip
def test_bad_options_are_one_line(options, message):
    with pytest.raises(PocketganError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        settings(**options)


def test_calibration_batches_are_full_contiguous_and_in_order():
    images = np.arange(10 * 3 * 2 * 2, dtype=np.float64).reshape(10, 3, 2, 2)
    batches = list(calibration_batches(images, 4))
    assert [b.shape[0] for b in batches] == [4, 4]  # the remainder (2) is dropped
    assert all(b.dtype == np.float32 and b.flags["C_CONTIGUOUS"] for b in batches)
    assert np.array_equal(np.concatenate(batches), images[:8].astype(np.float32))
    with pytest.raises(PocketganError, match="at least 4 images"):
        list(calibration_batches(images[:3], 4))


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_a_bad_option_is_reported_before_the_missing_package(cli, tmp_path):
    result = cli("export", "resnet9:ngf=4", "--format", "tensorrt", "-o", tmp_path / "o", "--size", "32",
                 "--option", "opt_batch=2")  # fmt: skip
    assert result.code == 2 and "min_batch <= opt_batch <= max_batch" in result.err
    assert not (tmp_path / "o").exists()


def test_the_runtime_backend_without_tensorrt_is_one_line(tmp_path):
    from pocketgan.runtime import load

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    if HAS_TENSORRT:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(PocketganError, match="needs an NVIDIA GPU and TensorRT"):
        load(engine, backend="tensorrt")


@pytest.mark.tensorrt
@pytest.mark.skipif(not (HAS_TENSORRT and torch.cuda.is_available()),
                    reason="needs the TensorRT Python package (pocketgan[tensorrt]) and an NVIDIA GPU")  # fmt: skip
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_with_a_resolution_profile_runs_in_the_runtime_backend(tmp_path, precision):
    from pocketgan.export import export_model
    from pocketgan.runtime import load

    options = ExportOptions(size=(64, 64), precision=precision, dynamic_batch=True, max_batch=2,
                            format_options={"min_size": 32, "max_size": 128, "timing_cache": str(tmp_path / "t.cache")})  # fmt: skip
    manifest = export_model(load_model("resnet9:ngf=4"), "tensorrt", tmp_path, options)
    assert manifest.parity.passed and (tmp_path / "t.cache").stat().st_size > 0
    assert manifest.extra["tensorrt"]["profile"]["max"] == [2, 3, 128, 128]
    assert manifest.extra["tensorrt"]["trtexec"].startswith("trtexec --onnx=model.onnx")
    runner = load(tmp_path / "model.engine", backend="tensorrt")
    assert runner.run(np.zeros((2, 3, 96, 96), np.float32)).shape == (2, 3, 96, 96)


def test_format_all_puts_the_readiness_verdict_in_the_tensorrt_row(tmp_path, capsys):
    from pocketgan.commands.export_summary import FAILED, export_formats

    outcomes = export_formats(load_model("resnet9:ngf=4"), ["onnx", "tensorrt"], tmp_path,
                              ExportOptions(size=(32, 32)), latency=False)  # fmt: skip
    trt = outcomes[1]
    if HAS_TENSORRT:
        pytest.skip("TensorRT is installed here")
    assert trt.status == FAILED and trt.host_limited
    assert "cannot build here" in trt.reason and "TensorRT 10.x readiness (fp32): ready" in trt.reason
