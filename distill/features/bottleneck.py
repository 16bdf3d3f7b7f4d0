"""The ResNet-50 bottleneck both image towers build on (torchvision's, and CLIP's anti-aliased variant).

``Bottleneck`` is torchvision's v1.5 block (the 3×3 conv carries the stride);
``Bottleneck(..., antialiased=True)`` is CLIP's ``ModifiedResNet`` block: every conv has stride 1,
a stride-2 block average-pools after its 3×3 conv and before its shortcut's 1×1 conv. Both keep
their checkpoint's state-dict keys (``conv{1,2,3}``, ``bn{1,2,3}``, ``downsample.0/1``).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

EXPANSION = 4
#: Bottlenecks per stage of a ResNet-50.
RESNET50_BLOCKS = (3, 4, 6, 3)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 convs with batch norm and a projection shortcut when the shape changes."""

    expansion = EXPANSION

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *, antialiased: bool = False) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        conv_stride = 1 if antialiased else stride
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=conv_stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if antialiased and stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential()
            if antialiased:
                self.downsample.add_module("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity())
            self.downsample.add_module("0", nn.Conv2d(inplanes, out, 1, stride=conv_stride, bias=False))
            self.downsample.add_module("1", nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.avgpool(self.relu(self.bn2(self.conv2(out))))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def make_stage(inplanes: int, planes: int, blocks: int, stride: int, *, antialiased: bool = False) -> nn.Sequential:
    """``blocks`` bottlenecks; the first one changes the width and carries ``stride``."""
    layers = [Bottleneck(inplanes, planes, stride, antialiased=antialiased)]
    layers += [Bottleneck(planes * EXPANSION, planes, antialiased=antialiased) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def add_stages(net: nn.Module, inplanes: int, widths: Iterable[int], blocks: Iterable[int], *, antialiased: bool = False) -> None:
    """Adds ``layer1..layer4`` to ``net`` (the first stage stride 1, the others stride 2)."""
    for index, (planes, count) in enumerate(zip(widths, blocks, strict=True)):
        stage = make_stage(inplanes, planes, count, stride=1 if index == 0 else 2, antialiased=antialiased)
        net.add_module(f"layer{index + 1}", stage)
        inplanes = planes * EXPANSION


def stage_maps(net: nn.Module, x: Tensor) -> list[Tensor]:
    """``x`` through ``net.layer1..layer4``; the four stages' maps."""
    maps = []
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = stage(x)
        maps.append(x)
    return maps
