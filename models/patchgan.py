"""The 70×70 PatchGAN discriminator (junyanz ``NLayerDiscriminator``, same parameter names)."""

from __future__ import annotations

from torch import Tensor, nn

from pocketgan.models.base import norm_layer
from pocketgan.models.registry import register_discriminator


class PatchGAN(nn.Module):
    """``n_layers`` stride-2 convs then two stride-1 convs; outputs a map of per-patch logits."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2)]  # fmt: skip
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


@register_discriminator("patchgan")
def patchgan(**config) -> PatchGAN:
    """70×70 PatchGAN; ``input_nc`` is 6 for conditional (pix2pix) use, 3 for CycleGAN."""
    return PatchGAN(**config)
