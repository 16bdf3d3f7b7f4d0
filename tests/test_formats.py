"""The formats table drives --help, --list-formats, option checks, the recipe, the bench backend, and --format F,F|all."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pocketgan.config import check_config, load_config
from pocketgan.core.errors import ParityError, PocketganError
from pocketgan.export import ExportOptions, ParityRule, export_model
from pocketgan.export.formats import FORMATS, nvidia_gpu_present, parse_formats
from pocketgan.models import load_model, save_model
from pocketgan.runtime.registry import list_backends, pick_backend

SIZE = "32"
ON_MACOS = sys.platform == "darwin"


def row(table: str, name: str) -> str:
    """The summary or listing table's line for format ``name``."""
    return next(line for line in table.splitlines() if re.match(rf"^│ {name}\s", line))


def test_help_lists_every_format_with_its_precisions(cli):
    result = cli("export", "--help")
    text = " ".join(result.out.replace("│", " ").split())
    for spec in FORMATS.values():
        assert f"{spec.name} ({'/'.join(spec.precisions)})" in text
    assert "or all" in text and "--list-formats" in text


def test_list_formats_names_backends_and_what_this_host_can_do(cli):
    result = cli("export", "--list-formats")  # no MODEL, no -o: the flag is eager
    assert result.code == 0, result.err
    assert "ort" in row(result.out, "onnx") and "✅" in row(result.out, "onnx")
    assert "openvino" in row(result.out, "openvino") and "model.xml + model.bin" in row(result.out, "openvino")
    if not ON_MACOS:
        assert "❎" in row(result.out, "coreml") and "coreml: cannot run here: needs macOS" in result.out
    if not nvidia_gpu_present():
        assert "❌" in row(result.out, "tensorrt") and "tensorrt: cannot build here: needs an NVIDIA GPU" in result.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "ort", "--max-batch", "4"], r"--format ort does not take --max-batch \(it takes --opset"),
        (["--format", "coreml", "--precision", "int8"], r"--format coreml supports --precision fp32, fp16, not int8"),
        (["--format", "onxx"], r"unknown export format 'onxx' \(did you mean onnx\?\)"),
        (["--format", "coreml", "--int8-range", "full"], r"--format coreml does not take --int8-range"),
    ],
)  # fmt: skip
def test_options_a_format_does_not_take_are_one_line_errors(cli, tmp_path, args, message):
    result = cli("export", "mobile-resnet:ngf=4", "--size", SIZE, "-o", tmp_path / "out", *args)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert re.search(message, result.err), result.err
    assert not (tmp_path / "out").exists()


def test_the_runtime_picks_the_backend_the_table_names():
    for spec in FORMATS.values():
        if spec.backend is not None:
            assert spec.backend in list_backends()
            assert pick_backend(Path("some") / spec.artifact) == spec.backend, spec.name


def test_the_recipe_accepts_the_formats_a_backend_runs_and_refuses_others():
    check_config(load_config(overrides=["export.format=openvino"]))
    check_config(load_config(overrides=["export.format=ort"]))
    with pytest.raises(PocketganError, match="export.format 'coreml' has no runtime backend"):
        check_config(load_config(overrides=["export.format=coreml"]))
    with pytest.raises(PocketganError, match=r"'opnvino' \(did you mean openvino\?\) is not an export format"):
        check_config(load_config(overrides=["export.format=opnvino"]))


def test_parse_formats_expands_all_and_drops_duplicates():
    assert parse_formats("all")[: len(FORMATS)] == list(FORMATS)
    assert parse_formats("onnx, ort,onnx") == ["onnx", "ort"]
    with pytest.raises(PocketganError, match="needs a format name"):
        parse_formats(",")


@pytest.mark.skipif(ON_MACOS, reason="CoreML runs on macOS: the not-checkable status needs another host")
def test_summary_table_marks_checked_unchecked_and_unbuildable_formats(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "mobile-resnet:ngf=4", "--size", SIZE, "-o", out, "--format", "onnx,ort,coreml,tensorrt")
    assert result.code == 0, result.err
    onnx, ort = row(result.out, "onnx"), row(result.out, "ort")
    assert "✅" in onnx and "✅" in ort
    cells = [c.strip() for c in onnx.split("│")[1:-1]]  # format, status, size, max abs, PSNR, p50, notes
    assert float(cells[2]) > 0 and float(cells[3]) <= 1e-4 and float(cells[5]) > 0
    assert "❎" in row(result.out, "coreml") and "macOS" in row(result.out, "coreml")
    if not nvidia_gpu_present():
        assert "❌" in row(result.out, "tensorrt") and "NVIDIA GPU" in row(result.out, "tensorrt")
    assert {"model.onnx", "model.ort", "model.mlpackage"} <= {p.name for p in out.iterdir()}
    assert not (out / "model.engine").exists()


def test_a_format_that_fails_is_a_row_and_a_nonzero_exit(cli, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--size", SIZE, "-o", tmp_path / "out", "--format", "onnx,coreml",
                 "--precision", "int8", "--calibration-samples", "4", "--no-latency")  # fmt: skip
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "❌" in row(result.out, "coreml") and "✅" in row(result.out, "onnx")
    assert "coreml failed: --format coreml supports --precision fp32, fp16" in result.err
    assert (tmp_path / "out" / "model.onnx").is_file() and not (tmp_path / "out" / "model.mlpackage").exists()


@pytest.mark.skipif(nvidia_gpu_present(), reason="with a GPU the tensorrt row builds an engine")
def test_option_goes_only_to_the_formats_that_take_it(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "mobile-resnet:ngf=4", "--size", SIZE, "-o", out, "--format", "onnx,ort,tensorrt",
                 "--option", "workspace_mb=64", "--no-latency")  # fmt: skip
    assert result.code == 0, result.err
    assert "✅" in row(result.out, "onnx") and "✅" in row(result.out, "ort")
    assert "does not take --option" not in result.out
    assert {"model.onnx", "model.ort"} <= {p.name for p in out.iterdir()}


def test_option_no_selected_format_takes_is_one_line(cli, tmp_path):
    result = cli("export", "mobile-resnet:ngf=4", "--size", SIZE, "-o", tmp_path / "out", "--format", "onnx,ort",
                 "--option", "workspace_mb=64")  # fmt: skip
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    takers = ", ".join(name for name, spec in FORMATS.items() if "format_options" in spec.options)
    assert "coreml, tensorrt" in takers  # the table's own rows (phone formats add theirs)
    assert f"--option is a builder option of {takers}; none of the formats onnx, ort takes it" in result.err
    assert not (tmp_path / "out").exists()


def test_fp16_keeps_instance_norm_in_fp32(tmp_path):
    onnx = pytest.importorskip("onnx")
    sidecar = export_model(load_model("mobile-resnet:ngf=4"), "onnx", tmp_path,
                           ExportOptions(size=(32, 32), precision="fp16"))  # fmt: skip
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    initializers = {t.name: t.data_type for t in graph.initializer}
    norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert norms and all(initializers[n.input[1]] == onnx.TensorProto.FLOAT for n in norms)
    assert convs and all(initializers[n.input[1]] == onnx.TensorProto.FLOAT16 for n in convs)
    assert "kept in float32: InstanceNormalization" in sidecar.extra["fp16"] and sidecar.parity.passed


def test_int8_calibrates_on_the_models_dataset_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "dataset"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    torch.manual_seed(0)
    save_model(load_model("mobile-resnet:ngf=4").model, tmp_path / "model", provenance={"data": str(images)})
    options = ExportOptions(size=(32, 32), precision="int8", calibration_samples=4, min_psnr_db=0.0)
    first = export_model(load_model(tmp_path / "model"), "onnx", tmp_path / "a", options)
    assert first.extra["int8"]["calibration"] == {"source": f"{images} (the model's dataset)", "samples": 4}
    assert len(list((tmp_path / "cache" / "calibration").glob("*.npy"))) == 1
    second = export_model(load_model(tmp_path / "model"), "onnx", tmp_path / "b", options)
    assert second.extra["int8"]["calibration"]["source"] == f"{images} (the model's dataset), cached"
    synthetic = export_model(load_model("mobile-resnet:ngf=4"), "onnx", tmp_path / "c", options)
    assert synthetic.extra["int8"]["calibration"]["source"] == "synthetic inputs"
    # the default bar: 30 dB on real images (random weights on noise may miss it: then it is the error's rule)
    try:
        rule = export_model(load_model(tmp_path / "model"), "onnx", tmp_path / "d",
                            replace(options, min_psnr_db=None)).extra["parity_rule"]  # fmt: skip
    except ParityError as exc:
        rule = str(exc)
    assert "psnr_db >= 30" in rule


def test_int8_bar_is_30_db_on_real_images_and_25_on_synthetic_ones():
    assert ParityRule.for_precision("int8", real_calibration=True).min_psnr_db == 30.0
    assert ParityRule.for_precision("int8").min_psnr_db == 25.0
    assert ParityRule.for_precision("int8", min_psnr_db=12.0, real_calibration=True).min_psnr_db == 12.0


def test_with_all_a_format_that_does_not_take_the_options_is_a_row_not_a_failure(tmp_path, capsys):
    from pocketgan.commands.export_summary import FAILED, export_formats

    loaded, options = load_model("mobile-resnet:ngf=4"), ExportOptions(size=(32, 32), precision="int8")
    [outcome] = export_formats(loaded, ["coreml"], tmp_path, options, latency=False, every=True)
    assert outcome.status == FAILED and outcome.reason.startswith("not applicable: --format coreml supports")
    assert "coreml" in capsys.readouterr().out
    with pytest.raises(PocketganError, match="--format coreml failed: --format coreml supports --precision fp32"):
        export_formats(loaded, ["coreml"], tmp_path, options, latency=False)
    assert not any(tmp_path.iterdir())
