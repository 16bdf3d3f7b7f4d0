"""ONNX at reduced precision: fp16 (fp32 I/O) and int8 static QDQ, run in real onnxruntime sessions."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pocketgan.export import ExportOptions, export_model
from pocketgan.export.samples import synthetic_inputs
from pocketgan.models import load_model


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def psnr_vs_pytorch(path, model, size: tuple[int, int], seed: int = 11) -> float:
    """PSNR (dB, range [-1, 1]) of the artifact against PyTorch on inputs the export never saw."""
    batch = synthetic_inputs(model.io, 3, size, seed=seed).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"input": x[None]})[0] for x in batch])
    with torch.no_grad():
        want = model(torch.from_numpy(batch)).numpy()
    return float(10 * np.log10(4.0 / np.mean((got - want) ** 2)))


def op_types(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_fp16_keeps_float32_io_and_stores_half_weights(tmp_path):
    loaded = load_model("resnet9:ngf=4")
    manifest = export_model(loaded, "onnx", tmp_path, ExportOptions(size=(64, 64), precision="fp16"))
    assert manifest.precision == "fp16" and "float16" in manifest.exporter
    assert manifest.parity.passed and manifest.parity.atol == 5e-2
    assert manifest.extra["parity_rule"] == "max_abs <= 0.05 and psnr_db >= 50"
    assert 1e-5 < manifest.parity.max_abs <= 1e-2  # really half precision: not fp32-exact
    assert 50 <= manifest.parity.psnr_db < 100
    model = onnx.load(str(tmp_path / "model.onnx"))
    weights = [t for t in model.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == sess.get_outputs()[0].type == "tensor(float)"
    assert psnr_vs_pytorch(tmp_path / "model.onnx", loaded.model, (64, 64)) > 55


def test_int8_is_a_calibrated_qdq_graph_judged_by_psnr(cli, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--out", tmp_path, "--size", "64", "64", "--precision", "int8",
                 "--calibration-samples", "4", "--dynamic-batch")  # fmt: skip
    assert result.code == 0, result.err
    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    assert sidecar["precision"] == "int8" and sidecar["extra"]["parity_rule"] == "psnr_db >= 25"
    assert sidecar["extra"]["int8"]["calibration"] == {"source": "synthetic inputs", "samples": 4}
    assert 25 <= sidecar["parity"]["psnr_db"] < 60  # quantized: close, but visibly not exact
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= op_types(tmp_path / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]  # one file, no scratch
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.zeros((3, 3, 64, 64), np.float32)})[0].shape == (3, 3, 64, 64)


def test_int8_calibrates_on_images_from_a_directory(cli, tmp_path):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        gradient = np.linspace(0, 255, 40, dtype=np.float32)[None, :, None] * rng.uniform(0.3, 1.0, (1, 1, 3))
        noise = rng.normal(0, 12, (36, 40, 3))
        cv2.imwrite(str(images / f"{i}.png"), np.clip(gradient + noise, 0, 255).astype(np.uint8))
    torch.manual_seed(0)
    model = load_model("resnet9:ngf=4").model
    torch.manual_seed(0)
    out = tmp_path / "out"
    result = cli("export", "resnet9:ngf=4", "--out", out, "--size", "32", "32", "--precision", "int8",
                 "--calibration", images)  # fmt: skip
    assert result.code == 0, result.err
    calibration = json.loads((out / "model.onnx.json").read_text())["extra"]["int8"]["calibration"]
    assert calibration == {"source": str(images), "samples": 3}
    assert psnr_vs_pytorch(out / "model.onnx", model, (32, 32)) > 20


def test_int8_below_the_psnr_bar_writes_nothing(cli, tmp_path):
    result = cli("export", "resnet9:ngf=4,n_blocks=1", "--out", tmp_path / "out", "--size", "32", "32",
                 "--precision", "int8", "--calibration-samples", "2", "--min-psnr", "90")  # fmt: skip
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "psnr_db >= 90" in lines[0] and "PSNR" in lines[0]
    assert not (tmp_path / "out").exists()
