"""LiteRT (TFLite): real litert-torch conversions (fp32, fp16 weights, PT2E int8, NHWC), LiteRT's interpreter with
XNNPACK, delegation coverage before and after the rewrites, the required rewrite, a bare ``.tflite``, CLI + bench.

The conversion tests need ``pocketgan[litert]``, which does not share a venv with executorch: they are marked
``litert`` and run in ``.venv-litert`` (``.ci/litert-venv``, then
``.venv-litert/bin/python -m pytest -p no:xdist -m litert tests/test_tflite.py``); elsewhere they skip.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.runtime.registry import pick_backend
from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import MissingDependencyError, PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import load_model, save_model, wrap
from runner_parity import assert_runner_matches_pytorch

SIZE = 32
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "50", "--threads", "1")
litert = pytest.mark.litert
needs_litert = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="needs pocketgan[litert] (litert-torch, ai-edge-litert): run in .venv-litert (.ci/litert-venv)",
)


def _export(loaded, out, precision="fp32", size=SIZE, **format_options):
    options = ExportOptions(size=(size, size), precision=precision, calibration_samples=8,
                            format_options=format_options)
    return export_model(loaded, "tflite", out, options)


@pytest.fixture(scope="module")
def exports(tiny_student, tmp_path_factory):
    """``{precision: (directory, sidecar)}`` of tiny Mobile ResNet exports with the default rewrites."""
    root = tmp_path_factory.mktemp("tflite")
    return {p: (root / p, _export(tiny_student, root / p, p)) for p in ("fp32", "fp16", "int8")}


def _ops(path) -> dict[str, int]:
    """Op type counts of the flatbuffer's own graph, read with LiteRT's interpreter without any delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=plain)
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


@litert
@needs_litert
def test_fp32_matches_pytorch_within_1e4_with_xnnpack(exports, tiny_student):
    out, sidecar = exports["fp32"]
    assert sorted(p.name for p in out.iterdir()) == ["model.tflite", "model.tflite.json"]
    assert sidecar.format == "tflite" and sidecar.parity.max_abs <= 1e-4
    runner = runtime.load(out, backend=pick_backend(out), threads=1)  # tflite, by the suffix
    assert runner.backend == "tflite" and runner.providers == ["XNNPACK"] and runner.input_shape == [1, 3, SIZE, SIZE]
    assert_runner_matches_pytorch(runner, tiny_student, SIZE, seed=3)


@litert
@needs_litert
def test_default_rewrites_run_and_xnnpack_takes_all_but_the_wide_concats(exports):
    _, sidecar = exports["fp32"]
    # Mobile ResNet ngf 4: 2 output-padded deconvolutions, 20 reflection pads, 41 instance norms
    assert sidecar.extra["rewrites"] == {"conv-transpose-crop": 2, "reflection-pad": 20, "instance-norm-decomposed": 41}
    coverage = sidecar.extra["coverage"]
    assert coverage["backend"] == "XNNPACK" and coverage["delegated"] > 400
    # XNNPACK takes concatenations of up to 5 inputs: the two 3-wide pads (7 inputs along W and H) stay on the CPU
    assert coverage["by_op"] == {"CONCATENATION": 4} and coverage["fallback"] == 4 and coverage["islands"] == 5
    assert "MIRROR_PAD" not in _ops(exports["fp32"][0] / "model.tflite")


@litert
@needs_litert
def test_without_reflection_pad_rewrite_mirror_pads_split_the_graph(tiny_student, tmp_path):
    sidecar = _export(tiny_student, tmp_path, rewrites="conv-transpose-crop")
    coverage = sidecar.extra["coverage"]
    assert sidecar.extra["rewrites"] == {"conv-transpose-crop": 2}
    assert coverage["by_op"] == {"MIRROR_PAD": 20} and coverage["islands"] == 21
    assert _ops(tmp_path / "model.tflite")["MIRROR_PAD"] == 20


@litert
@needs_litert
def test_without_conv_transpose_crop_the_conversion_fails_naming_the_rewrite(tiny_student, tmp_path):
    with pytest.raises(PocketganError, match=r"ConvTranspose2d with output_padding .*keep the conv-transpose-crop"):
        _export(tiny_student, tmp_path / "out", rewrites="none")
    assert not (tmp_path / "out").exists()


@litert
@needs_litert
def test_fp16_stores_fp16_weights_and_passes_its_psnr_gate(exports):
    (fp32_dir, _), (fp16_dir, sidecar) = exports["fp32"], exports["fp16"]
    fp32_ops, fp16_ops = _ops(fp32_dir / "model.tflite"), _ops(fp16_dir / "model.tflite")
    # one DEQUANTIZE per convolution weight (22 CONV_2D + 18 depthwise + 2 transposed), none in the fp32 graph
    assert "DEQUANTIZE" not in fp32_ops and fp16_ops["DEQUANTIZE"] == 42
    assert (fp16_dir / "model.tflite").stat().st_size < (fp32_dir / "model.tflite").stat().st_size
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 50.0 and sidecar.parity.max_abs <= 5e-2


@litert
@needs_litert
def test_int8_is_pt2e_quantized_and_passes_its_psnr_gate(exports):
    out, sidecar = exports["int8"]
    ops = _ops(out / "model.tflite")
    assert ops.get("QUANTIZE", 0) >= 1 and ops.get("DEQUANTIZE", 0) >= 1
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    int8_tensors = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8]
    assert len(int8_tensors) > 40  # weights and activations of the convolutions
    source = interpreter.get_input_details()[0]  # the converter folds the first quantize into an int8 input
    scale, zero_point = source["quantization"]
    assert source["dtype"] == np.int8 and zero_point == 0 and scale == pytest.approx(2 / 255, rel=0.02)  # [-1, 1]
    assert sidecar.extra["tflite"]["io_dtypes"] == {"input": "int8", "output": "float32"}
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 25.0
    assert sidecar.extra["int8"]["calibration"] == {"source": "synthetic inputs", "samples": 8}
    # the default rewrites of int8 keep InstanceNorm whole (its decomposed form quantizes badly)
    assert sidecar.extra["rewrites"] == {"conv-transpose-crop": 2, "reflection-pad": 20}
    assert sidecar.extra["coverage"]["delegated"] > 0


@litert
@needs_litert
def test_unet_converts_and_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    unet = load_model("unet64:ngf=8")
    sidecar = _export(unet, tmp_path, size=64)  # U-Net 64 needs multiples of 64
    assert sidecar.parity.max_abs <= 1e-4 and sidecar.extra["coverage"]["fallback"] == 0
    assert_runner_matches_pytorch(runtime.load(tmp_path / "model.tflite", backend="tflite", threads=1), unet, 64, seed=5)


@litert
@needs_litert
def test_a_bare_tflite_carries_its_spec_and_translates_with_it(tmp_path):
    spec = IOSpec.from_value_range(0.0, 1.0, channel_order="BGR", size_multiple=1)
    _export(wrap(_Half(), spec), tmp_path / "export")
    device = tmp_path / "device"
    device.mkdir()
    shutil.copy(tmp_path / "export" / "model.tflite", device / "model.tflite")  # no sidecar
    runner = runtime.load(device / "model.tflite", backend="tflite")
    assert runner.info.manifest is None and runner.info.warnings == []
    assert runner.io.value_range == (0.0, 1.0) and runner.io.channel_order == "BGR" and runner.io.fixed_size == (SIZE, SIZE)
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(runner.translate(image).astype(float), image / 2.0, atol=1.0)


@litert
@needs_litert
def test_cli_exports_nhwc_and_pocketgan_bench_runs_it(cli, bench, tiny_student, tmp_path):
    save_model(tiny_student.model, tmp_path / "student")
    res = cli("export", tmp_path / "student", "--format", "tflite", "--size", str(SIZE), "--option", "layout=nhwc",
              "-o", tmp_path)  # fmt: skip
    assert res.code == 0, res.err
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, SIZE, SIZE, 3]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, SIZE, SIZE, 3]
    sidecar = json.loads((tmp_path / "model.tflite.json").read_text())
    assert sidecar["extra"]["tflite"]["layout"] == "nhwc" and sidecar["parity"]["max_abs"] <= 1e-4
    runner = runtime.load(tmp_path / "model.tflite", backend="tflite", threads=1)
    assert runner.layout == "nhwc" and runner.input_shape == [1, 3, SIZE, SIZE]  # NCHW in, as every backend
    assert_runner_matches_pytorch(runner, tiny_student, SIZE, seed=7)
    run = bench("pocketgan-bench", tmp_path / "model.tflite", *FAST)
    assert run.code == 0, run.err
    result = run.results[0]
    assert result["backend"] == "tflite" and result["providers"] == ["XNNPACK"] and len(result["samples_ms"]) >= 5
    assert result["placement"]["by_provider"]["XNNPACK"] > 0


@litert
@needs_litert
def test_unknown_layout_is_one_line(tiny_student, tmp_path):
    with pytest.raises(PocketganError, match="tflite layout must be nchw or nhwc; got 'nwhc'"):
        _export(tiny_student, tmp_path, layout="nwhc")


def test_without_litert_torch_the_export_names_the_extra(tiny_student, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # import litert_torch now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[litert\]"):
        _export(tiny_student, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_without_ai_edge_litert_the_backend_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(MissingDependencyError, match=r"install pocketgan\[litert\]"):
        runtime.load(tmp_path / "model.tflite", backend="tflite")


class _Half(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5
