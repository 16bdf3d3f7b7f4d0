"""Structural channel pruning of generators with torch-pruning, to a ratio or a MAC target.

torch-pruning's ``MetaPruner`` traces the generator into a dependency graph, so channels
tied together (residual adds, depthwise convs, ConvTranspose inputs, U-Net skip
concatenations) are removed together. The output layer keeps its channels. The pruned
generator is then rebuilt from its spec (per-conv widths) and loaded with the pruned
weights, so it equals what a later ``load_model`` of the saved directory gives, bit for bit.

A MAC target (``target_rate`` / ``target_macs``) is met by bisection on the pruning ratio,
each trial pruning a fresh deep copy and counting its MACs with fvcore (convention in
:mod:`pocketgan.models.profile`). Per-layer pruning keeps ``int(width * (1 - ratio))``
channels, so at some ratios many layers lose a channel at once and the MACs jump past the
1-point window; the search then splits that jump: the largest channel groups that jump take
the higher ratio and the others the lower one (``PruneResult.layer_ratios``), bisecting on
how many do.

Taylor importance needs gradients but pruning has no data: the proxy loss is the output
energy ``mean(G(x)**2)`` on a fixed batch of random inputs in [-1, 1] (or on
``example_inputs`` when given), so a channel scores by how much the output depends on it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.models.base import Generator, conv_layers
from pocketgan.models.io import build_generator, load_state_dict_checked
from pocketgan.models.profile import DEFAULT_SIZE, ProfileReport, model_device, profile_model

IMPORTANCES = ("l1", "l2", "taylor", "random")
TAYLOR_BATCH = 4
TAYLOR_SIZE = 64  # spatial size of the random inputs that score Taylor importance
TRACE_SIZE = 32  # spatial size used to trace the dependency graph and count MACs during a search
RATIO_RESOLUTION = 1e-3  # the ratio bisection stops when the ratio is known this precisely...
ON_TARGET = 0.001  # ...or when a candidate is within 0.1 pp of the MAC budget
DEFAULT_TOLERANCE = 0.01  # a MAC target must be met within 1 percentage point of the original MACs


class LayerCollapseError(PocketganError):
    """A pruning ratio would remove every channel of some layer."""


@dataclass
class PruneResult:
    """A pruned generator (rebuilt from its spec) and what pruning did to it.

    ``ratio`` is the pruning ratio of every layer group except those in ``layer_ratios``
    (group root layer → ratio), which a target search may prune one step further.
    """

    model: Generator
    ratio: float
    before: ProfileReport
    after: ProfileReport
    importance: str
    global_pruning: bool
    round_to: int | None
    target: dict[str, float] | None = None
    layer_ratios: dict[str, float] = field(default_factory=dict)

    @property
    def macs_before(self) -> int:
        return self.before.macs

    @property
    def macs_after(self) -> int:
        return self.after.macs

    @property
    def params_before(self) -> int:
        return self.before.params

    @property
    def params_after(self) -> int:
        return self.after.params

    @property
    def rate(self) -> float:
        """Compression rate ``1 - MACs_after / MACs_before``."""
        return 1.0 - self.macs_after / self.macs_before

    @property
    def param_rate(self) -> float:
        return 1.0 - self.params_after / self.params_before

    def provenance(self) -> dict[str, Any]:
        """What to record in the pruned model directory's ``model.json``."""
        tp = require("torch_pruning", "train", "channel pruning")
        return {
            "method": "channel-pruning",
            "pruner": f"torch-pruning {tp.__version__} MetaPruner",
            "importance": self.importance,
            "global_pruning": self.global_pruning,
            "round_to": self.round_to,
            "ratio": self.ratio,
            "layer_ratios": dict(self.layer_ratios),
            "target": self.target,
            "input_shape": list(self.before.input_shape),
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "rate": self.rate,
            "counter": self.before.counter,
        }


class ChannelPruner:
    """Prunes deep copies of one generator at any ratio with torch-pruning's ``MetaPruner``.

    ``importance``: ``l1`` / ``l2`` (group weight magnitude), ``taylor`` (|w · dL/dw| with the
    output-energy proxy loss, see the module docstring) or ``random`` (seeded by ``seed``).
    ``global_pruning`` ranks channels across layers instead of pruning each layer by ``ratio``;
    ``round_to`` keeps widths multiples of N. The model passed in is never modified.
    """

    def __init__(
        self,
        model: Generator,
        *,
        importance: str = "l1",
        global_pruning: bool = False,
        round_to: int | None = None,
        seed: int = 0,
        example_inputs: torch.Tensor | None = None,
    ) -> None:
        if importance not in IMPORTANCES:
            raise PocketganError(f"unknown importance {importance!r}; choose from {', '.join(IMPORTANCES)}")
        if round_to is not None and round_to < 1:
            raise PocketganError(f"--round-to must be a positive integer; got {round_to}")
        self.tp = require("torch_pruning", "train", "channel pruning")
        self.importance = importance
        self.global_pruning = global_pruning
        self.round_to = round_to
        self.seed = seed
        self.base = copy.deepcopy(model).eval()
        for module in self.base.modules():  # in-place ops hide layers (InstanceNorm) from the graph
            if hasattr(module, "inplace"):
                module.inplace = False
        self.example = torch.zeros(small_input_shape(model), device=model_device(model))
        self.output_layer = _last_conv_called(self.base, self.example)
        self.grads = self._taylor_grads(example_inputs) if importance == "taylor" else {}
        self._groups: list[tuple[str, list[str]]] | None = None

    def prune(self, ratio: float, layer_ratios: Mapping[str, float] | None = None) -> Generator:
        """A deep copy pruned at ``ratio`` (torch-pruning's result, not yet rebuilt from its spec).

        ``layer_ratios`` gives other ratios to the channel groups rooted at the named layers
        (see :meth:`groups`); it applies to per-layer pruning only.
        """
        model = copy.deepcopy(self.base)
        for name, param in model.named_parameters():
            if name in self.grads:
                param.grad = self.grads[name].clone()
        pruner, names = self._meta_pruner(model, ratio, layer_ratios)
        refused = _record_refused_groups(pruner, names)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            pruner.step()
        if refused:
            keep = f" (or fewer than --round-to {self.round_to})" if self.round_to else ""
            raise LayerCollapseError(
                f"pruning ratio {ratio:.4f} would leave no channels{keep} in {', '.join(sorted(refused)[:3])}; "
                "use a smaller ratio"
            )
        model.zero_grad(set_to_none=True)
        return model.eval()

    def groups(self) -> list[tuple[str, list[str]]]:
        """The prunable channel groups as ``(root layer, convs whose outputs they prune)``, in graph order."""
        if self._groups is None:
            pruner, names = self._meta_pruner(copy.deepcopy(self.base), 0.0)
            convs = {id(m) for _, m in conv_layers(pruner.model)}
            self._groups = [
                (
                    names[id(group[0].dep.target.module)],
                    [
                        names[id(dep.target.module)]
                        for dep, _ in group
                        if id(dep.target.module) in convs and pruner.DG.is_out_channel_pruning_fn(dep.handler)
                    ],
                )
                for group in pruner.DG.get_all_groups(
                    ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types
                )
            ]
        return self._groups

    def _meta_pruner(
        self, model: nn.Module, ratio: float, layer_ratios: Mapping[str, float] | None = None
    ) -> tuple[Any, dict[int, str]]:
        modules = dict(model.named_modules())
        with torch.enable_grad():  # the dependency graph is traced through autograd
            pruner = self.tp.pruner.MetaPruner(
                model,
                self.example,
                importance=self._importance(),
                pruning_ratio=ratio,
                pruning_ratio_dict={modules[n]: r for n, r in (layer_ratios or {}).items()} or None,
                global_pruning=self.global_pruning,
                round_to=self.round_to,
                ignored_layers=[modules[self.output_layer]],
            )
        return pruner, {id(m): n for n, m in modules.items()}

    def _importance(self) -> Any:
        imp = self.tp.importance
        return {
            "l1": lambda: imp.MagnitudeImportance(p=1),
            "l2": lambda: imp.MagnitudeImportance(p=2),
            "taylor": imp.TaylorImportance,
            "random": imp.RandomImportance,
        }[self.importance]()

    def _taylor_grads(self, inputs: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Gradients of the output-energy proxy loss ``mean(G(x)**2)`` (eval mode: BatchNorm stats untouched)."""
        if inputs is None:
            generator = torch.Generator().manual_seed(self.seed)
            size = _valid_size(self.base, TAYLOR_SIZE)
            shape = (TAYLOR_BATCH, self.base.io.input_channels, size, size)
            inputs = torch.rand(shape, generator=generator) * 2 - 1
        work = copy.deepcopy(self.base)
        with torch.enable_grad():  # callers may be inside no_grad (e.g. a distillation loop)
            work(inputs.to(model_device(work))).pow(2).mean().backward()
        return {name: p.grad.detach().clone() for name, p in work.named_parameters() if p.grad is not None}


def prune_model(
    model: Generator,
    *,
    ratio: float | None = None,
    target_rate: float | None = None,
    target_macs: int | float | None = None,
    importance: str = "l1",
    global_pruning: bool = False,
    round_to: int | None = None,
    input_size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE),
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    example_inputs: torch.Tensor | None = None,
    progress: bool = True,
) -> PruneResult:
    """Prune ``model``'s channels by ``ratio``, or to ``target_rate`` / ``target_macs`` (exactly one).

    ``ratio`` is torch-pruning's channel pruning ratio in (0, 1). ``target_rate=0.9`` asks for at
    least 90% fewer MACs and ``target_macs`` for at most that many MACs at ``input_size``; the
    search (see the module docstring) must land within ``tolerance`` (a fraction of the original
    MACs) of the target, or a :class:`PocketganError` names the nearest achievable rates.
    ``progress`` shows the search on stderr. The returned model is rebuilt from its spec (eval
    mode); ``model`` itself is left untouched.
    """
    if not isinstance(model, Generator):
        raise PocketganError("prune_model needs a pocketgan Generator (its spec rebuilds the pruned model)")
    _check_one_goal(ratio, target_rate, target_macs)
    input_shape = (1, model.io.input_channels, *input_size)
    before = profile_model(model, input_shape)
    budget = _macs_budget(before.macs, target_rate, target_macs)
    pruner = ChannelPruner(
        model,
        importance=importance,
        global_pruning=global_pruning,
        round_to=round_to,
        seed=seed,
        example_inputs=example_inputs,
    )
    with _one_torch_thread():
        if ratio is not None:
            trial = _Trial(ratio, pruner.prune(ratio), 0)
            goal = None
        else:
            with _progress("searching the pruning ratio", progress) as bar:
                trial = _TargetSearch(pruner, before, budget, bar).run(tolerance)
            goal = {"rate": target_rate} if target_rate is not None else {"macs": int(budget)}
    rebuilt = rebuild_pruned(trial.model)
    return PruneResult(
        model=rebuilt,
        ratio=trial.ratio,
        before=before,
        after=profile_model(rebuilt, input_shape),
        importance=importance,
        global_pruning=global_pruning,
        round_to=round_to,
        target=goal,
        layer_ratios=trial.layer_ratios,
    )


def rebuild_pruned(pruned: Generator) -> Generator:
    """Build a fresh generator from ``pruned.spec()`` and load the pruned weights (strict, eval mode).

    Fails with a one-line error naming the layers when the architecture cannot express the widths.
    """
    rebuilt = build_generator(pruned.spec())
    load_state_dict_checked(rebuilt, pruned.state_dict(), f"the pruned {pruned.arch} (rebuilt from its spec)")
    return rebuilt.eval()


def small_input_shape(model: Generator) -> tuple[int, int, int, int]:
    """A small valid NCHW input (``TRACE_SIZE`` px or the architecture's minimum): cheap to trace."""
    size = _valid_size(model, TRACE_SIZE)
    return (1, model.io.input_channels, size, size)


def mac_counter(model: Generator, before: ProfileReport) -> Callable[[nn.Module], int]:
    """A function counting a pruned copy's MACs at ``before.input_shape``, as cheaply as exactness allows.

    A fully convolutional generator's MACs scale exactly with the input area; when that holds for
    ``model`` (checked against ``before``, counted at full size), copies are counted at the small
    trace size and scaled, which is much faster. Otherwise every copy is counted at full size.
    """
    small = small_input_shape(model)
    full_area = before.input_shape[2] * before.input_shape[3]
    small_area = small[2] * small[3]
    if small_area < full_area and profile_model(model, small).macs * full_area == before.macs * small_area:
        return lambda pruned: profile_model(pruned, small).macs * full_area // small_area
    return lambda pruned: profile_model(pruned, before.input_shape).macs


@dataclass
class _Trial:
    """One pruned deep copy of the search."""

    ratio: float
    model: Generator
    macs: int
    layer_ratios: dict[str, float] = field(default_factory=dict)


class _TargetSearch:
    """Finds the least pruning whose MACs fit ``budget`` (see the module docstring)."""

    def __init__(self, pruner: ChannelPruner, before: ProfileReport, budget: float, bar: _Bar) -> None:
        self.pruner = pruner
        self.before = before
        self.budget = budget
        self.bar = bar
        self.count_macs = mac_counter(pruner.base, before)

    def run(self, tolerance: float) -> _Trial:
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

    def _bisect_ratio(self) -> tuple[_Trial | None, _Trial | None]:
        """The largest ratio tried that prunes too little and the smallest that fits the budget.

        MACs fall monotonically as the ratio grows, until some layer would lose all its channels
        (:class:`LayerCollapseError`), which counts as pruning too far.
        """
        lo, hi = 0.0, 1.0
        short: _Trial | None = None
        fit: _Trial | None = None
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

    def _split_jump(self, short: _Trial, fit: _Trial, tolerance: float) -> tuple[_Trial, _Trial]:
        """Between two adjacent ratios, give the higher one to some of the groups that jump.

        Greedy, largest groups first: bisect the longest run of groups that still prunes too
        little, keep it, skip the group that overshoots, and go on with the smaller ones.
        """
        low, high = short.ratio, fit.ratio
        before_widths, after_widths = _widths(short.model), _widths(fit.model)
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

    def _try(self, ratio: float, layer_ratios: dict[str, float] | None = None) -> _Trial | None:
        try:
            model = self.pruner.prune(ratio, layer_ratios)
        except LayerCollapseError:
            self.bar.advance(f"ratio {ratio:.4f}: a layer would vanish")
            return None
        trial = _Trial(ratio, model, self.count_macs(model), dict(layer_ratios or {}))
        self.bar.advance(f"ratio {ratio:.4f}: {self._rate(trial)} fewer MACs")
        return trial

    def _overshoot(self, trial: _Trial) -> float:
        return (self.budget - trial.macs) / self.before.macs

    def _rate(self, trial: _Trial) -> str:
        return f"{1 - trial.macs / self.before.macs:.1%}"

    def _goal(self) -> str:
        return f"{1 - self.budget / self.before.macs:.1%} fewer MACs ({self.budget:,.0f})"


def _check_one_goal(ratio: float | None, target_rate: float | None, target_macs: float | None) -> None:
    given = [g for g in (ratio, target_rate, target_macs) if g is not None]
    if len(given) != 1:
        raise PocketganError("give exactly one of --ratio, --target-rate or --target-macs")
    for name, value in (("--ratio", ratio), ("--target-rate", target_rate)):
        if value is not None and not 0.0 < value < 1.0:
            raise PocketganError(f"{name} must be between 0 and 1 (exclusive); got {value}")


def _macs_budget(macs_before: int, target_rate: float | None, target_macs: float | None) -> float:
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


def _widths(model: nn.Module) -> dict[str, int]:
    return {name: int(m.out_channels) for name, m in conv_layers(model)}


class _Bar:
    """A rich progress bar whose total grows as the search plans more trials."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task, self.total = progress, task, 0

    def extend(self, trials: int) -> None:
        self.total += trials
        self.progress.update(self.task, total=self.total)

    def advance(self, status: str) -> None:
        self.progress.update(self.task, advance=1, status=status)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run graph tracing and small-input trials on one thread (restored after).

    They are dominated by Python and tiny convolutions; extra intra-op threads only spin, which
    made a search ~10x slower on a busy 2-core machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _progress(description: str, enabled: bool) -> Iterator[_Bar]:
    """A transient progress bar on stderr (nothing when ``enabled`` is false or stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pocketgan.console import err_console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"))
    disable = not (enabled and err_console.is_terminal)
    with Progress(*columns, console=err_console, transient=True, disable=disable) as progress:
        yield _Bar(progress, progress.add_task(description, total=0, status=""))


def _valid_size(model: Generator, at_least: int) -> int:
    """The smallest square side of at least ``at_least`` pixels that ``model`` accepts."""
    multiple = model.io.size_multiple
    return multiple * math.ceil(at_least / multiple)


def _last_conv_called(model: nn.Module, example: torch.Tensor) -> str:
    """Name of the conv that runs last in a forward pass: the output layer, whose channels are kept."""
    order: list[str] = []
    handles = [m.register_forward_hook(lambda *_, n=n: order.append(n)) for n, m in conv_layers(model)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise PocketganError(f"{type(model).__name__} has no convolution to prune")
    return order[-1]


def _record_refused_groups(pruner: Any, names: dict[int, str]) -> set[str]:
    """Names of layers whose group torch-pruning refuses because it would lose every channel.

    torch-pruning silently skips such groups (``DependencyGraph.check_pruning_group``), which
    would leave that layer unpruned; recording them lets ``prune`` fail loudly instead.
    """
    refused: set[str] = set()
    check = pruner.DG.check_pruning_group

    def recording_check(group: Any) -> bool:
        ok = check(group)
        if not ok:
            refused.add(names.get(id(group[0].dep.target.module), "?"))
        return ok

    pruner.DG.check_pruning_group = recording_check
    return refused
