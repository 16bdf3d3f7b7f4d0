"""ORT mobile format: a real ``convert_onnx_models_to_ort`` conversion, loaded back here; metadata inside artifacts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.core.contract import IOSpec
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import wrap
from runner_parity import assert_runner_matches_pytorch

SIZE = 32


class Half(nn.Module):
    """``x / 2``: its pixels differ between value conventions, so a wrong I/O spec shows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


@pytest.fixture(scope="module")
def ort_export(tiny_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("ort")
    sidecar = export_model(tiny_student, "ort", out, ExportOptions(size=(SIZE, SIZE)))
    return out, sidecar


def test_ort_conversion_writes_the_mobile_format_and_its_operator_config(ort_export):
    out, sidecar = ort_export
    assert sorted(p.name for p in out.iterdir()) == ["model.ort", "model.ort.json", "model.required_operators.config"]
    assert (out / "model.ort").read_bytes()[4:8] == b"ORTM"  # the ORT flatbuffer's file identifier, not protobuf
    config = (out / "model.required_operators.config").read_text()
    assert any(line.startswith("ai.onnx;") and "Conv" in line.split(";")[2].split(",") for line in config.splitlines())
    assert "ai.onnx:Conv" in sidecar.extra["ort"]["operators"]
    assert sidecar.format == "ort" and sidecar.parity.passed and sidecar.parity.max_abs <= 1e-4
    assert sidecar.extra["companions"]["model.required_operators.config"]


def test_the_ort_file_runs_here_and_matches_pytorch(ort_export, tiny_student):
    out, _ = ort_export
    runner = runtime.load(out / "model.ort")
    assert runner.backend == "ort" and runner.input_shape == [1, 3, SIZE, SIZE]
    assert_runner_matches_pytorch(runner, tiny_student, SIZE, seed=1)
    assert runtime.load(out).info.name == str(out)  # an export directory holding only model.ort


def test_int8_ort_keeps_the_quantized_graph_and_passes_its_gate(tiny_student, tmp_path):
    sidecar = export_model(tiny_student, "ort", tmp_path, ExportOptions(size=(SIZE, SIZE), precision="int8"))
    ops = sidecar.extra["ort"]["operators"]
    assert "ai.onnx:QuantizeLinear" in ops or "com.microsoft:QLinearConv" in ops or "ai.onnx:QLinearConv" in ops, ops
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 25.0


@pytest.mark.parametrize("fmt, artifact", [("onnx", "model.onnx"), ("ort", "model.ort")])
def test_a_bare_artifact_without_its_sidecar_translates_with_the_embedded_spec(tmp_path, fmt, artifact):
    spec = IOSpec.from_value_range(0.0, 1.0, channel_order="BGR", size_multiple=1)
    export_model(wrap(Half(), spec), fmt, tmp_path / "export", ExportOptions(size=(SIZE, SIZE)))
    bare = tmp_path / "device" / artifact
    bare.parent.mkdir()
    shutil.copy(tmp_path / "export" / artifact, bare)  # no sidecar beside it
    runner = runtime.load(bare)
    assert runner.info.manifest is None and runner.info.warnings == []
    assert runner.io.value_range == (0.0, 1.0) and runner.io.channel_order == "BGR"
    assert runner.io.fixed_size == (SIZE, SIZE)
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    # [0, 1] in and out: x / 2 halves each pixel (the [-1, 1] default would give p / 2 + 63.75)
    np.testing.assert_allclose(runner.translate(image).astype(float), image / 2.0, atol=1.0)


def test_embedded_metadata_carries_spec_profile_and_provenance(tiny_student, tmp_path):
    onnx = pytest.importorskip("onnx")
    export_model(tiny_student, "onnx", tmp_path, ExportOptions(size=(SIZE, SIZE)))
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    io = json.loads(props["pocketgan.io"])
    assert io["fixed_size"] == [SIZE, SIZE] and io["scale"] == pytest.approx(1 / 127.5) and io["offset"] == -1.0
    assert json.loads(props["pocketgan.inputs"]) == [{"name": "input", "shape": [1, 3, SIZE, SIZE], "dtype": "float32"}]
    profile = json.loads(props["pocketgan.profile"])
    assert profile["params"] == sum(p.numel() for p in tiny_student.model.parameters())
    assert profile["macs"] > 0 and profile["input_shape"] == [1, 3, SIZE, SIZE]
    provenance = json.loads(props["pocketgan.provenance"])
    assert provenance["spec"]["arch"] == "mobile-resnet" and json.loads(props["pocketgan.precision"]) == "fp32"
