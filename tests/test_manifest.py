"""The stage contract: manifests validate, version, and write atomically."""

from __future__ import annotations

import json

import pytest

from pocketgan.core.errors import ManifestError
from pocketgan.core.contract import ArtifactManifest, FORMAT_VERSION, GeneratorSpec, ModelManifest, Parity, Profile, sidecar_path, TensorInfo
from pocketgan.core.fsio import atomic_path


def test_model_manifest_round_trips_through_json(tmp_path):
    manifest = ModelManifest(
        spec=GeneratorSpec("resnet9", {"ngf": 8}, {"model.1": 4}),
        provenance={"method": "prune"},
        profile=Profile(macs=10, params=3, input_shape=[1, 3, 64, 64]),
    )
    manifest.save(tmp_path)
    again = ModelManifest.load(tmp_path)
    assert again == manifest
    assert json.loads((tmp_path / "model.json").read_text())["format_version"] == FORMAT_VERSION


def test_artifact_sidecar_round_trips(tmp_path):
    artifact = tmp_path / "model.onnx"
    sidecar = ArtifactManifest(
        format="onnx",
        file="model.onnx",
        sha256="0" * 64,
        inputs=[TensorInfo("input", ["batch", 3, 64, 64])],
        outputs=[TensorInfo("output", ["batch", 3, 64, 64])],
        parity=Parity(max_abs=1e-6, mean_abs=1e-7, psnr_db=120.0, atol=1e-4, samples=2, passed=True),
    )
    sidecar.save(artifact)
    assert sidecar_path(artifact).name == "model.onnx.json"
    assert ArtifactManifest.for_artifact(artifact) == sidecar
    assert ArtifactManifest.for_artifact(tmp_path / "other.onnx") is None


@pytest.mark.parametrize(
    "payload, message",
    [
        ([], "JSON object"),
        ({"format_version": 1}, "missing spec"),
        ({"format_version": 99, "spec": {"arch": "x"}}, "newer than this pocketgan"),
        ({"spec": {"arch": "x", "widths": {"a": -1}}}, "positive integers"),
    ],
)
def test_invalid_manifests_are_rejected_with_a_reason(payload, message):
    with pytest.raises(ManifestError, match=message):
        ModelManifest.from_dict(payload)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]
