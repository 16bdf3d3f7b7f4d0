"""Device formats: CoreML (.mlpackage; prediction only on macOS) and TensorRT (engine; needs a GPU)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from pocketgan.export import ExportOptions, artifact_sha256, export_model
from pocketgan.models import load_model

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def test_coreml_writes_an_ml_program_package(cli, tmp_path):
    ct = pytest.importorskip("coremltools", reason="coremltools is not installed (pocketgan[coreml])")
    result = cli("export", "resnet9:ngf=4", "--format", "coreml", "-o", tmp_path, "--size", "64",
                 "--precision", "fp16", "--dynamic-batch", "--max-batch", "4")  # fmt: skip
    assert result.code == 0, result.err
    package = tmp_path / "model.mlpackage"
    assert package.is_dir() and (package / "Manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mlpackage", "model.mlpackage.json"]
    sidecar = json.loads((tmp_path / "model.mlpackage.json").read_text())
    assert sidecar["format"] == "coreml" and sidecar["precision"] == "fp16" and "coremltools" in sidecar["exporter"]
    assert sidecar["sha256"] == artifact_sha256(package)
    assert sidecar["inputs"][0] == {"name": "input", "shape": ["batch", 3, 64, 64], "dtype": "float32"}
    if sys.platform != "darwin":
        assert sidecar["parity"] is None and sidecar["extra"]["parity"].startswith("not measured on this host")
    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert [i.name for i in spec.description.input] == ["input"] and [o.name for o in spec.description.output] == [
        "output"
    ]
    batch_range = spec.description.input[0].type.multiArrayType.shapeRange.sizeRanges[0]
    assert (batch_range.lowerBound, batch_range.upperBound) == (1, 4)


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML prediction (the parity check) runs only on macOS")
def test_coreml_parity_is_measured_on_macos(tmp_path):
    manifest = export_model(load_model("resnet9:ngf=4"), "coreml", tmp_path, ExportOptions(size=(64, 64)))
    assert manifest.parity is not None and manifest.parity.passed and manifest.parity.max_abs <= 1e-4


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the missing-dependency path cannot run")
def test_tensorrt_without_the_package_is_one_clean_line(cli, tmp_path):
    result = cli("export", "resnet9:ngf=4", "--format", "tensorrt", "-o", tmp_path / "out", "--size", "32")
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1, result.err
    assert lines[0] == (
        "error: tensorrt is needed for building TensorRT engines: install pocketgan[tensorrt] "
        "(pip install 'pocketgan[tensorrt]')"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.tensorrt
@pytest.mark.skipif(
    not (HAS_TENSORRT and torch.cuda.is_available()),
    reason="needs the TensorRT Python package (pocketgan[tensorrt]) and an NVIDIA GPU",
)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_builds_an_engine_that_matches_pytorch(tmp_path, precision):
    manifest = export_model(
        load_model("resnet9:ngf=4"), "tensorrt", tmp_path,
        ExportOptions(size=(64, 64), precision=precision, dynamic_batch=True, max_batch=4),
    )  # fmt: skip
    assert (tmp_path / "model.engine").stat().st_size > 0 and manifest.parity.passed
    assert manifest.inputs[0].shape == ["batch", 3, 64, 64] and manifest.extra["tensorrt"]["max_batch"] == 4
