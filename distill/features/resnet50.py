"""DINO ResNet-50: the self-supervised ResNet-50 image tower DiME embeds images with, without torchvision.

facebookresearch/dino publishes ``dino_resnet50_pretrain.pth``: a torchvision ``resnet50`` with
``fc`` replaced by an identity, so its state dict has torchvision's key names and no ``fc``::

    conv1.weight [64, 3, 7, 7]    bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    layer{1..4}.{i}.conv{1,2,3}.weight, .bn{1,2,3}.*   (3, 4, 6, 3 bottlenecks; stride on conv2)
    layer{1..4}.0.downsample.0.weight (1×1 conv), .downsample.1.* (batch norm)
    layer4.2.bn3.weight [2048]

This module builds that network (``fc`` keys, when a file has them, are ignored) and registers it
as the feature network ``dino-resnet50``: images are resized to 224×224 and normalized with the
ImageNet mean/std; :meth:`~DinoResNet50.forward` gives the four stages' maps (256, 512, 1024, 2048
channels) and ``embed`` the 2048-d global average pool DINO's linear evaluation reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn

from pocketgan.distill.features.base import FeatureNetwork, register_feature_network
from pocketgan.distill.features.bottleneck import RESNET50_BLOCKS, add_stages, stage_maps
from pocketgan.distill.features.towers import (
    imagenet_input,
    load_tower_weights,
    read_tower_state,
    strip_prefixes,
    tower_factory,
)

NAME = "dino-resnet50"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: File names looked for in the feature cache directory when no path is given.
WEIGHT_PATTERNS = ("dino_resnet50_pretrain*", "dino-resnet50*")


class DinoResNet50(FeatureNetwork):
    """ResNet-50 with torchvision's key names and no classifier (DINO's backbone); ``embed`` is 2048-d."""

    def __init__(self, name: str = NAME) -> None:
        super().__init__()
        self.name = name
        self.num_features = 2048
        self.level_channels = (256, 512, 1024, 2048)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        add_stages(self, 64, (64, 128, 256, 512), RESNET50_BLOCKS)

    def prepare(self, x: Tensor) -> Tensor:
        return imagenet_input(x, IMAGENET_MEAN, IMAGENET_STD)

    def features(self, x: Tensor) -> list[Tensor]:
        return stage_maps(self, self.maxpool(self.relu(self.bn1(self.conv1(x)))))

    def pool(self, features: list[Tensor]) -> Tensor:
        return features[-1].mean(dim=(2, 3))


def load_dino_resnet50(path: str | os.PathLike[str]) -> DinoResNet50:
    """DINO ResNet-50 from a local ``.pth``/``.safetensors`` state dict (torchvision names; ``fc`` ignored)."""
    state = strip_prefixes(read_tower_state(path, NAME))
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    net = DinoResNet50()
    load_tower_weights(net, state, str(path))
    return net.freeze()


register_feature_network(NAME)(tower_factory(NAME, WEIGHT_PATTERNS, lambda path: load_dino_resnet50(Path(path))))
