"""`pocketgan compare`: real onnxruntime sessions on tiny exported generators."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from pocketgan.export import ExportOptions, export_model
from pocketgan.export.compare import error_stats, first_divergence
from pocketgan.models import create_generator, load_model, save_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A seeded mobile-resnet:ngf=4 model directory and its fp32 and fp16 ONNX exports at 32 px."""
    root = tmp_path_factory.mktemp("compare")
    torch.manual_seed(0)
    save_model(create_generator("mobile-resnet", ngf=4), root / "model")
    loaded = load_model(root / "model")
    for precision in ("fp32", "fp16"):
        export_model(loaded, "onnx", root / precision, ExportOptions(size=(32, 32), precision=precision))
    return root


def perturbed_copy(source, dest, conv_index: int) -> str:
    """``source`` with 0.5 added to the weights of its ``conv_index``-th Conv; returns that node's output name."""
    model = onnx.load(str(source))
    conv = [n for n in model.graph.node if n.op_type == "Conv"][conv_index]
    weights = next(t for t in model.graph.initializer if t.name == conv.input[1])
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) + np.float32(0.5), weights.name))
    onnx.save(model, str(dest))
    return conv.output[0]


def test_identical_artifacts_pass_with_zero_error(cli, exported):
    result = cli("compare", exported / "fp32" / "model.onnx", exported / "fp32")
    assert result.code == 0, result.err
    assert "max abs 0, mean 0" in result.out and "PASS" in result.out


def test_the_pytorch_model_and_its_export_agree(cli, exported):
    result = cli("compare", exported / "model", exported / "fp32" / "model.onnx", "--atol", "1e-4")
    assert result.code == 0, result.out + result.err
    assert "A: " in result.out and "(torch: torch-eager:cpu)" in result.out and "PASS" in result.out


def test_fp16_reports_a_small_nonzero_error_and_fails_the_default_tolerance(cli, exported):
    strict = cli("compare", exported / "fp32" / "model.onnx", exported / "fp16" / "model.onnx")
    assert strict.code == 1 and "FAIL" in strict.out
    loose = cli("compare", exported / "fp32" / "model.onnx", exported / "fp16" / "model.onnx", "--atol", "0.05")
    assert loose.code == 0 and "PASS" in loose.out
    max_abs = float(loose.out.split("max abs ")[1].split(",")[0])
    psnr = float(loose.out.split("PSNR ")[1].split(" dB")[0])
    assert 0 < max_abs < 0.05 and 50 < psnr < 200


def test_a_perturbed_weight_fails_and_mark_all_names_its_node(cli, exported, tmp_path):
    broken = tmp_path / "broken.onnx"
    tensor = perturbed_copy(exported / "fp32" / "model.onnx", broken, conv_index=3)
    result = cli("compare", exported / "fp32" / "model.onnx", broken, "--mark-all", "--atol", "1e-4")
    assert result.code == 1 and "FAIL" in result.out
    assert f"output {tensor!r}" in result.out, result.out


def test_mark_all_on_fp16_starts_diverging_at_the_first_layers_only_with_a_strict_tolerance(exported):
    feed = {"input": np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)}
    a, b = exported / "fp32" / "model.onnx", exported / "fp16" / "model.onnx"
    loose = first_divergence(a, b, feed, atol=0.05, rtol=0.0)
    assert loose.divergence is None and loose.compared > 20 and loose.shared >= loose.compared
    strict = first_divergence(a, b, feed, atol=1e-7, rtol=0.0)
    assert strict.divergence is not None and strict.divergence.compared <= 3


def test_error_stats_by_hand():
    reference = np.zeros(100, dtype=np.float32)
    candidate = np.arange(100, dtype=np.float32) / 100  # |error| = 0.00 .. 0.99
    stats = error_stats(reference, candidate, atol=0.5, rtol=0.0, data_range=2.0)
    assert stats.max_abs == pytest.approx(0.99) and stats.mean_abs == pytest.approx(0.495)
    assert stats.p90_abs == pytest.approx(0.891) and stats.p99_abs == pytest.approx(0.9801)
    assert stats.failing == 49 and not stats.passed  # 0.51 .. 0.99
    mse = np.mean((np.arange(100) / 100) ** 2)
    assert stats.psnr_db == pytest.approx(10 * np.log10(4 / mse), rel=1e-6)
    assert error_stats(reference, reference).passed and error_stats(reference, reference).psnr_db == 200.0


def test_bad_input_is_one_line(cli, exported, tmp_path):
    result = cli("compare", exported / "fp32" / "model.onnx", exported / "model", "--mark-all")
    assert result.code == 2 and result.err.startswith("error: --mark-all compares two ONNX files")
    shape = cli("compare", exported / "fp32" / "model.onnx", exported / "model", "--size", "64")
    assert shape.code == 2 and "fixed 32x32 input" in shape.err and len(shape.err.strip().splitlines()) == 1


def test_compare_on_a_directory_of_images(cli, exported, tmp_path):
    from pocketgan.imaging import encode_png

    rng = np.random.default_rng(1)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(encode_png(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)))
    result = cli("compare", exported / "model", exported / "fp32", "--input", tmp_path, "--samples", "2",
                 "--atol", "1e-4")  # fmt: skip
    assert result.code == 0, result.err
    assert f"2 images from {tmp_path}" in result.out and "input 3x32x32" in result.out and "PASS" in result.out
