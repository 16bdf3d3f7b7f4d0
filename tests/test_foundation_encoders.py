"""DINO ResNet-50 and CLIP RN50 image towers, written without torchvision, against the published state dicts.

No pretrained weights can be downloaded here, so each test builds a tower with random weights,
writes its state dict under the *published* key names (``dino_resnet50_pretrain.pth``: torchvision's
``resnet50`` without ``fc``; OpenAI's CLIP state dict: the image tower under ``visual.``, fp16,
beside the text tower's keys) and loads it back through ``--feature`` resolution. The expected key
names, shapes and counts below are written out from the published layouts, not read from the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.distill.features import load_feature_network
from pocketgan.distill.features.clip_rn50 import AttentionPool2d, ClipRN50Visual
from pocketgan.distill.features.resnet50 import DinoResNet50
from pocketgan.distill.features.towers import tower_for_weights
from pocketgan.distill.stylegan2.encoders import load_dime_encoder

# torchvision resnet50: 53 convs, 53 batch norms (weight, bias, running_mean, running_var, num_batches_tracked);
# without fc: 53 + 53 × 5 = 318 tensors, 23,508,032 parameters (25,557,032 minus fc's 2,049,000).
DINO_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.running_var": (64,),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer3.5.bn3.weight": (1024,),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.2.bn3.weight": (2048,),
}
DINO_COUNT, DINO_PARAMS = 318, 23_508_032
# CLIP RN50 visual: 3 stem convs + 16 bottlenecks × 3 + 4 shortcut convs = 55 convs and 55 batch norms,
# attnpool: positional embedding + q/k/v/c projections (weight, bias) = 9: 55 + 55 × 5 + 9 = 339 tensors.
CLIP_KEYS = {
    "visual.conv1.weight": (32, 3, 3, 3),
    "visual.conv2.weight": (32, 32, 3, 3),
    "visual.conv3.weight": (64, 32, 3, 3),
    "visual.bn3.weight": (64,),
    "visual.layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "visual.layer2.0.conv2.weight": (128, 128, 3, 3),
    "visual.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "visual.layer4.2.bn3.weight": (2048,),
    "visual.attnpool.positional_embedding": (50, 2048),
    "visual.attnpool.q_proj.weight": (2048, 2048),
    "visual.attnpool.c_proj.weight": (1024, 2048),
    "visual.attnpool.c_proj.bias": (1024,),
}
CLIP_COUNT = 339


def randomized(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and batch-norm statistic drawn at random (so a load that does nothing shows)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.is_floating_point():
                fan_in = tensor[0].numel() if tensor.dim() > 1 else 1
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in))
    return net.freeze()


def images(batch: int = 2, size: int = 32) -> Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module")
def dino(tmp_path_factory) -> tuple[DinoResNet50, Path]:
    net = randomized(DinoResNet50(), seed=1)
    path = tmp_path_factory.mktemp("dino") / "dino_resnet50_pretrain.pth"
    extra = {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}  # a torchvision file's classifier
    torch.save({**net.state_dict(), **extra}, path)
    return net, path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[ClipRN50Visual, Path]:
    net = randomized(ClipRN50Visual(), seed=2)
    net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    state = {f"visual.{k}": v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    text = {"token_embedding.weight": torch.zeros(8, 4).half(), "logit_scale": torch.ones(()),
            "input_resolution": torch.tensor(224)}  # fmt: skip
    path = tmp_path_factory.mktemp("clip") / "clip-rn50.pth"
    torch.save({**state, **text}, path)  # the CLIP checkpoint's layout: fp16, both towers
    return net, path


def test_dino_resnet50_has_the_published_keys_and_shapes() -> None:
    net = DinoResNet50()
    state = net.state_dict()
    assert {k: tuple(state[k].shape) for k in DINO_KEYS} == DINO_KEYS
    assert len(state) == DINO_COUNT and not any(k.startswith("fc.") for k in state)
    assert sum(p.numel() for p in net.parameters()) == DINO_PARAMS


def test_clip_rn50_has_the_published_visual_keys_and_shapes() -> None:
    state = {f"visual.{k}": v for k, v in ClipRN50Visual().state_dict().items()}
    assert {k: tuple(state[k].shape) for k in CLIP_KEYS} == CLIP_KEYS
    assert len(state) == CLIP_COUNT
    assert not any("downsample.-1" in k for k in state)  # the shortcut's average pool has no weights


def test_dino_weights_load_back_by_path_name_and_cache(dino, tmp_path: Path) -> None:
    net, path = dino
    x = images()
    expected = net.embed(x)
    assert expected.shape == (2, 2048)
    assert tower_for_weights(path) == "dino-resnet50"
    by_path = load_feature_network(path)
    assert isinstance(by_path, DinoResNet50) and by_path.name == "dino-resnet50"
    torch.testing.assert_close(by_path.embed(x), expected)
    assert by_path.key == net.key
    (tmp_path / path.name).symlink_to(path)
    from_cache = load_feature_network("dino-resnet50", cache_dir=tmp_path)
    assert from_cache.key == net.key
    assert not torch.allclose(randomized(DinoResNet50(), seed=9).embed(x), expected)  # the weights matter
    assert [m.shape[1] for m in by_path(x)] == [256, 512, 1024, 2048] and by_path(x)[-1].shape[-1] == 7


def test_clip_weights_load_back_from_pth_and_safetensors(clip, tmp_path: Path) -> None:
    net, path = clip
    x = images()
    expected = net.embed(x)
    assert expected.shape == (2, 1024)
    loaded = load_feature_network(f"clip-rn50={path}")
    assert isinstance(loaded, ClipRN50Visual)
    torch.testing.assert_close(loaded.embed(x), expected)  # fp16 in the file: the net holds fp16-exact values
    visual_only = tmp_path / "rn50-visual.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(visual_only))  # no prefix, fp32
    assert tower_for_weights(visual_only) == "clip-rn50"
    torch.testing.assert_close(load_feature_network(visual_only).embed(x), expected)


def test_embeddings_carry_gradients_to_the_images_not_the_weights(dino) -> None:
    net, _ = dino
    x = images(batch=1).requires_grad_(True)
    net.embed(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_attention_pool_matches_multi_head_attention_by_hand() -> None:
    torch.manual_seed(0)
    pool = AttentionPool2d(grid=2, embed_dim=8, num_heads=2, output_dim=4).eval()
    x = torch.randn(3, 8, 2, 2)
    tokens = x.flatten(2).transpose(1, 2)  # (N, 4, 8)
    tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1) + pool.positional_embedding
    q = pool.q_proj(tokens[:, :1]).view(3, 1, 2, 4).transpose(1, 2)  # (N, heads, 1, 4)
    k = pool.k_proj(tokens).view(3, 5, 2, 4).transpose(1, 2)
    v = pool.v_proj(tokens).view(3, 5, 2, 4).transpose(1, 2)
    attended = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1) @ v  # √(head dim 4) = 2
    expected = pool.c_proj(attended.transpose(1, 2).reshape(3, 8))
    torch.testing.assert_close(pool(x), expected)


def test_dime_encoder_weights_follow_the_released_code(dino, clip) -> None:
    assert load_dime_encoder(f"dino-resnet50={dino[1]}").weight == 20.0
    assert load_dime_encoder(clip[1]).weight == 15.0


def test_bad_weights_are_one_line(dino, tmp_path: Path) -> None:
    with pytest.raises(PocketganError, match="needs a local weights file .* --feature clip-rn50=PATH"):
        load_feature_network("clip-rn50", cache_dir=tmp_path)
    with pytest.raises(PocketganError, match="does not fit"):
        load_feature_network(f"clip-rn50={dino[1]}")  # DINO's weights given to CLIP
    with pytest.raises(PocketganError, match="no such clip-rn50 weights file"):
        load_feature_network(f"clip-rn50={tmp_path / 'missing.pth'}")
    scripted = tmp_path / "RN50.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(scripted))
    with pytest.raises(PocketganError, match="TorchScript archive"):
        load_feature_network(f"clip-rn50={scripted}")
