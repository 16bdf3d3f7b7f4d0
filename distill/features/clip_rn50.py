"""CLIP RN50's image tower (OpenAI's ``ModifiedResNet``), without torchvision or the clip package.

The differences from a torchvision ResNet-50 (openai/CLIP ``clip/model.py``): a 3-conv stem
(3×3 convs of 32, 32, 64 channels, the first strided) followed by a 2×2 average pool; anti-aliased
downsampling (every stride-2 bottleneck average-pools after its 3×3 conv, and its shortcut
average-pools before its 1×1 conv); and an attention pool (the mean token attends over the 7×7
grid plus itself, 32 heads, with a learned positional embedding) that projects 2048 → 1024.

State-dict keys are the CLIP checkpoint's, under ``visual.`` (a file with only the visual tower's
keys, without the prefix, loads too; the text tower's keys are ignored)::

    visual.conv1.weight [32, 3, 3, 3]   visual.conv2.weight [32, 32, 3, 3]   visual.conv3.weight [64, 32, 3, 3]
    visual.bn{1,2,3}.*                  visual.layer{1..4}.{i}.conv{1,2,3} / bn{1,2,3}
    visual.layer{1..4}.0.downsample.0.weight (1×1 conv), .downsample.1.* (batch norm)
    visual.attnpool.positional_embedding [50, 2048]
    visual.attnpool.{q,k,v}_proj.{weight [2048, 2048], bias}   visual.attnpool.c_proj.{weight [1024, 2048], bias}

Registered as the feature network ``clip-rn50``: images are resized to 224×224 and normalized with
CLIP's mean/std; ``embed`` is the 1024-d attention-pooled image embedding (``encode_image``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.core.errors import PocketganError
from pocketgan.distill.features.base import FeatureNetwork, register_feature_network
from pocketgan.distill.features.bottleneck import RESNET50_BLOCKS, add_stages, stage_maps
from pocketgan.distill.features.towers import (
    INPUT_SIZE,
    imagenet_input,
    load_tower_weights,
    read_tower_state,
    strip_prefixes,
    tower_factory,
)

NAME = "clip-rn50"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_PATTERNS = ("clip-rn50*", "clip_rn50*", "RN50*")
WIDTH = 64
EMBED_DIM = 1024
HEADS = WIDTH * 32 // 64


class AttentionPool2d(nn.Module):
    """The mean of the grid, prepended as a token, attends (multi-head) over the grid and itself; one vector out."""

    def __init__(self, grid: int, embed_dim: int, num_heads: int, output_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.flatten(2).permute(2, 0, 1)  # (HW, N, C)
        tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens], dim=0)
        if tokens.shape[0] != self.positional_embedding.shape[0]:
            raise PocketganError(
                f"CLIP attention pool expects a {self.positional_embedding.shape[0] - 1}-position grid "
                f"(224×224 input), got {tokens.shape[0] - 1}"
            )
        tokens = tokens + self.positional_embedding[:, None, :].to(tokens.dtype)
        pooled, _ = F.multi_head_attention_forward(
            query=tokens[:1], key=tokens, value=tokens, embed_dim_to_check=tokens.shape[-1],
            num_heads=self.num_heads, in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias, training=self.training,
            need_weights=False, use_separate_proj_weight=True,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
        )  # fmt: skip
        return pooled[0]


class ClipRN50Visual(FeatureNetwork):
    """CLIP RN50's ``ModifiedResNet`` (keys without the ``visual.`` prefix); ``embed`` is the 1024-d image embedding."""

    def __init__(self, name: str = NAME) -> None:
        super().__init__()
        self.name = name
        self.num_features = EMBED_DIM
        self.level_channels = (256, 512, 1024, 2048)
        half = WIDTH // 2
        self.conv1 = nn.Conv2d(3, half, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, WIDTH, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(WIDTH)
        self.avgpool = nn.AvgPool2d(2)
        self.relu = nn.ReLU()
        add_stages(self, WIDTH, (WIDTH * 2**i for i in range(len(RESNET50_BLOCKS))), RESNET50_BLOCKS, antialiased=True)
        self.attnpool = AttentionPool2d(INPUT_SIZE // 32, WIDTH * 32, HEADS, EMBED_DIM)

    def prepare(self, x: Tensor) -> Tensor:
        return imagenet_input(x, CLIP_MEAN, CLIP_STD)

    def features(self, x: Tensor) -> list[Tensor]:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = self.relu(bn(conv(x)))
        return stage_maps(self, self.avgpool(x))

    def pool(self, features: list[Tensor]) -> Tensor:
        return self.attnpool(features[-1])


def visual_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The visual tower's tensors of a CLIP state dict, without the ``visual.`` prefix (text-tower keys dropped).

    A state dict without any ``visual.`` key is taken to be the visual tower alone.
    """
    state = strip_prefixes(state, ("module.",))
    if any(key.startswith("visual.") for key in state):
        return {key.removeprefix("visual."): value for key, value in state.items() if key.startswith("visual.")}
    return state


def load_clip_rn50(path: str | os.PathLike[str]) -> ClipRN50Visual:
    """CLIP RN50's image tower from a local ``.pth``/``.safetensors`` CLIP state dict (fp16 weights become fp32)."""
    net = ClipRN50Visual()
    load_tower_weights(net, visual_state(read_tower_state(path, NAME)), str(path))
    return net.freeze()


register_feature_network(NAME)(tower_factory(NAME, WEIGHT_PATTERNS, lambda path: load_clip_rn50(Path(path))))
