"""CoreML: the real converter on tiny models, the saved package validated here; prediction is macOS-only (marked)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan.core.embedded import PREFIX
from pocketgan.core.errors import PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import create_generator, load_model, save_model

ct = pytest.importorskip("coremltools", reason="coremltools is not installed (pocketgan[coreml])")

from pocketgan.export.coreml_check import check_package  # noqa: E402  (needs coremltools)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("coreml") / "model"
    save_model(create_generator("resnet9", ngf=4), path)
    return path


def counts(model: nn.Module, kind: type) -> int:
    return sum(type(m) is kind for m in model.modules())


def test_fp16_image_input_package_carries_normalization_target_metadata_and_rewrites(cli, model_dir, tmp_path):
    result = cli("export", model_dir, "--format", "coreml", "-o", tmp_path, "--size", "32", "-p", "fp16",
                 "--option", "input_type=image", "--option", "minimum_target=iOS17",
                 "--option", "rewrites=reflection-pad,conv-transpose-crop")  # fmt: skip
    assert result.code == 0, result.err
    sidecar = json.loads((tmp_path / "model.mlpackage.json").read_text())
    model = load_model(model_dir).model
    assert sidecar["extra"]["rewrites"] == {"reflection-pad": counts(model, nn.ReflectionPad2d),
                                            "conv-transpose-crop": counts(model, nn.ConvTranspose2d)}  # fmt: skip
    report = check_package(ct, tmp_path / "model.mlpackage")  # read back from disk, independently of the export
    assert report.program == "mlProgram" and report.target == "iOS17" and report.precision == "fp16"
    (image,) = report.inputs
    assert (image.kind, image.color_layout, image.shape) == ("image", "RGB", [32, 32])
    assert image.scale == pytest.approx(1 / 127.5, rel=1e-6) and image.bias == [-1.0, -1.0, -1.0]
    assert report.outputs[0].kind == "tensor" and report.outputs[0].shape == [1, 3, 32, 32]
    assert "pad" not in report.ops and report.ops["concat"] > 0 and report.ops["conv"] == counts(model, nn.Conv2d)
    assert report.ops["instance_norm"] == counts(model, nn.InstanceNorm2d)
    assert {f"{PREFIX}io", f"{PREFIX}profile"} <= set(report.metadata)
    macs = json.loads(report.metadata[f"{PREFIX}profile"])["macs"]
    assert macs > 0 and f"{macs} MACs" in report.description and report.author == "pocketgan" and report.version
    assert sidecar["extra"]["coreml_check"]["verdict"] == report.verdict()


def test_fp32_tensor_default_flags_what_may_leave_the_neural_engine(model_dir, tmp_path):
    manifest = export_model(load_model(model_dir), "coreml", tmp_path, ExportOptions(size=(32, 32)))
    model = load_model(model_dir).model
    assert manifest.extra["rewrites"] == {"conv-transpose-crop": counts(model, nn.ConvTranspose2d)}
    report = check_package(ct, tmp_path / "model.mlpackage")
    assert report.precision == "fp32" and report.target == "iOS15" and report.inputs[0].kind == "tensor"
    flagged = {}
    for entry in report.off_ane:
        flagged[entry["op"]] = flagged.get(entry["op"], 0) + 1
    assert flagged["pad"] == counts(model, nn.ReflectionPad2d) == report.ops["pad"]  # reflect mode: each named
    assert flagged["instance_norm"] == report.ops["instance_norm"]
    assert flagged["conv_transpose"] == counts(model, nn.ConvTranspose2d)  # k3 s2: kernel not a multiple of stride
    assert "may run off the Neural Engine (conv_transpose, instance_norm, pad)" in report.verdict()


@pytest.mark.parametrize("option, message", [
    ("input_type=pixels", "input_type must be tensor or image"),
    ("minimum_target=iOS12", "minimum_target must be one of iOS15"),
    ("minimum_targets=iOS17", "no option 'minimum_targets' (did you mean minimum_target?)"),
    ("rewrites=reflect", "unknown graph rewrite"),
])  # fmt: skip
def test_bad_options_are_one_line_and_write_nothing(cli, tmp_path, option, message):
    result = cli("export", "resnet9:ngf=4", "--format", "coreml", "-o", tmp_path / "o", "--size", "32", "--option", option)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "o").exists()


def test_an_unreadable_package_is_one_line(tmp_path):
    (tmp_path / "broken.mlpackage").mkdir()
    with pytest.raises(PocketganError, match="not a readable CoreML package"):
        check_package(ct, tmp_path / "broken.mlpackage")


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS runs CoreML")
def test_the_runtime_backend_off_macos_is_one_line(tmp_path):
    from pocketgan.runtime import load

    with pytest.raises(PocketganError, match="predicts on macOS only"):
        load(tmp_path, backend="coreml")


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML prediction (parity) runs only on macOS")
@pytest.mark.parametrize("input_type", ["tensor", "image"])
def test_prediction_parity_on_macos(model_dir, tmp_path, input_type):
    options = ExportOptions(size=(32, 32), format_options={"input_type": input_type, "rewrites": "all"})
    manifest = export_model(load_model(model_dir), "coreml", tmp_path, options)
    assert manifest.parity is not None and manifest.parity.passed
    from pocketgan.runtime import load

    runner = load(tmp_path / "model.mlpackage", backend="coreml", providers=["CPU_ONLY"])
    assert runner.run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 3, 32, 32)


def test_image_input_parity_samples_are_whole_pixels_and_the_reference_follows(model_dir, tmp_path):
    from pocketgan.export.coreml import use_pixel_samples
    from pocketgan.export.job import ExportJob
    from pocketgan.export.progress import StepProgress

    job = ExportJob(load_model(model_dir), ExportOptions(size=(32, 32)), (32, 32), tmp_path, StepProgress())
    before = job.reference
    use_pixel_samples(job)
    pixels = (job.samples + 1.0) * 127.5
    assert torch.allclose(pixels, pixels.round(), atol=1e-4) and 0 <= pixels.min() and pixels.max() <= 255
    with torch.no_grad():
        expected = job.loaded.model(job.samples).numpy()
    assert np.array_equal(job.reference, expected) and not np.array_equal(before, expected)


def test_the_cli_defaults_coreml_to_fp16(cli, model_dir, tmp_path):
    result = cli("export", model_dir, "--format", "coreml", "-o", tmp_path, "--size", "32")
    assert result.code == 0, result.err
    assert check_package(ct, tmp_path / "model.mlpackage").precision == "fp16"
    assert json.loads((tmp_path / "model.mlpackage.json").read_text())["precision"] == "fp16"
