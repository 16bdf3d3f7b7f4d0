"""Latent-input generators through the contract, the verbs and the torch-free runtime.

The generator here is the smallest latent model that exercises every path: a Linear from ``z`` to
channels, a transposed conv, an upsample and a conv to RGB (StyleGAN2 itself: test_stylegan2_export.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pocketgan import runtime
from pocketgan.core.contract import (
    FORMAT_VERSION,
    ArtifactManifest,
    IOSpec,
    ModelManifest,
    TensorInfo,
    sidecar_path,
)
from pocketgan.core.errors import ManifestError, PocketganError
from pocketgan.models import load_model, save_model, wrap
from pocketgan.runtime.bench import BenchSettings, benchmark
from pocketgan.runtime.runner import Runner, RunnerInfo

Z_DIM, SIZE = 16, 16
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "20", "--threads", "1")


class TinyLatent(nn.Module):
    """``z`` → Linear → 1×1 → ConvTranspose 4×4 → nearest ×4 → Conv to RGB → tanh (16×16 images)."""

    def __init__(self, z_dim: int = Z_DIM, ch: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(z_dim, ch)
        self.up = nn.ConvTranspose2d(ch, ch, 4)
        self.conv = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.up(self.fc(z)[:, :, None, None]))
        return torch.tanh(self.conv(nn.functional.interpolate(x, scale_factor=4.0, mode="nearest")))


def build_latent(z_dim: int = Z_DIM, ch: int = 8) -> nn.Module:
    """The tiny latent generator, wrapped (rebuildable as ``test_latent_io:build_latent``)."""
    return wrap(TinyLatent(z_dim, ch), io=IOSpec.latent(z_dim, SIZE), factory=build_latent,
                config={"z_dim": z_dim, "ch": ch})  # fmt: skip


def seeded_latent(**config) -> nn.Module:
    torch.manual_seed(0)
    return build_latent(**config).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("latent") / "model"
    save_model(seeded_latent(), root, provenance={"method": "test"})
    return root


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory) -> dict[str, Path]:
    """ONNX exports of the tiny latent model: a fixed batch of 1 and a dynamic batch."""
    from pocketgan.export import ExportOptions, export_model

    loaded = load_model(model_dir)
    root = tmp_path_factory.mktemp("latent-onnx")
    export_model(loaded, "onnx", root / "static")
    export_model(loaded, "onnx", root / "dynamic", ExportOptions(dynamic_batch=True))
    return {"static": root / "static" / "model.onnx", "dynamic": root / "dynamic" / "model.onnx"}


def torch_images(model: nn.Module, z: np.ndarray) -> np.ndarray:
    """What the runtime must return: PyTorch's images mapped to uint8 HWC by hand ((y + 1) * 127.5, rounded)."""
    with torch.inference_mode():
        y = model(torch.from_numpy(np.asarray(z, dtype=np.float32))).numpy()
    return np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


# --------------------------------------------------------------------------------------- the contract


def test_latent_io_spec_fields_shape_and_description():
    io = IOSpec.latent(32, 64, truncation=0.7, num_classes=10)
    assert (io.input_kind, io.z_dim, io.num_classes, io.truncation, io.noise_mode) == ("latent", 32, 10, 0.7, "const")
    assert io.fixed_size == (64, 64) and io.is_latent and not IOSpec().is_latent
    assert io.input_shape(4, (64, 64)) == (4, 32) and IOSpec().input_shape(2, (8, 12)) == (2, 3, 8, 12)
    assert io.normalization == "z ~ N(0, I) of 32 values, 10 classes, truncation 0.7, const noise; output [-1, 1] " \
                               "to uint8 RGB, NCHW"  # fmt: skip
    assert IOSpec().normalization == "x / 127.5 - 1 (uint8 RGB to [-1, 1], NCHW; area resize)"
    assert IOSpec.from_dict(io.to_dict()) == io


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_kind": "latent"}, "IOSpec: a latent input needs z_dim (the latent's size)"),
        ({"z_dim": 8}, "IOSpec: z_dim only applies to input_kind 'latent' (this input is an image)"),
        ({"truncation": 0.5, "noise_mode": "random"}, "truncation, noise_mode only apply to input_kind 'latent'"),
        ({"input_kind": "latent", "z_dim": 0}, "IOSpec: z_dim must be a positive integer or null, got the number 0"),
        ({"input_kind": "noise", "z_dim": 8}, "input_kind must be one of 'image', 'latent', got the string 'noise'"),
        ({"input_kind": "latent", "z_dim": 8, "noise_mode": "fresh"}, "noise_mode must be one of 'const', 'random'"),
        ({"input_kind": "latent", "z_dim": 8, "truncation": float("inf")}, "truncation must be a finite number"),
    ],
)
def test_bad_latent_specs_are_one_line_each(fields, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        IOSpec(**fields)


def test_a_model_json_with_a_bad_latent_io_names_the_field():
    with pytest.raises(ManifestError, match=r"^model.json: io: a latent input needs z_dim"):
        ModelManifest.from_dict({"spec": {"arch": "x"}, "io": {"input_kind": "latent"}}, "model.json")


# What pocketgan wrote at FORMAT_VERSION 2 (before latent inputs), verbatim.
V2_MODEL_JSON = """{"spec": {"arch": "resnet9", "config": {"ngf": 8}, "widths": null}, "io": {"input_channels": 3,
"output_channels": 3, "scale": 0.00784313725490196, "offset": -1.0, "channel_order": "RGB", "layout": "NCHW",
"interpolation": "area", "size_multiple": 4, "fixed_size": null, "normalization": "x / 127.5 - 1 (uint8 RGB to
[-1, 1], NCHW; area resize)"}, "provenance": {"method": "omgd"}, "profile": null, "weights_sha256": null,
"format_version": 2, "kind": "generator"}""".replace("\n", " ")
V2_SIDECAR = """{"format": "onnx", "file": "model.onnx", "sha256": "cd", "inputs": [{"name": "input", "shape":
["batch", 3, 64, 64], "dtype": "float32"}], "outputs": [{"name": "output", "shape": ["batch", 3, 64, 64], "dtype":
"float32"}], "io": {"input_channels": 3, "output_channels": 3, "scale": 0.00392156862745098, "offset": 0.0,
"channel_order": "BGR", "layout": "NCHW", "interpolation": "cubic", "size_multiple": 4, "fixed_size": [64, 64],
"normalization": "x / 255 (uint8 BGR to [0, 1], NCHW; cubic resize)"}, "precision": "fp32", "exporter": "t",
"opset": 17, "parity": null, "source": {}, "extra": {}, "format_version": 2, "kind": "artifact"}""".replace("\n", " ")


def test_version_2_files_load_as_image_generators_and_are_rewritten_as_version_3(tmp_path):
    assert FORMAT_VERSION == 3
    (tmp_path / "model.json").write_text(V2_MODEL_JSON)
    manifest = ModelManifest.load(tmp_path)
    assert manifest.io == IOSpec() and manifest.io.input_kind == "image" and manifest.io.z_dim is None
    manifest.save(tmp_path)
    written = json.loads((tmp_path / "model.json").read_text())
    assert written["format_version"] == 3 and written["io"]["input_kind"] == "image"
    assert ModelManifest.load(tmp_path) == manifest

    artifact = tmp_path / "model.onnx"
    sidecar_path(artifact).write_text(V2_SIDECAR)
    sidecar = ArtifactManifest.for_artifact(artifact)
    assert (sidecar.io.channel_order, sidecar.io.interpolation, sidecar.io.value_range) == ("BGR", "cubic", (0, 1))
    assert not sidecar.io.is_latent and sidecar.io.truncation == 1.0


def test_a_latent_model_directory_round_trips(model_dir):
    data = json.loads((model_dir / "model.json").read_text())
    assert data["format_version"] == 3
    assert {k: data["io"][k] for k in ("input_kind", "z_dim", "fixed_size")} == {
        "input_kind": "latent", "z_dim": Z_DIM, "fixed_size": [SIZE, SIZE]}  # fmt: skip
    loaded = load_model(model_dir)
    assert loaded.model.io == IOSpec.latent(Z_DIM, SIZE)
    z = torch.randn(2, Z_DIM)
    with torch.inference_mode():
        assert torch.equal(loaded.model(z), seeded_latent()(z))
    assert loaded.model.example_input(batch=3).shape == (3, Z_DIM)


# --------------------------------------------------------------------------------------- the verbs

HAND_MACS = Z_DIM * 8 + 8 * 8 * 16 + 3 * 8 * 9 * SIZE * SIZE  # fc, ConvTranspose (input positions), conv


def test_profile_takes_the_input_from_z_dim(cli, model_dir, tmp_path):
    res = cli("profile", model_dir, "-o", tmp_path / "p.json")
    assert res.code == 0, res.err
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["input_shape"] == [1, Z_DIM]
    # fvcore also counts nearest upsampling at one op per output element (8 channels at 16×16)
    assert report["macs"] == HAND_MACS + 8 * SIZE * SIZE
    bad = cli("profile", model_dir, "--size", "32")
    assert bad.code == 2 and "makes 16x16 images from a latent; --size 32x32 does not fit" in bad.err


def test_prune_a_latent_model_and_it_still_generates(cli, model_dir, tmp_path):
    res = cli("prune", model_dir, "--ratio", "0.5", "-o", tmp_path / "pruned")
    assert res.code == 0, res.err
    pruned = load_model(tmp_path / "pruned")
    assert pruned.manifest.io == IOSpec.latent(Z_DIM, SIZE)
    assert pruned.manifest.spec.widths == {"fc": 4, "up": 4, "conv": 3}
    assert pruned.manifest.profile.input_shape == [1, Z_DIM]
    assert pruned.model(torch.randn(2, Z_DIM)).shape == (2, 3, SIZE, SIZE)


def test_export_records_the_latent_in_the_sidecar(exported):
    sidecar = ArtifactManifest.for_artifact(exported["dynamic"])
    assert sidecar.inputs == [TensorInfo("z", ["batch", Z_DIM])]
    assert sidecar.outputs == [TensorInfo("output", ["batch", 3, SIZE, SIZE])]
    assert sidecar.io == IOSpec.latent(Z_DIM, SIZE) and sidecar.parity.passed and sidecar.parity.max_abs < 1e-5
    assert sidecar.extra["latent"] == {
        "z_dim": Z_DIM, "num_classes": None, "truncation": 1.0, "truncation_input": False, "noise_mode": "const",
        "noise_inputs": [], "latent_distribution": "standard normal",
    }  # fmt: skip
    assert "standard-normal latents" in sidecar.extra["parity_inputs"]


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("latent", ["--truncation", "0.7"], "has no truncation (it needs mapping, synthesis and w_avg)"),
        ("latent", ["--noise-input"], "--noise-input: test_latent_io:build_latent has no noise inputs"),
        ("latent", ["--format", "tensorrt"], "TensorRT export of latent-input generators"),
        ("latent", ["--size", "32"], "makes 16x16 images from a latent; --size 32x32 does not fit"),
        ("latent", ["--truncation", "nan"], "--truncation must be a finite number; got nan"),
        ("resnet9:ngf=4", ["--truncation", "0.7", "--noise-input"],
         "--truncation, --noise-input only apply to latent-input generators (resnet9 takes an image)"),
    ],
)
def test_latent_export_options_are_checked_in_one_line(cli, model_dir, tmp_path, model, args, message):
    out = tmp_path / "out"
    res = cli("export", model_dir if model == "latent" else model, "-o", out, *args)
    assert res.code == 2 and message in res.err and "Traceback" not in res.err
    assert not out.exists()


def test_int8_export_of_a_latent_model_is_calibrated_on_random_latents(model_dir, tmp_path):
    import onnx

    from pocketgan.export import ExportOptions, export_model

    sidecar = export_model(load_model(model_dir), "onnx", tmp_path, ExportOptions(precision="int8"))
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and sidecar.inputs == [TensorInfo("z", [1, Z_DIM])]
    assert sidecar.extra["int8"]["calibration"] == {"source": "random latents", "samples": 16}
    assert sidecar.parity.passed and sidecar.parity.psnr_db >= 25


# --------------------------------------------------------------------------------------- the runtime


def test_generate_by_seed_is_deterministic_and_matches_pytorch(exported):
    runner = runtime.load(exported["dynamic"])
    images = runner.generate(seed=[3, 7, 11])
    assert images.shape == (3, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert np.array_equal(runner.generate(seed=7)[0], images[1])  # an image depends on its seed only
    assert np.array_equal(runtime.load(exported["static"]).generate(seed=[3, 7, 11]), images)  # batch 1 artifact
    z = np.stack([np.random.default_rng(s).standard_normal(Z_DIM, dtype=np.float32) for s in (3, 7, 11)])
    expected = torch_images(seeded_latent(), z)
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(runner.generate(z=z), images)
    assert not np.array_equal(images[0], images[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z": np.zeros((2, Z_DIM + 1))},
         f"takes latents z of {Z_DIM} values \\(shape \\(N, {Z_DIM}\\)\\); got shape \\(2, 17\\)"),
        ({"z": np.zeros((2, 3, Z_DIM))}, "got shape \\(2, 3, 16\\)"),
        ({"z": np.full(Z_DIM, np.nan)}, "the latents z must be finite numbers"),
        ({"seed": 1, "truncation": 0.5}, "truncation was baked in at export \\(ψ = 1\\), so it cannot be 0.5 here; "
                                         "re-export with --truncation-input"),
        ({"seed": 1, "z": np.zeros(Z_DIM)}, "give seed=... or z=..., exactly one"),
        ({"seed": [1, -2]}, "seeds are non-negative integers; got -2"),
        ({"seed": 1.5}, "seeds are non-negative integers; got 1.5"),
        ({"seed": 1, "truncation": float("nan")}, "truncation must be a finite number; got nan"),
        ({}, "give seed=... or z=..., exactly one"),
    ],
)
def test_generate_refuses_bad_latents_in_one_line(exported, kwargs, message):
    runner = runtime.load(exported["dynamic"])
    with pytest.raises(PocketganError, match=message):
        runner.generate(**kwargs)


def test_the_baked_truncation_may_be_restated(exported):
    runner = runtime.load(exported["static"])
    assert np.array_equal(runner.generate(seed=2, truncation=1.0), runner.generate(seed=2))


def test_image_and_latent_runners_refuse_each_others_calls(exported, artifacts):
    with pytest.raises(PocketganError, match="takes a latent, not an image; use generate"):
        runtime.load(exported["static"]).translate(np.zeros((SIZE, SIZE, 3), np.uint8))
    with pytest.raises(PocketganError, match="translates images; generate\\(\\) needs a latent-input artifact"):
        runtime.load(artifacts.static).generate(seed=0)


def test_a_bare_latent_onnx_without_sidecar_is_recognized_by_its_2d_input(exported, tmp_path):
    import onnx

    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(exported["dynamic"]))
    del model.metadata_props[:]  # no embedded I/O spec either: only the graph's shapes say it is a latent model
    onnx.save_model(model, str(bare))
    runner = runtime.load(bare)
    assert runner.io.is_latent and runner.io.z_dim == Z_DIM
    assert np.array_equal(runner.generate(seed=[1, 2]), runtime.load(exported["dynamic"]).generate(seed=[1, 2]))


# --------------------------------------------------------------------------------------- benchmarking


class RecordingLatentRunner(Runner):
    """A latent runner that records what each iteration was fed (benchmarks must draw new z every time)."""

    def __init__(self) -> None:
        io = IOSpec.latent(Z_DIM, SIZE)
        super().__init__(RunnerInfo("recording", "test", [TensorInfo("z", ["batch", Z_DIM])],
                                    [TensorInfo("output", ["batch", 3, SIZE, SIZE])], ["none"], io=io))  # fmt: skip
        self.fed: list[np.ndarray] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.fed.append(batch.copy())
        return np.zeros((len(batch), 3, SIZE, SIZE), np.float32)


def test_bench_draws_fresh_standard_normal_latents_every_iteration():
    runner = RecordingLatentRunner()
    [result] = benchmark([runner], BenchSettings(batch=4, iterations=20, duration_s=0.0, warmup_ms=0.0))
    assert result.input_shape == [4, Z_DIM] and result.input_kind == "latent" and result.latency.count == 20
    fed = np.stack(runner.fed)  # warm-up + timed iterations
    assert fed.shape == (len(runner.fed), 4, Z_DIM) and len(runner.fed) == 20 + result.warmup_iterations
    assert len({row.tobytes() for row in fed}) == len(fed)  # every iteration fed new latents
    assert abs(fed.mean()) < 0.1 and abs(fed.std() - 1) < 0.1


def test_pocketgan_bench_measures_a_latent_onnx_in_images_per_second(bench, exported):
    run = bench("pocketgan-bench", exported["dynamic"], "--batch", "2", *FAST)
    assert run.code == 0, run.err
    [result] = run.results
    assert result["input_shape"] == [2, Z_DIM] and result["input_kind"] == "latent" and result["batch"] == 2
    assert result["throughput_ips"] == pytest.approx(2 * 1000 / result["latency_ms"]["mean_ms"], rel=1e-6)
    assert "2x16 z (random)" in run.out and "images/s" in run.out


def test_pocketgan_bench_refuses_a_size_the_latent_artifact_does_not_make(bench, exported):
    run = bench("pocketgan-bench", exported["static"], "--size", "32", *FAST)
    assert run.code == 2 and "makes 16x16 images from a latent; --size 32x32 does not fit" in run.err
    batch = bench("pocketgan-bench", exported["static"], "--batch", "2", *FAST)
    assert batch.code == 2
    assert "fixed batch of 1; --batch 2 needs an artifact exported with a dynamic batch" in batch.err
