"""fast-resnet: shapes, MAC budget, BatchNorm folded at export, pruning + rebuild, OMGD and KD steps."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from hand_macs import hand_macs
from pocketgan.core.errors import PocketganError
from pocketgan.distill.base import DistillConfig, get_distiller
from pocketgan.export.api import export_model
from pocketgan.export.job import ExportOptions
from pocketgan.models import create_generator, load_model, profile_model, prune_model, save_model
from pocketgan.models.fast_resnet import FastBlock
from pocketgan.models.io import build_generator
from test_omgd import TinyPerceptual

TINY = dict(ngf=4, n_blocks=2)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm running statistics and affine parameters far from the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


@pytest.mark.parametrize("config", [
    {}, {"block": "dense"}, {"norm": "none"}, {"norm": "instance"}, {"stem": "conv"}, {"upsample": "deconv"},
    {"output": "residual"},
])  # fmt: skip
@pytest.mark.parametrize("size", [32, 64])
def test_builds_and_keeps_the_image_size(config, size):
    model = create_generator("fast-resnet", **TINY, **config).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, size, size) * 2 - 1)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


def test_space_to_depth_stem_and_sub_pixel_head_shapes():
    model = create_generator("fast-resnet", ngf=8, n_blocks=1).eval()
    layers = list(model.model)
    assert isinstance(layers[0], nn.PixelUnshuffle) and layers[0].downscale_factor == 4
    assert layers[1].in_channels == 3 * 16 and layers[1].kernel_size == (3, 3)
    assert sum(isinstance(m, nn.PixelShuffle) for m in layers) == 2
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.InstanceNorm2d, nn.ReflectionPad2d)) for m in model.modules())
    trunk = {}
    handle = model.model[model.trunk_start].register_forward_hook(lambda _m, _i, out: trunk.setdefault("x", out))
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 48))
    handle.remove()
    assert trunk["x"].shape == (1, 32, 16, 12)  # 4·ngf channels at stride 4
    taps = model.feature_taps()
    assert {t.stride for t in taps} == {4} and {t.channels for t in taps} == {32}


def test_rejects_bad_options_and_sizes():
    with pytest.raises(PocketganError, match="norm must be one of"):
        create_generator("fast-resnet", norm="group")
    with pytest.raises(PocketganError, match="stem must be one of"):
        create_generator("fast-resnet", stem="conv7")
    with pytest.raises(PocketganError, match="multiples of 4"):
        create_generator("fast-resnet").check_input_size(30, 32)


def test_one_block_macs_match_a_hand_count():
    # separable block at C=64 on a 64×64 trunk (a 256×256 input): per half, a depthwise 3×3 (9·C per
    # position) and a 1×1 (C·C per position), four eval-mode BatchNorms at 2 flops per element.
    block = FastBlock(64, 64, "separable", "batch").eval()
    positions = 64 * 64
    convs = 2 * (9 * 64 + 64 * 64) * positions
    norms = 4 * 64 * positions * 2
    assert convs + norms == 40_370_176
    assert profile_model(block, (1, 64, 64, 64)).macs == convs + norms
    dense = FastBlock(64, 64, "dense", "none").eval()
    assert profile_model(dense, (1, 64, 64, 64)).macs == 2 * 9 * 64 * 64 * positions


def test_default_is_within_the_mac_budget_at_256():
    model = create_generator("fast-resnet").eval()
    report = profile_model(model, (1, 3, 256, 256))
    # stem 3×3 48→64 at 64², 9 blocks, head 3×3 64→64 at 64² and 3×3 16→12 at 128², BatchNorms at 2/element
    by_hand = 9 * 48 * 64 * 64**2 + 9 * 40_370_176 + 9 * 64 * 64 * 64**2 + 9 * 16 * 12 * 128**2
    by_hand += (64 * 64**2 + 64 * 64**2) * 2  # the stem's and the head's BatchNorm
    assert report.macs == by_hand == hand_macs(model, 256)
    assert report.macs <= 1.4e9
    mobile = profile_model(create_generator("mobile-resnet", ngf=16), (1, 3, 256, 256))
    assert report.macs < 0.7 * mobile.macs


def test_mobile_resnet_layout_is_reachable_for_the_ablation():
    """stem=conv, upsample=deconv, norm=instance, block=separable: mobile-resnet's MACs and params exactly."""
    variant = create_generator("fast-resnet", stem="conv", upsample="deconv", norm="instance", block="separable")
    mobile = create_generator("mobile-resnet", ngf=16)
    a, b = profile_model(variant, (1, 3, 256, 256)), profile_model(mobile, (1, 3, 256, 256))
    assert (a.macs, a.params) == (b.macs, b.params)


@pytest.mark.parametrize("config", [{}, {"block": "dense"}, {"stem": "conv", "upsample": "deconv"}])
def test_batchnorm_is_folded_in_the_exported_onnx_and_equals_eager(tmp_path, config):
    torch.manual_seed(0)
    model = create_generator("fast-resnet", **TINY, **config)
    randomize_batchnorm(model)
    model.eval()
    save_model(model, tmp_path / "model")
    sidecar = export_model(load_model(tmp_path / "model"), "onnx", tmp_path / "onnx", ExportOptions(size=(32, 32)))
    path = tmp_path / "onnx" / sidecar.file
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "BatchNormalization" not in ops and "Pad" not in ops
    assert ops.count("Conv") == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = _ort(path, x)
    assert np.abs(got - expected).max() <= 1e-5


def _ort(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("config", [{}, {"block": "dense"}])
def test_prunes_and_rebuilds_from_its_spec_bit_identically(tmp_path, config):
    torch.manual_seed(0)
    model = create_generator("fast-resnet", ngf=8, n_blocks=2, **config)
    randomize_batchnorm(model)
    result = prune_model(model.eval(), ratio=0.5, input_size=(64, 64))
    pruned = result.model
    assert result.macs_after < 0.7 * result.macs_before
    spec = pruned.spec()
    assert spec.widths is not None
    assert pruned.model[1].out_channels < 32  # the trunk (stem conv and the residual adds) was pruned
    # the conv a pixel shuffle regroups keeps its width (4 sub-pixels × ngf)
    head = pruned.model[pruned.trunk_start + 2]
    assert isinstance(head, nn.Conv2d) and head.out_channels == 32
    rebuilt = build_generator(spec)
    rebuilt.load_state_dict(pruned.state_dict())
    save_model(pruned, tmp_path / "pruned")
    loaded = load_model(tmp_path / "pruned").model
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = pruned(x)
        assert torch.equal(rebuilt.eval()(x), y)
        assert torch.equal(loaded(x), y)


def _pairs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    return {"A": a, "B": (a.flip(-1) * 0.8).tanh()}


@pytest.mark.parametrize("method", ["omgd", "kd", "gan-compression"])
def test_distillers_train_it_and_batchnorm_statistics_follow_train_mode(method):
    torch.manual_seed(0)
    teacher = create_generator("resnet9", ngf=8, n_blocks=2).eval()
    student = create_generator("fast-resnet", **TINY)
    options = {"ndf": 4, "use_deep": False} if method == "omgd" else ({"ndf": 4} if method != "kd" else {})
    distiller = get_distiller(method)(student, teacher, DistillConfig(lr=1e-3, options=options),
                                      perceptual=TinyPerceptual() if method == "omgd" else None)  # fmt: skip
    before = copy.deepcopy(student.state_dict())
    distiller.train()
    logs = distiller.training_step(_pairs(), 0)
    assert logs and all(np.isfinite(v) for v in logs.values())
    after = student.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.endswith("running_mean") for k in changed)  # BN trained in train mode
    assert any(k.endswith("weight") and "model.1." in k for k in changed)  # the stem conv learned
    student.eval()
    frozen = copy.deepcopy(student.state_dict())
    with torch.no_grad():
        student(_pairs(1)["A"])
    assert all(torch.equal(frozen[k], v) for k, v in student.state_dict().items())  # eval: stats untouched
