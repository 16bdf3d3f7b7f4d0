"""An independent MAC count for tests: forward hooks and layer shapes, fvcore's convention written out.

Conv: weights × output positions; ConvTranspose: weights × input positions; InstanceNorm and
GroupNorm: 4 per element (5 with affine parameters); BatchNorm in eval mode: 2 per element;
activations, adds, pads and pixel shuffles: 0. Functional convolutions inside custom modules
are not seen (tests add those by hand).
"""

from __future__ import annotations

import torch
from torch import nn


def hand_macs(model: nn.Module, size: int) -> int:
    """MACs of one ``size``×``size`` input counted from layer shapes (the convention in the module docstring)."""
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        x = inputs[0]
        if isinstance(module, nn.ConvTranspose2d):
            total += module.weight.numel() * x.shape[2] * x.shape[3]
        elif isinstance(module, nn.Conv2d):
            total += module.weight.numel() * output.shape[2] * output.shape[3]
        elif isinstance(module, (nn.InstanceNorm2d, nn.GroupNorm)):
            total += x.numel() * (5 if module.affine else 4)
        elif isinstance(module, nn.BatchNorm2d):
            total += x.numel() * 2

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(m.children())]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return total
