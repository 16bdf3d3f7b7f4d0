"""`pocketgan export --format onnx` (fp32) through the API and the CLI: real exports, real onnxruntime sessions."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pocketgan.core.errors import ParityError, PocketganError
from pocketgan.core.hostinfo import host_isa
from pocketgan.core.progress import ProgressEvent
from pocketgan.export import (
    BuiltArtifact,
    ExportOptions,
    ParityRule,
    export_model,
    list_exporters,
    measure_parity,
    register_exporter,
)
from pocketgan.export import registry
from pocketgan.export.onnx_format import build_onnx, onnxruntime_runner
from pocketgan.export.samples import read_calibration_images, synthetic_inputs
from pocketgan.core.contract import ArtifactManifest, IOSpec
from pocketgan.core.fsio import sha256_file
from pocketgan.models import load_model, save_model


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # random-weight references are the same on every run


SMALL = "resnet9:ngf=4,n_blocks=1"  # where the architecture doesn't matter: the fastest to trace


def seeded_model(ref: str):
    torch.manual_seed(0)
    return load_model(ref)


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def torch_outputs(model, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def assert_one_line_error(result, *fragments: str) -> None:
    lines = result.err.strip().splitlines()
    assert result.code != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.err + result.out


@pytest.fixture(scope="module")
def dynamic_export(tmp_path_factory):
    """resnet9:ngf=4 at 64 px with a dynamic batch, exported once for the module."""
    loaded = seeded_model("resnet9:ngf=4")
    out = tmp_path_factory.mktemp("onnx-dynamic")
    events: list[ProgressEvent] = []
    manifest = export_model(loaded, "onnx", out, ExportOptions(size=(64, 64), dynamic_batch=True),
                            progress=events.append)  # fmt: skip
    return loaded, out, manifest, events


def test_the_sidecar_describes_the_file(dynamic_export):
    loaded, out, manifest, _ = dynamic_export
    on_disk = json.loads((out / "model.onnx.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest.to_dict()))
    assert ArtifactManifest.for_artifact(out / "model.onnx").parity == manifest.parity
    assert manifest.file == "model.onnx" and manifest.format == "onnx" and manifest.precision == "fp32"
    assert manifest.sha256 == sha256_file(out / "model.onnx")
    assert manifest.opset == 17 and "dynamo=False" in manifest.exporter and "onnxslim" in manifest.exporter
    assert [(t.name, t.shape, t.dtype) for t in manifest.inputs] == [("input", ["batch", 3, 64, 64], "float32")]
    assert [(t.name, t.shape, t.dtype) for t in manifest.outputs] == [("output", ["batch", 3, 64, 64], "float32")]
    assert manifest.io.value_range == (-1.0, 1.0) and manifest.io.fixed_size == (64, 64)
    assert manifest.io.normalization == loaded.manifest.io.normalization
    assert manifest.source == loaded.manifest.to_dict()
    assert manifest.source["spec"]["arch"] == "resnet9" and manifest.source["spec"]["config"]["ngf"] == 4
    parity = manifest.parity
    assert parity.passed and parity.samples == 4 and parity.atol == 1e-4
    assert 0 < parity.max_abs <= 1e-4 and parity.mean_abs <= parity.max_abs and parity.psnr_db > 80
    assert manifest.extra["parity_rule"] == "max_abs <= 0.0001"
    assert manifest.extra["parity_host"] == host_isa().to_dict()  # the ISA the gate ran on
    assert "parity_kernels" not in manifest.extra  # one kind of kernel for fp32 (int8: tests/test_export_precision.py)


def test_export_reports_each_step_through_the_progress_callback(dynamic_export):
    *_, events = dynamic_export
    steps = [e.task for e in events if e.finished]
    assert steps == ["exporting to ONNX (opset 17)", "simplifying with onnxslim",
                     "parity vs PyTorch (batch of 4)", "writing"]  # fmt: skip
    assert len({e.task for e in events}) == len(steps)  # every step started is finished, once
    assert events[-1].finished and events[-1].task == "writing"


def test_the_export_is_one_simplified_file_with_embedded_weights(dynamic_export):
    _, out, manifest, _ = dynamic_export
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.onnx.json"]  # no .data, no scratch
    model = onnx.load(str(out / "model.onnx"), load_external_data=False)
    onnx.checker.check_model(model)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    nodes = manifest.extra["onnx_nodes"]
    assert nodes["simplified"] == len(model.graph.node) < nodes["exported"]
    assert "Identity" not in {n.op_type for n in model.graph.node}


def test_a_dynamic_batch_of_three_runs_and_matches_pytorch(dynamic_export):
    loaded, out, manifest, _ = dynamic_export
    sess = session(out / "model.onnx")
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    assert [inp.name, outp.name] == [manifest.inputs[0].name, manifest.outputs[0].name]
    assert inp.shape == manifest.inputs[0].shape and outp.shape == manifest.outputs[0].shape
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    result = sess.run(None, {"input": batch})[0]
    assert result.shape == (3, 3, 64, 64)
    np.testing.assert_allclose(result, torch_outputs(loaded.model, batch), atol=1e-4)


def test_cli_exports_a_fixed_batch_model(cli, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--out", tmp_path / "out", "--size", "64x48")
    assert result.code == 0, result.err
    assert "model.onnx" in result.out and "parity vs PyTorch" in result.out
    sidecar = json.loads((tmp_path / "out" / "model.onnx.json").read_text())
    assert sidecar["inputs"][0]["shape"] == [1, 3, 64, 48] and sidecar["parity"]["passed"] is True
    assert sidecar["source"]["spec"]["arch"] == "mobile-resnet"
    sess = session(tmp_path / "out" / "model.onnx")
    assert sess.run(None, {"input": np.zeros((1, 3, 64, 48), np.float32)})[0].shape == (1, 3, 64, 48)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sess.run(None, {"input": np.zeros((3, 3, 64, 48), np.float32)})


def test_unet128_exports_at_128(tmp_path):
    loaded = seeded_model("unet128:ngf=4")
    manifest = export_model(loaded, "onnx", tmp_path, ExportOptions(size=(128, 128), opset=13))
    assert manifest.parity.passed and manifest.opset == 13
    batch = synthetic_inputs(loaded.model.io, 1, (128, 128), seed=5).numpy()
    np.testing.assert_allclose(session(tmp_path / "model.onnx").run(None, {"input": batch})[0],
                               torch_outputs(loaded.model, batch), atol=1e-4)  # fmt: skip


def test_cli_exports_a_model_directory_and_a_checkpoint(cli, tmp_path):
    model = seeded_model(SMALL).model
    save_model(model, tmp_path / "pruned", provenance={"method": "prune"})
    torch.save(model.state_dict(), tmp_path / "latest_net_G.pth")

    from_dir = cli("export", tmp_path / "pruned", "--out", tmp_path / "a", "--size", "32")
    assert from_dir.code == 0, from_dir.err
    source = json.loads((tmp_path / "a" / "model.onnx.json").read_text())["source"]
    assert source["provenance"]["method"] == "prune" and source["weights_sha256"]

    from_pth = cli("export", tmp_path / "latest_net_G.pth", "--arch", SMALL, "--out", tmp_path / "b",
                   "--size", "32")  # fmt: skip
    assert from_pth.code == 0, from_pth.err
    batch = synthetic_inputs(model.io, 2, (32, 32), seed=3).numpy()
    for out in ("a", "b"):  # both carry the saved weights, not fresh random ones
        got = np.concatenate([session(tmp_path / out / "model.onnx").run(None, {"input": x[None]})[0] for x in batch])
        np.testing.assert_allclose(got, torch_outputs(model, batch), atol=1e-4)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["does/not/exist"], ["does/not/exist", "no such file"]),
        (["unet128:ngf=4", "--size", "64"], ["multiples of 128", "64x64"]),
        (["resnet9:ngf=4", "--size", "30x32"], ["multiples of 4"]),
        (["resnet9:ngf=4", "--size", "64x"], ["--size takes H or HxW", "'64x'"]),
        (["resnet9:ngf=4", "--format", "onnx2"], ["unknown export format", "onnx, "]),
        (["resnet9:ngf=4", "--precision", "int4"], ["--precision fp32, fp16, int8"]),
        (["resnet9:ngf=4", "--format", "coreml", "--precision", "int8"], ["coreml supports --precision fp32, fp16"]),
        (["resnet9:ngf=4", "--opset", "7"], ["--opset must be between 11 and 20"]),
        (["resnet9:ngf=4", "--precision", "int8", "--opset", "12"], ["int8 needs --opset 13"]),
        (["resnet9:ngf=4", "--samples", "0"], ["--samples must be at least 1"]),
        (["resnet9:ngf=4", "--calibration", "."], ["--calibration only applies to --precision int8"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, fragments):
    result = cli("export", *args, "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_the_output_must_be_a_directory(cli, tmp_path):
    (tmp_path / "taken").write_text("a file")
    assert_one_line_error(cli("export", SMALL, "--out", tmp_path / "taken", "--size", "32"),
                          "exists and is not a directory")  # fmt: skip
    assert (tmp_path / "taken").read_text() == "a file"


def test_truncated_weights_are_one_line_and_write_nothing(cli, tmp_path):
    model = seeded_model("resnet9:ngf=4").model
    save_model(model, tmp_path / "model")
    torch.save(model.state_dict(), tmp_path / "net.pth")
    for path in (tmp_path / "model" / "model.safetensors", tmp_path / "net.pth"):
        path.write_bytes(path.read_bytes()[:1000])
    assert_one_line_error(cli("export", tmp_path / "model", "--out", tmp_path / "o1"),  # checked against model.json
                          "model.safetensors", "does not match weights_sha256")  # fmt: skip
    assert_one_line_error(cli("export", tmp_path / "net.pth", "--arch", "resnet9:ngf=4", "--out", tmp_path / "o2"),
                          "cannot read weights")  # fmt: skip
    assert_one_line_error(cli("export", tmp_path / "net.pth", "--out", tmp_path / "o3"), "needs --arch")
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))


def test_failed_parity_leaves_the_previous_export_untouched(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("export", SMALL, "--out", out, "--size", "32").code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = cli("export", "resnet6:ngf=4,n_blocks=2", "--out", out, "--size", "32", "--atol", "0")
    assert_one_line_error(result, "disagrees with PyTorch", "max_abs <= 0", "max abs", "PSNR", "nothing written")
    assert result.code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # same files, no scratch left


def test_failed_parity_in_a_new_directory_leaves_nothing(cli, tmp_path):
    assert_one_line_error(cli("export", SMALL, "--out", tmp_path / "new", "--size", "32",
                              "--atol", "0"), "disagrees with PyTorch")  # fmt: skip
    assert not (tmp_path / "new").exists()


def test_a_tampered_artifact_fails_parity_and_is_not_published(tmp_path, monkeypatch):
    """A plug-in exporter whose file differs from the model (a shifted output bias) is caught."""
    registry.EXPORTERS.names()  # load the built-ins, then undo this test's registration afterwards
    monkeypatch.setattr(registry.EXPORTERS, "_entries", dict(registry.EXPORTERS._entries))

    @register_exporter("onnx-tampered", artifact="model.onnx")
    def build_tampered(job, dest) -> BuiltArtifact:
        built = build_onnx(job, dest)
        model = onnx.load(str(dest))
        bias = next(t for t in reversed(model.graph.initializer) if len(t.dims) == 1)
        shifted = onnx.numpy_helper.to_array(bias) + 0.5
        bias.CopyFrom(onnx.numpy_helper.from_array(shifted, bias.name))
        onnx.save(model, str(dest))
        return BuiltArtifact(dest, built.exporter, onnxruntime_runner(dest), opset=built.opset)

    assert "onnx-tampered" in list_exporters()
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        export_model(seeded_model(SMALL), "onnx-tampered", tmp_path / "out", ExportOptions(size=(32, 32)))
    assert not (tmp_path / "out").exists()


def test_parity_rules_by_precision():
    assert ParityRule.for_precision("fp32") == ParityRule(atol=1e-4)
    assert ParityRule.for_precision("fp16") == ParityRule(atol=5e-2, min_psnr_db=50.0)
    assert ParityRule.for_precision("int8") == ParityRule(min_psnr_db=25.0)
    assert ParityRule.for_precision("int8", atol=0.5).describe() == "max_abs <= 0.5 and psnr_db >= 25"
    reference = np.zeros((2, 3, 8, 8), np.float32)
    off = reference + 0.02  # PSNR 20 log10(2 / 0.02) = 40 dB
    parity = measure_parity(off, reference, (-1.0, 1.0), ParityRule(min_psnr_db=39.0))
    assert parity.passed and parity.psnr_db == pytest.approx(40.0, abs=1e-3) and parity.atol == 2.0
    assert not measure_parity(off, reference, (-1.0, 1.0), ParityRule(atol=0.01)).passed
    assert measure_parity(reference, reference, (-1.0, 1.0), ParityRule(atol=0.0)).psnr_db == 200.0
    with pytest.raises(ParityError, match="shape"):
        measure_parity(off[:1], reference, (-1.0, 1.0), ParityRule(atol=1.0))


def test_synthetic_inputs_are_deterministic_and_in_range():
    io = IOSpec.from_value_range(0.0, 1.0, input_channels=1)
    first = synthetic_inputs(io, 5, (16, 24), seed=7)
    assert first.shape == (5, 1, 16, 24) and first.min() >= 0.0 and first.max() <= 1.0
    assert torch.equal(first, synthetic_inputs(io, 5, (16, 24), seed=7))
    assert not torch.equal(first, synthetic_inputs(io, 5, (16, 24), seed=8))


def test_calibration_images_are_resized_and_normalized(tmp_path):
    import cv2

    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    batch = read_calibration_images(tmp_path, IOSpec(), (8, 12), limit=4)
    assert batch.shape == (1, 3, 8, 12)
    assert torch.allclose(batch[0, 0], torch.ones(8, 12)) and torch.allclose(batch[0, 1:], -torch.ones(2, 8, 12))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(PocketganError, match="broken.jpg: not a readable image"):
        read_calibration_images(tmp_path, IOSpec(), (8, 12), limit=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PocketganError, match="no images"):
        read_calibration_images(tmp_path / "empty", IOSpec(), (8, 12), limit=4)
    with pytest.raises(PocketganError, match="no such calibration directory"):
        read_calibration_images(tmp_path / "red.png", IOSpec(), (8, 12), limit=4)
