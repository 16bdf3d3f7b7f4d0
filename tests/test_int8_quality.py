"""``pocketgan export --precision int8 --data DIR``: the FID/KID change of the int8 artifact vs PyTorch fp32.

A tiny mobile-resnet (ngf 4) at 32 px, a tiny photos2stylized dataset and a tiny cached domain network;
the expected FID/KID are recomputed here from onnxruntime and PyTorch outputs directly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pocketgan.core.fsio import sha256_file
from pocketgan.distill.features import DomainConfig, load_feature_network
from pocketgan.distill.quality import frechet_distance, kernel_inception_distance
from pocketgan.models import create_generator, load_model, save_model

SIZE, VAL = 32, 6
SMALL = DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=3, batch_size=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny photos2stylized dataset, a saved mobile-resnet:ngf=4 and its cached tiny domain network."""
    from pocketgan.distill.data import build_dataset

    root = tmp_path_factory.mktemp("int8q")
    data = build_dataset("photos2stylized", root / "data", size=SIZE, count=8, val_count=VAL)
    torch.manual_seed(0)
    save_model(create_generator("mobile-resnet", ngf=4), root / "student")
    cache = root / "cache"
    network = load_feature_network(None, data=data, cache_dir=cache / "features", domain_config=SMALL)
    return root, data, cache, network


@pytest.fixture
def env(setup, monkeypatch):
    """The test cache, and the default domain network (``--data`` without ``--feature``) = the tiny cached one."""
    from pocketgan.distill.features import resolve

    root, data, cache, network = setup
    monkeypatch.setenv("POCKETGAN_CACHE", str(cache))
    monkeypatch.setattr(resolve, "DomainConfig", lambda: SMALL)
    return root, data, network


def expected_fid_kid(root, data, network, artifact):
    """FID/KID vs the val ground truth of PyTorch and of ``artifact`` (an onnxruntime session), computed here."""
    from pocketgan.distill.data import open_dataset

    dataset = open_dataset(data, split="val", size=SIZE)
    inputs = torch.stack([dataset[i]["A"] for i in range(len(dataset))])
    targets = torch.stack([dataset[i]["B"] for i in range(len(dataset))])
    model = load_model(str(root / "student")).model.eval()
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    with torch.inference_mode():
        ours = model(inputs).clamp(-1, 1)
        theirs = torch.from_numpy(np.concatenate([session.run(None, {name: x[None].numpy()})[0] for x in inputs]))
        reals, a, b = (network.embed(t.clamp(-1, 1)).double() for t in (targets, ours, theirs))
    return ({"fid": frechet_distance(reals, a), "kid": kernel_inception_distance(reals, a)[0]},
            {"fid": frechet_distance(reals, b), "kid": kernel_inception_distance(reals, b)[0]})  # fmt: skip


def test_int8_export_with_data_reports_and_records_the_fid_kid_change(cli, env):
    root, data, network = env
    out = root / "int8"
    result = cli("export", root / "student", "--format", "onnx", "--precision", "int8", "--size", SIZE,
                 "-o", out, "--data", data)  # fmt: skip
    assert result.code == 0, result.err
    artifact = out / "model.onnx"
    sidecar = json.loads((out / "model.onnx.json").read_text())
    quality = sidecar["extra"]["quality"]
    assert quality["n"] == VAL and quality["split"] == "val" and quality["backend"] == "ort"
    assert quality["feature_network"] == "pocketgan-photos2stylized" and quality["feature_key"] == network.key
    assert sidecar["sha256"] == sha256_file(artifact)  # the rewritten sidecar still matches its artifact
    reference, int8 = expected_fid_kid(root, data, network, artifact)
    for key in ("fid", "kid"):
        assert quality["reference"][key] == pytest.approx(reference[key], rel=1e-6, abs=1e-9)
        assert quality["artifact"][key] == pytest.approx(int8[key], rel=1e-6, abs=1e-9)
        delta = quality["delta"][key]
        assert math.isfinite(delta) and delta == pytest.approx(int8[key] - reference[key], rel=1e-6, abs=1e-9)
    assert quality["reference"]["fid"] != quality["artifact"]["fid"]  # int8 outputs do differ from fp32
    assert f"ΔFID {quality['delta']['fid']:+.4g}" in result.out and "ΔKID" in result.out
    assert "pocketgan-photos2stylized" in result.out and "n=6" in result.out


def test_the_measurement_on_an_fp32_artifact_changes_nothing(env, tmp_path):
    """Sanity: the same pipeline on an fp32 ONNX export (parity 1e-6) gives ΔFID/ΔKID ≈ 0."""
    from pocketgan.export import ExportOptions, export_model
    from pocketgan.quantization_quality import measure_quality_change

    root, data, network = env
    student = load_model(str(root / "student"))
    export_model(student, "onnx", tmp_path, ExportOptions(size=(SIZE, SIZE)))
    (weights,) = (root / "cache" / "features").glob("pocketgan-photos2stylized-*.safetensors")
    change = measure_quality_change(student, tmp_path / "model.onnx", data, feature=str(weights))
    assert change.feature_key == network.key
    reference, _ = expected_fid_kid(root, data, network, tmp_path / "model.onnx")
    assert change.reference["fid"] == pytest.approx(reference["fid"], rel=1e-6, abs=1e-9)
    assert abs(change.delta["fid"]) < 1e-4 * max(1.0, reference["fid"]) and abs(change.delta["kid"]) < 1e-6


def test_without_data_the_sidecar_has_no_quality(cli, env):
    root, _, _ = env
    out = root / "plain"
    assert cli("export", root / "student", "--precision", "int8", "--size", SIZE, "-o", out).code == 0
    sidecar = json.loads((out / "model.onnx.json").read_text())
    assert "quality" not in sidecar["extra"]


def _one_error_line(result, message):
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.err


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("{root}/student", ["--precision", "fp32"], "--data measures the FID/KID change of a reduced-precision"),
        ("{root}/student", [], "--data measures the FID/KID change of a reduced-precision"),  # default fp32
        ("stylegan2:size=32,channel_base=256,channel_max=16,z_dim=16,w_dim=16,n_mlp=1", ["--precision", "int8"],
         "latent-input generator (StyleGAN2) export is not supported yet"),
    ],
)
def test_data_is_refused_in_one_line_before_anything_is_written(cli, env, model, args, message):
    root, data, _ = env
    out = root / "refused"
    result = cli("export", model.format(root=root), *args, "-o", out, "--data", data)
    _one_error_line(result, message)
    assert not out.exists()


def test_a_missing_data_directory_is_one_line(cli, env):
    root, _, _ = env
    result = cli("export", root / "student", "-p", "int8", "-o", root / "nowhere-out", "--data", root / "nowhere")
    _one_error_line(result, "no such dataset directory")
    assert not (root / "nowhere-out").exists()


def test_several_formats_get_dfid_dkid_columns_in_the_summary_table(cli, env):
    root, data, _ = env
    out = root / "multi"
    result = cli("export", root / "student", "--format", "onnx,ort", "-p", "int8", "--size", SIZE, "-o", out,
                 "--data", data, "--no-latency")  # fmt: skip
    assert result.code == 0, result.err
    assert "ΔFID" in result.out and "ΔKID" in result.out
    for name in ("model.onnx", "model.ort"):
        delta = json.loads((out / f"{name}.json").read_text())["extra"]["quality"]["delta"]
        assert math.isfinite(delta["fid"]) and math.isfinite(delta["kid"])
        row = next(line for line in result.out.splitlines() if line.startswith("│") and name in line)
        assert f"{delta['fid']:+.3g}" in row and f"{delta['kid']:+.3g}" in row
