"""Meeting a MAC target: bisection on the pruning ratio, then splitting the jump between two ratios.

Each trial prunes a fresh deep copy (:class:`~pocketgan.models.prune.ChannelPruner`) and counts
its MACs with fvcore (convention in :mod:`pocketgan.models.profile`). Per-layer pruning keeps
``int(width * (1 - ratio))`` channels, so at some ratios many layers lose a channel at once and
the MACs jump past the 1-point window; the search then splits that jump: the largest channel
groups that jump take the higher ratio and the others the lower one (``layer_ratios``),
bisecting on how many do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressTask
from pocketgan.models.base import Generator, prunable_widths
from pocketgan.models.graph import small_input
from pocketgan.models.profile import ProfileReport, profile_model

if TYPE_CHECKING:
    from pocketgan.models.prune import ChannelPruner

RATIO_RESOLUTION = 1e-3  # the ratio bisection stops when the ratio is known this precisely...
ON_TARGET = 0.001  # ...or when a candidate is within 0.1 pp of the MAC budget


class LayerCollapseError(PocketganError):
    """A pruning ratio would remove every channel of some layer."""


def mac_counter(model: Generator, before: ProfileReport) -> Callable[[nn.Module], int]:
    """A function counting a pruned copy's MACs at ``before.input_shape``, as cheaply as exactness allows.

    A fully convolutional generator's MACs scale exactly with the input area; when that holds for
    ``model`` (checked against ``before``, counted at full size), copies are counted at the small
    trace size and scaled, which is much faster. Otherwise every copy is counted at full size.
    """
    small = tuple(small_input(model).shape)
    if len(small) != 4:  # a latent input: no smaller size to count at
        return lambda pruned: profile_model(pruned, before.input_shape).macs
    full_area = before.input_shape[2] * before.input_shape[3]
    small_area = small[2] * small[3]
    if small_area < full_area and profile_model(model, small).macs * full_area == before.macs * small_area:
        return lambda pruned: profile_model(pruned, small).macs * full_area // small_area
    return lambda pruned: profile_model(pruned, before.input_shape).macs

@dataclass
class Trial:
    """One pruned deep copy of the search."""

    ratio: float
    model: Generator
    macs: int
    layer_ratios: dict[str, float] = field(default_factory=dict)


class TargetSearch:
    """Finds the least pruning whose MACs fit ``budget`` (see the module docstring)."""

    def __init__(self, pruner: ChannelPruner, before: ProfileReport, budget: float, bar: ProgressTask) -> None:
        self.pruner = pruner
        self.before = before
        self.budget = budget
        self.bar = bar
        self.count_macs = mac_counter(pruner.base, before)

    def run(self, tolerance: float) -> Trial:
        short, fit = self._bisect_ratio()
        if fit is None:
            reach = f"; the most it allows is {self._rate(short)} at ratio {short.ratio:.4f}" if short else ""
            raise PocketganError(f"cannot prune to {self._goal()} without removing whole layers{reach}")
        if self._overshoot(fit) > tolerance and short is not None and not self.pruner.global_pruning:
            short, fit = self._split_jump(short, fit, tolerance)
        if self._overshoot(fit) > tolerance:
            nearest = f"{self._rate(short)} (ratio {short.ratio:.4f}) and " if short else ""
            raise PocketganError(
                f"cannot land within {tolerance * 100:g} pp of {self._goal()}: channel groups are too coarse here; "
                f"the nearest rates are {nearest}{self._rate(fit)} (ratio {fit.ratio:.4f}); pass --ratio to pick one"
            )
        return fit

    def _bisect_ratio(self) -> tuple[Trial | None, Trial | None]:
        """The largest ratio tried that prunes too little and the smallest that fits the budget.

        MACs fall monotonically as the ratio grows, until some layer would lose all its channels
        (:class:`LayerCollapseError`), which counts as pruning too far.
        """
        lo, hi = 0.0, 1.0
        short: Trial | None = None
        fit: Trial | None = None
        steps = math.ceil(math.log2(1.0 / RATIO_RESOLUTION))
        self.bar.extend(steps)
        for step in range(steps):
            mid = (lo + hi) / 2
            trial = self._try(mid)
            if trial is not None and trial.macs <= self.budget:
                hi, fit = mid, trial
            elif trial is not None:
                lo, short = mid, trial
            else:
                hi = mid
            if fit is not None and self._overshoot(fit) <= ON_TARGET:
                self.bar.extend(step + 1 - steps)
                break
        return short, fit

    def _split_jump(self, short: Trial, fit: Trial, tolerance: float) -> tuple[Trial, Trial]:
        """Between two adjacent ratios, give the higher one to some of the groups that jump.

        Greedy, largest groups first: bisect the longest run of groups that still prunes too
        little, keep it, skip the group that overshoots, and go on with the smaller ones.
        """
        low, high = short.ratio, fit.ratio
        before_widths, after_widths = prunable_widths(short.model), prunable_widths(fit.model)
        weight = self.before.by_module
        jumping = [
            (root, sum(weight.get(layer, 0) for layer in layers))
            for root, layers in self.pruner.groups()
            if any(before_widths[layer] != after_widths[layer] for layer in layers)
        ]
        order = [root for root, _ in sorted(jumping, key=lambda item: item[1], reverse=True)]
        chosen: dict[str, float] = {}
        while order and self._overshoot(fit) > tolerance:
            lo, hi = 0, len(order) + 1  # chosen + order[:lo] prunes too little; order[:hi] fits (len+1: none)
            self.bar.extend(math.ceil(math.log2(hi)))
            while hi - lo > 1:
                mid = (lo + hi) // 2
                trial = self._try(low, {**chosen, **{root: high for root in order[:mid]}})
                if trial is None or trial.macs <= self.budget:  # None (a layer would vanish) cannot fit either
                    hi = mid
                    fit = trial if trial and self._overshoot(trial) < self._overshoot(fit) else fit
                else:
                    lo, short = mid, trial
            if hi > len(order):
                break
            chosen.update({root: high for root in order[:lo]})
            order = order[hi:]
        return short, fit

    def _try(self, ratio: float, layer_ratios: dict[str, float] | None = None) -> Trial | None:
        try:
            model = self.pruner.prune(ratio, layer_ratios)
        except LayerCollapseError:
            self.bar.advance(status=f"ratio {ratio:.4f}: a layer would vanish")
            return None
        trial = Trial(ratio, model, self.count_macs(model), dict(layer_ratios or {}))
        self.bar.advance(status=f"ratio {ratio:.4f}: {self._rate(trial)} fewer MACs")
        return trial

    def _overshoot(self, trial: Trial) -> float:
        return (self.budget - trial.macs) / self.before.macs

    def _rate(self, trial: Trial) -> str:
        return f"{1 - trial.macs / self.before.macs:.1%}"

    def _goal(self) -> str:
        return f"{1 - self.budget / self.before.macs:.1%} fewer MACs ({self.budget:,.0f})"


def check_one_goal(ratio: float | None, target_rate: float | None, target_macs: float | None) -> None:
    """Exactly one of the three goals, ratios in (0, 1); else a one-line error."""
    given = [g for g in (ratio, target_rate, target_macs) if g is not None]
    if len(given) != 1:
        raise PocketganError("give exactly one of --ratio, --target-rate or --target-macs")
    for name, value in (("--ratio", ratio), ("--target-rate", target_rate)):
        if value is not None and not 0.0 < value < 1.0:
            raise PocketganError(f"{name} must be between 0 and 1 (exclusive); got {value}")


def macs_budget(macs_before: int, target_rate: float | None, target_macs: float | None) -> float:
    """The MAC budget a target asks for (``inf`` when pruning by ratio)."""
    if target_rate is not None:
        return (1.0 - target_rate) * macs_before
    if target_macs is None:
        return math.inf
    if not 0 < target_macs < macs_before:
        raise PocketganError(
            f"--target-macs {target_macs:,.0f} must be positive and below the model's {macs_before:,} MACs"
        )
    return float(target_macs)
