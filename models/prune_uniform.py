"""Uniform channel pruning at the papers' rates: every prunable layer keeps ``ceil((1 - p) × width)`` channels.

The StyleGAN2 students of CAGAN, ITGC and NICKEL & DiME are their teacher with every layer's
width multiplied by ``1 - p`` and rounded up (SangyeopYeo/NICKEL_AND_DIME,
``training/networks_DD.py``: ``ceil((1 - pruning_ratio) * channels)`` per resolution); the
mapping network and the toRGB outputs keep their widths. At p = 0.7, 0.8, 0.9, 0.95 the
``paper256`` generator loses 90.73 %, 95.73 %, 98.92 % and 99.69 % of its MACs.

Which channels survive is chosen from the teacher's weights by a registered importance
criterion (:mod:`pocketgan.models.importance`, L1 by default), per torch-pruning channel group:
layers that must lose the same channels (a conv's outputs, the next modulation's outputs and the
next conv's inputs; residual adds) are ranked together. This reuses
:class:`~pocketgan.models.prune.ChannelPruner` with one ratio per group, set so that
torch-pruning, which keeps ``floor(width × (1 - ratio))`` channels, keeps exactly
``ceil((1 - p) × width)`` of them. Architectures register which layers keep their width
(:func:`register_kept_layers`; the output layer always does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.core.registry import Registry
from pocketgan.models.base import Generator, as_generator
from pocketgan.models.graph import type_name
from pocketgan.models.profile import DEFAULT_SIZE, profile_model
from pocketgan.models.prune import ChannelPruner, PruneResult, _one_torch_thread, rebuild_pruned

KEEP_RULE = "ceil((1 - p) * width)"
PAPER_RATES = (0.7, 0.8, 0.9, 0.95)
"""The pruning rates of the NICKEL & DiME / ITGC StyleGAN2 students."""

KeptLayers = Callable[[Generator], Mapping[str, str]]
#: Per architecture name: the layers uniform pruning keeps at full width, with why (``{name: reason}``).
KEPT_LAYERS: Registry[KeptLayers] = Registry(
    "uniform-pruning rule", builtin_modules=("pocketgan.models.stylegan2_pruners",)
)

__all__ = [
    "KEEP_RULE", "PAPER_RATES", "UniformPruneResult", "check_uniform_rate", "prune_uniform",
    "register_kept_layers", "uniform_width",
]  # fmt: skip


def register_kept_layers(arch: str, rule: KeptLayers) -> None:
    """Register ``rule(model) -> {layer name: reason}``: the layers of ``arch`` uniform pruning keeps."""
    KEPT_LAYERS.register(arch, rule)


def check_uniform_rate(rate: float) -> float:
    """``rate`` if it is a pruning rate in (0, 1), else one line saying why not."""
    rate = float(rate)
    if not 0.0 < rate < 1.0:  # also refuses NaN
        what = "would keep no channel" if rate >= 1.0 else "prunes nothing"
        raise PocketganError(
            f"--uniform {rate:g} {what}: every layer keeps {KEEP_RULE} channels, so the rate must be in (0, 1), "
            "e.g. 0.7, 0.8, 0.9 or 0.95 (the papers' rates)"
        )
    return rate


def uniform_width(width: int, rate: float) -> int:
    """``ceil((1 - rate) × width)``: the channels a layer of ``width`` keeps at pruning rate ``rate``.

    The product is rounded to 9 decimals first so that binary floating point does not turn an exact
    integer (``0.3 × 10``) into the next one up.
    """
    return max(1, math.ceil(round((1.0 - rate) * width, 9)))


@dataclass
class UniformPruneResult(PruneResult):
    """A :class:`PruneResult` of uniform pruning: ``ratio`` is the rate p every layer was pruned at."""

    def provenance(self) -> dict[str, Any]:
        """What ``model.json`` records: the pruning record plus the uniform rate and the keep rule."""
        record = super().provenance()
        record.update(method="uniform-channel-pruning", uniform=self.ratio, keep=KEEP_RULE)
        return record


def prune_uniform(
    model: Generator,
    rate: float,
    *,
    importance: str | Any = "l1",
    ignored_layers: Sequence[str] = (),
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
    example_inputs: torch.Tensor | None = None,
    pruners: Mapping[type, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> UniformPruneResult:
    """Prune every prunable layer of ``model`` to ``ceil((1 - rate) × width)`` channels.

    The output layer, the layers the architecture keeps (:func:`register_kept_layers`; StyleGAN2:
    the mapping network and toRGB) and ``ignored_layers`` keep their width; the channels kept are
    those ``importance`` ranks highest (``l1``, ``l2``, ``taylor``, ``random`` or a plugin).
    MACs are counted (fvcore) at ``input_size`` (default: the model's fixed size, else 256 px).
    The returned model is rebuilt from its spec (eval mode); ``model`` is untouched.
    """
    model = as_generator(model, "prune_uniform")
    rate = check_uniform_rate(rate)
    size = input_size or tuple(model.io.fixed_size or (DEFAULT_SIZE, DEFAULT_SIZE))
    input_shape = model.io.input_shape(1, size)
    before = profile_model(model, input_shape)
    kept = dict(kept_layers(model))
    with _one_torch_thread(), ProgressTask(progress, "pruning channels uniformly", total=1) as task:
        pruner = ChannelPruner(
            model, importance=importance, seed=seed, example_inputs=example_inputs,
            ignored_layers=[*kept, *ignored_layers], pruners=pruners,
        )  # fmt: skip
        pruned = pruner.prune(rate, exact_group_ratios(pruner, rate))
        task.advance(status=f"p = {rate:g}")
    rebuilt = rebuild_pruned(pruned, template=model, pruners=pruners)
    return UniformPruneResult(
        model=rebuilt, ratio=rate, before=before, after=profile_model(rebuilt, input_shape),
        importance=pruner.importance, global_pruning=False, round_to=None,
        ignored_layers=[n for n in pruner.ignored if n not in kept],
        kept_layers={pruner.output_layer: "the output layer", **kept, **pruner.kept},
        layer_pruners=[type_name(t) for t in pruner.pruners],
    )  # fmt: skip


def kept_layers(model: Generator) -> Mapping[str, str]:
    """The layers ``model``'s architecture keeps at full width under uniform pruning (``{}``: none registered)."""
    return KEPT_LAYERS.get(model.arch)(model) if model.arch in KEPT_LAYERS else {}


def exact_group_ratios(pruner: ChannelPruner, rate: float) -> dict[str, float]:
    """Per channel group (by root layer), the torch-pruning ratio that keeps ``uniform_width(width, rate)``.

    torch-pruning keeps ``floor(width × (1 - ratio))`` channels; asking it to keep half a channel
    more than the target makes the floor land on the target whatever the rounding of the product.
    """
    ratios = {}
    for root, _ in pruner.groups():
        width = pruner.base_widths[root]
        ratios[root] = 1.0 - (uniform_width(width, rate) + 0.5) / width
    return ratios
