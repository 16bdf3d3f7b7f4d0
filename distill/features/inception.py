"""InceptionV3 in the FID configuration, without torchvision.

The standard FID network: the TensorFlow ``inception-2015-12-05`` graph as ported by
pytorch-fid (``FIDInceptionA/C/E_1/E_2``: average pools that exclude padding, a max pool
in the last block), 2048-d features from the final average pool. Weights load from a
LOCAL ``pt_inception-2015-12-05-6726825d.pth`` (``torch.load(weights_only=True)``; nothing
is downloaded).

Expected state-dict layout (torchvision's ``Inception3`` names, 1008 classes, no aux head),
every ``<block>`` a conv without bias + batch norm (eps 1e-3)::

    Conv2d_1a_3x3.conv.weight            [32, 3, 3, 3]
    Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var,num_batches_tracked*}
    Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3   (.conv / .bn as above)
    Mixed_5b, Mixed_5c, Mixed_5d        branch1x1, branch5x5_{1,2}, branch3x3dbl_{1,2,3}, branch_pool
    Mixed_6a                            branch3x3, branch3x3dbl_{1,2,3}
    Mixed_6b .. Mixed_6e                branch1x1, branch7x7_{1,2,3}, branch7x7dbl_{1..5}, branch_pool
    Mixed_7a                            branch3x3_{1,2}, branch7x7x3_{1..4}
    Mixed_7b, Mixed_7c                  branch1x1, branch3x3_{1,2a,2b}, branch3x3dbl_{1,2,3a,3b}, branch_pool
    fc.weight [1008, 2048], fc.bias [1008]   (unused for features; accepted when present)

(*``num_batches_tracked`` is optional.) The maps :meth:`FIDInceptionV3.forward` returns are
pytorch-fid's four blocks: 64 (after the first max pool), 192 (second max pool), 768
(before the aux classifier) and 2048 channels (before the final average pool).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.distill.features.base import FeatureNetwork
from pocketgan.core.errors import PocketganError

INPUT_SIZE = 299
WEIGHTS_GLOB = "pt_inception-2015-12-05*.pth"


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_same(x: Tensor) -> Tensor:
    """3×3 stride-1 average pool that ignores padding, as TensorFlow's (the FID blocks' patch)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35×35 block (FID variant: padding-excluding average pool)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branches = [
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_same(x)),
        ]
        return torch.cat(branches, 1)


class InceptionB(nn.Module):
    """35 → 17 reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branches = [
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ]
        return torch.cat(branches, 1)


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (FID variant: padding-excluding average pool)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        double = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = conv(double)
        branches = [
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_avg_pool_same(x)),
        ]
        return torch.cat(branches, 1)


class InceptionD(nn.Module):
    """17 → 8 reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = conv(seven)
        branches = [self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, kernel_size=3, stride=2)]
        return torch.cat(branches, 1)


class InceptionE(nn.Module):
    """8×8 block with expanded filter banks. ``max_pool``: the FID graph's last block max-pools its pool branch."""

    def __init__(self, in_channels: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_same(x)
        branches = [
            self.branch1x1(x),
            self.branch3x3_2a(single),
            self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double),
            self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ]
        return torch.cat(branches, 1)


class FIDInceptionV3(FeatureNetwork):
    """pytorch-fid's FID InceptionV3: input resized to 299×299 (bilinear), ``embed`` = 2048-d pool features."""

    def __init__(self, name: str = "inception") -> None:
        super().__init__()
        self.name = name
        self.num_features = 2048
        self.level_channels = (64, 192, 768, 2048)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # the checkpoint's classifier; kept so its state dict loads strictly

    def prepare(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return x

    def features(self, x: Tensor) -> list[Tensor]:
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
        first = x
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        second = x
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = block(x)
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        third = x
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return [first, second, third, x]

    def pool(self, features: list[Tensor]) -> Tensor:
        return features[-1].mean(dim=(2, 3))


def load_inception(path: str | Path) -> FIDInceptionV3:
    """FID InceptionV3 with weights from a local ``.pth`` state dict (read with ``weights_only=True``)."""
    from pocketgan.models.io import load_state_dict_checked, read_state_dict

    path = Path(path)
    if not path.is_file():
        raise PocketganError(f"{path}: no such InceptionV3 weights file")
    net = FIDInceptionV3()
    # Batch-norm step counters and the classifier don't affect features: fill them in when absent.
    optional = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked") or k.startswith("fc.")}
    load_state_dict_checked(net, {**optional, **read_state_dict(path)}, str(path))
    return net.freeze()


def find_inception_weights(search_dirs: list[Path]) -> Path | None:
    """The first ``pt_inception-2015-12-05*.pth`` in ``search_dirs`` (e.g. pytorch-fid's torch hub cache)."""
    for directory in search_dirs:
        if directory.is_dir():
            found = sorted(directory.glob(WEIGHTS_GLOB))
            if found:
                return found[0]
    return None
