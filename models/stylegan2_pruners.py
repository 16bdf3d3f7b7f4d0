"""torch-pruning pruners and the uniform-pruning rule for the StyleGAN2 layers.

torch-pruning traces autograd and treats every operation it does not know as element-wise, so
two StyleGAN2 layers need custom pruners (registered with :func:`~pocketgan.models.register_pruner`
for every pruning and rebuild):

- :class:`~pocketgan.models.stylegan2.layers.Demodulation` computes ``rsqrt(s² · ΣW²)`` from the
  style (``in`` channels) and the conv's weight: as element-wise ops its matrix product would tie
  the style's channels to the conv's *output* channels, coupling every layer into one group. As a
  layer of its own with separate in/out pruning it ties the style to the conv's inputs and its
  result to the conv's outputs, which is the real dependency. It has no weights (the conv's are
  pruned with the conv), so pruning it changes nothing.
- :class:`~pocketgan.models.stylegan2.layers.ConstantInput`'s ``(1, C, 4, 4)`` parameter loses
  channels on dimension 1 (a bare parameter would be cut along its last, spatial, dimension).

Everything else is traced as is: the style multiplies the conv's input, so the affine Linear's
outputs are coupled with the conv's input channels and the previous conv's outputs; the blur's
kernel is expanded to the input's channels at run time; biases are per-channel parameters.

Uniform pruning (:mod:`pocketgan.models.prune_uniform`) keeps the mapping network and the toRGB
outputs at full width, as the papers' students (SangyeopYeo/NICKEL_AND_DIME ``networks_DD.py``
prunes only the synthesis channels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from pocketgan.models.graph import register_pruner
from pocketgan.models.prune_uniform import register_kept_layers
from pocketgan.models.stylegan2.generator import StyleGAN2Generator, ToRGBLayer
from pocketgan.models.stylegan2.layers import ConstantInput, Demodulation


class DemodulationPruner:
    """torch-pruning pruner for :class:`Demodulation`: in channels (style) and out channels (conv outputs)
    are separate dependencies; both prune nothing, the weight being the conv's.

    A duck-typed ``BasePruningFunc`` (torch-pruning is an optional dependency, imported when pruning).
    """

    pruning_dim = 1

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        return layer

    def get_out_channels(self, layer: nn.Module) -> None:
        return None  # no state of its own: its width is the conv's

    def get_in_channels(self, layer: nn.Module) -> None:
        return None


class ConstantInputPruner:
    """torch-pruning pruner for :class:`ConstantInput`: removes channels of its ``(1, C, h, w)`` parameter."""

    pruning_dim = 1

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        drop = set(int(i) for i in idxs)
        keep = [c for c in range(layer.input.shape[1]) if c not in drop]
        layer.input = nn.Parameter(layer.input.data[:, keep].clone(), requires_grad=layer.input.requires_grad)
        return layer

    prune_in_channels = prune_out_channels  # it has no input: one set of channels

    def get_out_channels(self, layer: nn.Module) -> int:
        return int(layer.input.shape[1])

    get_in_channels = get_out_channels


def stylegan2_kept_layers(model: nn.Module) -> Mapping[str, str]:
    """The layers uniform pruning keeps: every mapping Linear (w keeps ``w_dim``) and every toRGB conv."""
    kept = {}
    for name, module in model.named_modules():
        if name.startswith("mapping.") and isinstance(module, nn.Linear):
            kept[name] = "the mapping network keeps its width"
        elif isinstance(module, ToRGBLayer):
            kept[f"{name}.conv"] = "toRGB outputs are the image channels"
    return kept


register_pruner(Demodulation, DemodulationPruner())
register_pruner(ConstantInput, ConstantInputPruner())
register_kept_layers(StyleGAN2Generator.arch, stylegan2_kept_layers)
