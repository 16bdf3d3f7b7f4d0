"""The stage contract: manifests validate (one line naming the field), version, upgrade and write atomically."""

from __future__ import annotations

import json

import pytest

from pocketgan.core.contract import (
    FORMAT_VERSION,
    ArtifactManifest,
    GeneratorSpec,
    IOSpec,
    ModelManifest,
    Parity,
    Profile,
    TensorInfo,
    sidecar_path,
)
from pocketgan.core.errors import ManifestError
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


# --------------------------------------------------------------------------- malformed files

# What pocketgan wrote before FORMAT_VERSION 2 (value_range + prose normalization), verbatim.
V1_MODEL_JSON = """{"spec": {"arch": "mobile-resnet", "config": {"ngf": 8}, "widths": {"model.1": 5}}, "io":
{"input_channels": 3, "output_channels": 3, "value_range": [-1.0, 1.0], "normalization": "x / 127.5 - 1 (uint8 RGB
to [-1, 1])", "size_multiple": 4, "fixed_size": null}, "provenance": {"method": "omgd", "steps": 500}, "profile":
{"macs": 123, "params": 45, "input_shape": [1, 3, 64, 64], "counter": "fvcore", "convention": "1 fused
multiply-add = 1 MAC; ConvTranspose counted over input positions"}, "weights_sha256": "ab", "format_version": 1,
"kind": "generator"}""".replace("\n", " ")
V1_SIDECAR = """{"format": "onnx", "file": "model.onnx", "sha256": "cd", "inputs": [{"name": "input", "shape":
["batch", 3, 64, 64], "dtype": "float32"}], "outputs": [{"name": "output", "shape": ["batch", 3, 64, 64], "dtype":
"float32"}], "io": {"input_channels": 3, "output_channels": 3, "value_range": [0.0, 1.0], "normalization": "x / 255",
"size_multiple": 4, "fixed_size": [64, 64]}, "precision": "fp32", "exporter": "torch.onnx.export", "opset": 17,
"parity": {"max_abs": 1e-06, "mean_abs": 1e-07, "psnr_db": Infinity, "atol": 0.0001, "samples": 4, "passed": true},
"source": {"model": "x"}, "extra": {"input_size": [64, 64]}, "format_version": 1, "kind": "artifact"}""".replace(
    "\n", " "
)


def test_version_1_files_load_and_are_upgraded(tmp_path):
    (tmp_path / "model.json").write_text(V1_MODEL_JSON)
    manifest = ModelManifest.load(tmp_path)
    assert manifest.spec == GeneratorSpec("mobile-resnet", {"ngf": 8}, {"model.1": 5})
    assert (manifest.io.scale, manifest.io.offset, manifest.io.value_range) == (1 / 127.5, -1.0, (-1.0, 1.0))
    assert (manifest.io.channel_order, manifest.io.layout, manifest.io.interpolation) == ("RGB", "NCHW", "area")
    assert manifest.profile == Profile(macs=123, params=45, input_shape=[1, 3, 64, 64])
    assert manifest.provenance == {"method": "omgd", "steps": 500} and manifest.weights_sha256 == "ab"
    manifest.save(tmp_path)  # rewritten as the current version, and it reads back the same
    written = json.loads((tmp_path / "model.json").read_text())
    assert written["format_version"] == FORMAT_VERSION == 3 and "value_range" not in written["io"]
    assert ModelManifest.load(tmp_path) == manifest

    artifact = tmp_path / "model.onnx"
    sidecar_path(artifact).write_text(V1_SIDECAR)
    sidecar = ArtifactManifest.for_artifact(artifact)
    assert sidecar.io.value_range == (0.0, 1.0) and sidecar.io.scale == 1 / 255 and sidecar.io.fixed_size == (64, 64)
    assert sidecar.inputs == [TensorInfo("input", ["batch", 3, 64, 64])] and sidecar.parity.psnr_db == float("inf")
    assert sidecar.extra == {"input_size": [64, 64]} and sidecar.opset == 17


def v1_model(**changes) -> dict:
    data = json.loads(V1_MODEL_JSON)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        target[key] = value
    return data


def v1_sidecar(**changes) -> dict:
    data = json.loads(V1_SIDECAR)
    data.update(changes)
    return data


MALFORMED_MODELS = [
    ([], "must be a JSON object, got an empty list"),
    ({"format_version": 1}, "missing spec"),
    ({"format_version": 99, "spec": {"arch": "x"}}, "format_version 99 is newer than this pocketgan understands"),
    ({"format_version": "2", "spec": {"arch": "x"}}, "format_version must be a positive integer, got the string '2'"),
    (v1_model(spec__widths=[8, 16]), "spec.widths must be an object mapping names to positive integers or null, got a list of 2 items"),
    (v1_model(spec__widths={"model.1": -1}), "spec.widths.model.1 must be a positive integer, got the number -1"),
    (v1_model(spec__widths={"model.1": 4.5}), "spec.widths.model.1 must be a positive integer, got the number 4.5"),
    (v1_model(spec__widths={"model.1": True}), "spec.widths.model.1 must be a positive integer, got true"),
    (v1_model(spec={"arhc": "resnet9"}), "unknown key spec.arhc (did you mean arch?)"),
    (v1_model(spec={"config": {}}), "spec is missing arch"),
    (v1_model(spec="resnet9"), "spec must be a GeneratorSpec object, got the string 'resnet9'"),
    (v1_model(spec__config=[1]), "spec.config must be an object mapping names to values, got a list of 1 item"),
    (v1_model(io__value_range=5), "io.value_range must be a list of 2 numbers, got the number 5"),
    (v1_model(io__value_range=[1, 1]), "io.value_range must be [low, high] with high > low"),
    (v1_model(io__value_range=[-1, "1"]), "io.value_range[1] must be a number, got the string '1'"),
    (v1_model(io__size_multiple=0), "io.size_multiple must be a positive integer, got the number 0"),
    (v1_model(io__fixed_size=[64]), "io.fixed_size must be a list of 2 positive integers or null, got a list of 1 item"),
    (v1_model(io__chanel_order="RGB"), "unknown key io.chanel_order (did you mean channel_order?)"),
    (v1_model(io="nope"), "io must be an IOSpec object, got the string 'nope'"),
    (v1_model(provenance=["omgd"]), "provenance must be an object mapping names to values, got a list"),
    (v1_model(profile={"macs": 1}), "profile is missing params, input_shape"),
    (v1_model(profile__input_shape=[1, 3, "64"]), "profile.input_shape[2] must be an integer, got the string '64'"),
    (v1_model(weights_sha256=12), "weights_sha256 must be a string or null, got the number 12"),
    (v1_model(kind="artifact"), "kind must be 'generator', got the string 'artifact'"),
    (v1_model(extra=1), "unknown key extra (expected spec, io, provenance"),
    ({"spec": {"arch": "x"}, "format_version": 2, "io": {"value_range": [0, 1]}}, "unknown key io.value_range"),
    ({"spec": {"arch": "x"}, "format_version": 2, "io": {"scale": 0}}, "io.scale must be a positive number, got the number 0"),
    ({"spec": {"arch": "x"}, "format_version": 2, "io": {"channel_order": "rgb"}}, "io.channel_order must be one of 'RGB', 'BGR', got the string 'rgb'"),
    ({"spec": {"arch": "x"}, "format_version": 2, "io": {"layout": "NHWC"}}, "io.layout must be 'NCHW', got the string 'NHWC'"),
    ({"spec": {"arch": "x"}, "format_version": 2, "io": {"interpolation": "bicubic"}}, "io.interpolation must be one of 'area', 'linear', 'cubic', 'nearest', 'lanczos', got the string 'bicubic'"),
]  # fmt: skip

MALFORMED_SIDECARS = [
    (v1_sidecar(inputs="nope"), "inputs must be a list of TensorInfo objects, got the string 'nope'"),
    (v1_sidecar(inputs=[{"name": "input"}]), "inputs[0] is missing shape"),
    (v1_sidecar(inputs=[{"name": "input", "shap": [1]}]), "unknown key inputs[0].shap (did you mean shape?)"),
    (v1_sidecar(outputs=[{"name": "o", "shape": [1, 3, 2.5, 4]}]), "outputs[0].shape[2] must be an integer or a string, got the number 2.5"),
    (v1_sidecar(parity={"max_abs": 0.1, "psnr_db": 40.0}), "parity is missing mean_abs, atol, samples, passed"),
    (v1_sidecar(parity={"max_abs": 0.1, "mean_abs": 0.0, "psnr_db": 40.0, "atol": 1, "samples": 4, "passed": "yes"}), "parity.passed must be true or false, got the string 'yes'"),
    (v1_sidecar(parity=[0.1]), "parity must be a Parity object or null, got a list of 1 item"),
    (v1_sidecar(opset="17"), "opset must be an integer or null, got the string '17'"),
    (v1_sidecar(sha256=None), "sha256 must be a string, got null"),
    (v1_sidecar(extra="x"), "extra must be an object mapping names to values"),
    (v1_sidecar(formats="onnx"), "unknown key formats (did you mean format?)"),
    ({k: v for k, v in json.loads(V1_SIDECAR).items() if k not in ("file", "outputs")}, "missing file, outputs"),
]  # fmt: skip


@pytest.mark.parametrize("payload, message", MALFORMED_MODELS)
def test_malformed_model_json_is_one_line_naming_the_field(tmp_path, payload, message):
    (tmp_path / "model.json").write_text(json.dumps(payload))
    with pytest.raises(ManifestError) as caught:
        ModelManifest.load(tmp_path)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'model.json'}: ") and message in text and "\n" not in text


@pytest.mark.parametrize("payload, message", MALFORMED_SIDECARS)
def test_malformed_sidecar_is_one_line_naming_the_field(tmp_path, payload, message):
    artifact = tmp_path / "model.onnx"
    sidecar_path(artifact).write_text(json.dumps(payload))
    with pytest.raises(ManifestError) as caught:
        ArtifactManifest.for_artifact(artifact)
    text = str(caught.value)
    assert text.startswith(f"{sidecar_path(artifact)}: ") and message in text and "\n" not in text


def test_a_malformed_sidecar_is_one_cli_line(tmp_path):
    """Through the torch-free CLI: ``error: <sidecar>: <field> ...`` and exit code 2, no traceback."""
    import subprocess
    import sys

    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"not really onnx")
    sidecar_path(artifact).write_text(json.dumps(v1_sidecar(inputs="nope")))
    result = subprocess.run([sys.executable, "-m", "pocketgan.runtime.cli", str(artifact)], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {sidecar_path(artifact)}: inputs must be a list of TensorInfo objects, got the string 'nope'"
    ]


def test_io_spec_is_checked_from_python_too():
    assert IOSpec(fixed_size=[64, 48]).fixed_size == (64, 48)  # a list becomes the declared tuple
    assert IOSpec.from_value_range(0, 1) == IOSpec(scale=1 / 255, offset=0.0)
    assert IOSpec().normalization == "x / 127.5 - 1 (uint8 RGB to [-1, 1], NCHW; area resize)"
    assert IOSpec.from_value_range(0, 1, channel_order="BGR").normalization.startswith("x / 255 (uint8 BGR to [0, 1]")
    with pytest.raises(ManifestError, match="^IOSpec: interpolation must be one of 'area'.*got the string 'bilinear'$"):
        IOSpec(interpolation="bilinear")
    with pytest.raises(ManifestError, match="^IOSpec: input_channels must be a positive integer, got the number 0$"):
        IOSpec(input_channels=0)
    with pytest.raises(ManifestError, match="high > low"):
        IOSpec.from_value_range(1, 1)


def test_a_model_directory_written_by_version_1_still_loads_bit_identically(tmp_path):
    """A real model directory whose model.json is in the old format (value_range + prose) reloads as before."""
    import torch

    from pocketgan.models import create_generator, load_model, save_model

    torch.manual_seed(0)
    model = create_generator("mobile-resnet", ngf=4).eval()
    save_model(model, tmp_path, provenance={"method": "test"})
    data = json.loads((tmp_path / "model.json").read_text())
    data["io"] = json.loads(V1_MODEL_JSON)["io"]
    data["format_version"] = 1
    (tmp_path / "model.json").write_text(json.dumps(data))

    loaded = load_model(tmp_path)
    assert loaded.manifest.io.value_range == (-1.0, 1.0) and loaded.manifest.spec == model.spec()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(loaded.model(x), model(x))
