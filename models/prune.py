"""Structural channel pruning of generators with torch-pruning, to a ratio or a MAC target.

torch-pruning's ``MetaPruner`` traces the generator into a dependency graph, so channels
tied together (residual adds, depthwise convs, ConvTranspose inputs, U-Net skip
concatenations, GroupNorm groups) are removed together. The output layer keeps its channels,
and so do the layers named in ``ignored_layers`` and the layers a pixel shuffle regroups
(torch-pruning maps channels one to one through it). Layers it cannot shrink by itself get
custom pruners (:func:`pocketgan.models.register_pruner`). Every pruned copy is run once
(:mod:`pocketgan.models.prune_check`): one that no longer runs is one error naming the module.

The pruned generator is then rebuilt and loaded with the pruned weights, so it equals what a
later ``load_model`` of the saved directory gives, bit for bit: a built-in from its spec
(per-conv widths), any other (wrapped) model by re-applying its recorded widths to a fresh copy
with the dependency graph (:func:`pocketgan.models.graph.apply_widths`). A MAC target
(``target_rate`` / ``target_macs``) is met by the search in :mod:`pocketgan.models.prune_search`.

Taylor importance needs gradients but pruning has no data: the proxy loss is the output
energy ``mean(G(x)**2)`` on a fixed batch of random inputs in [-1, 1] (or on
``example_inputs`` when given), so a channel scores by how much the output depends on it.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.core.registry import did_you_mean
from pocketgan.models.base import Generator, as_generator, prunable_layers, prunable_widths
from pocketgan.models.factory import build_from_reference
from pocketgan.models.graph import (
    apply_widths, customized_pruners, regrouped_layers, small_input, type_name, valid_size,
)  # fmt: skip
from pocketgan.models.importance import resolve_importance
from pocketgan.models.io import build_generator, load_state_dict_checked
from pocketgan.models.profile import DEFAULT_SIZE, ProfileReport, model_device, profile_model
from pocketgan.models.prune_check import check_pruned, trace_forward
from pocketgan.models.prune_search import LayerCollapseError, TargetSearch, Trial, check_one_goal, macs_budget
from pocketgan.models.wrap import WrappedGenerator

TAYLOR_BATCH = 4
TAYLOR_SIZE = 64  # spatial size of the random inputs that score Taylor importance
DEFAULT_TOLERANCE = 0.01  # a MAC target must be met within 1 percentage point of the original MACs

__all__ = ["ChannelPruner", "LayerCollapseError", "PruneResult", "prune_model", "rebuild_pruned"]


@dataclass
class PruneResult:
    """A pruned generator (rebuilt, eval mode) and what pruning did to it.

    ``ratio`` is the pruning ratio of every layer group except those in ``layer_ratios``
    (group root layer → ratio), which a target search may prune one step further.
    ``ignored_layers`` were kept at full width on request; ``kept_layers`` by pocketgan (with why).
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
    ignored_layers: list[str] = field(default_factory=list)
    kept_layers: dict[str, str] = field(default_factory=dict)
    layer_pruners: list[str] = field(default_factory=list)

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
            "ignored_layers": list(self.ignored_layers),
            "kept_layers": dict(self.kept_layers),
            "layer_pruners": list(self.layer_pruners),
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

    ``importance``: a registered criterion (``l1``, ``l2``, ``taylor``, ``random``; see
    :mod:`pocketgan.models.importance`) or a torch-pruning ``Importance``. ``global_pruning`` ranks
    channels across layers instead of pruning each layer by ``ratio``; ``round_to`` keeps widths
    multiples of N. ``ignored_layers`` (module names) keep their output channels, and so does every
    layer coupled with them; ``pruners`` adds torch-pruning custom pruners by module type to the
    registered ones. The model passed in is never modified.
    """

    def __init__(
        self,
        model: Generator,
        *,
        importance: str | Any = "l1",
        global_pruning: bool = False,
        round_to: int | None = None,
        seed: int = 0,
        example_inputs: torch.Tensor | None = None,
        ignored_layers: Sequence[str] = (),
        pruners: Mapping[type, Any] | None = None,
    ) -> None:
        model = as_generator(model, "pruning")
        if round_to is not None and round_to < 1:
            raise PocketganError(f"--round-to must be a positive integer; got {round_to}")
        self.tp = require("torch_pruning", "train", "channel pruning")
        self.importance, self.criterion = resolve_importance(importance)
        self.global_pruning = global_pruning
        self.round_to = round_to
        self.seed = seed
        self.base = copy.deepcopy(model).eval()
        for module in self.base.modules():  # in-place ops hide layers (InstanceNorm) from the graph
            if hasattr(module, "inplace"):
                module.inplace = False
        self.example = small_input(self.base)
        self.pruners = customized_pruners(self.base, pruners)
        self.reference = trace_forward(self.base, self.example)
        if self.reference.error is not None:
            raise PocketganError(f"{self.base.arch} does not run before pruning: {self.reference.error}")
        self.base_widths = prunable_widths(self.base)
        self.output_layer = _last_layer_called(self.base, self.reference.order)
        self.ignored = _existing_modules(self.base, ignored_layers)
        self.kept = {n: "a pixel shuffle regroups its channels" for n in regrouped_layers(self.base, self.example)}
        self.grads = self._taylor_grads(example_inputs) if self.criterion.needs_gradients else {}
        self._groups: list[tuple[str, list[str]]] | None = None

    def prune(self, ratio: float, layer_ratios: Mapping[str, float] | None = None) -> Generator:
        """A deep copy pruned at ``ratio`` (torch-pruning's result, not yet rebuilt), checked to still run.

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
        check_pruned(self.reference, self.base_widths, model.eval(), self.example)
        return model

    def groups(self) -> list[tuple[str, list[str]]]:
        """The prunable channel groups as ``(root layer, layers whose outputs they prune)``, in graph order."""
        if self._groups is None:
            pruner, names = self._meta_pruner(copy.deepcopy(self.base), 0.0)
            layers = {id(m) for _, m in prunable_layers(pruner.model)}
            self._groups = [
                (
                    names[id(group[0].dep.target.module)],
                    [
                        names[id(dep.target.module)]
                        for dep, _ in group
                        if id(dep.target.module) in layers and pruner.DG.is_out_channel_pruning_fn(dep.handler)
                    ],
                )
                for group in pruner.DG.get_all_groups(
                    ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types
                )
            ]
        return self._groups

    def kept_full_width(self) -> list[str]:
        """Every layer whose output channels are kept: the output layer, the ignored and the regrouped ones."""
        return list(dict.fromkeys([self.output_layer, *self.ignored, *self.kept]))

    def _meta_pruner(
        self, model: nn.Module, ratio: float, layer_ratios: Mapping[str, float] | None = None
    ) -> tuple[Any, dict[int, str]]:
        modules = dict(model.named_modules())
        with torch.enable_grad(), warnings.catch_warnings():  # the dependency graph is traced through autograd
            # per-channel parameters outside layers (StyleGAN2's biases) are pruned on their channel dim
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            pruner = self.tp.pruner.MetaPruner(
                model,
                self.example,
                importance=self.criterion.create(),
                pruning_ratio=ratio,
                pruning_ratio_dict={modules[n]: r for n, r in (layer_ratios or {}).items()} or None,
                global_pruning=self.global_pruning,
                round_to=self.round_to,
                ignored_layers=[modules[n] for n in self.kept_full_width()],
                customized_pruners=self.pruners or None,
            )
        return pruner, {id(m): n for n, m in modules.items()}

    def _taylor_grads(self, inputs: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Gradients of the output-energy proxy loss ``mean(G(x)**2)`` (eval mode: BatchNorm stats untouched)."""
        if inputs is None:
            generator = torch.Generator().manual_seed(self.seed)
            size = valid_size(self.base, TAYLOR_SIZE)
            shape = self.base.io.input_shape(TAYLOR_BATCH, (size, size))
            if self.base.io.is_latent:  # latents are standard normal, images uniform in [-1, 1]
                inputs = torch.randn(shape, generator=generator)
            else:
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
    importance: str | Any = "l1",
    global_pruning: bool = False,
    round_to: int | None = None,
    input_size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE),
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    example_inputs: torch.Tensor | None = None,
    ignored_layers: Sequence[str] = (),
    pruners: Mapping[type, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> PruneResult:
    """Prune ``model``'s channels by ``ratio``, or to ``target_rate`` / ``target_macs`` (exactly one).

    ``model`` is a pocketgan generator (built in, loaded, or any ``nn.Module`` passed through
    :func:`pocketgan.models.wrap`). ``ratio`` is torch-pruning's channel pruning ratio in (0, 1).
    ``target_rate=0.9`` asks for at least 90% fewer MACs and ``target_macs`` for at most that many
    MACs at ``input_size``; the search must land within ``tolerance`` (a fraction of the original
    MACs) of the target, or a :class:`PocketganError` names the nearest achievable rates.
    ``importance``, ``ignored_layers`` and ``pruners``: see :class:`ChannelPruner`. ``progress``
    receives the search's trials. The returned model is rebuilt (eval mode); ``model`` is untouched.
    """
    model = as_generator(model, "prune_model")
    check_one_goal(ratio, target_rate, target_macs)
    input_shape = model.io.input_shape(1, input_size)
    before = profile_model(model, input_shape)
    budget = macs_budget(before.macs, target_rate, target_macs)
    pruner = ChannelPruner(
        model, importance=importance, global_pruning=global_pruning, round_to=round_to, seed=seed,
        example_inputs=example_inputs, ignored_layers=ignored_layers, pruners=pruners,
    )  # fmt: skip
    callback = None if isinstance(progress, bool) else progress  # (progress=True/False: the old API)
    with _one_torch_thread():
        if ratio is not None:
            with ProgressTask(callback, "pruning channels", total=1) as task:
                trial, goal = Trial(ratio, pruner.prune(ratio), 0), None
                task.advance(status=f"ratio {ratio:g}")
        else:
            with ProgressTask(callback, "searching the pruning ratio", total=0) as task:
                trial = TargetSearch(pruner, before, budget, task).run(tolerance)
            goal = {"rate": target_rate} if target_rate is not None else {"macs": int(budget)}
    rebuilt = rebuild_pruned(trial.model, template=model, pruners=pruners)
    return PruneResult(
        model=rebuilt, ratio=trial.ratio, before=before, after=profile_model(rebuilt, input_shape),
        importance=pruner.importance, global_pruning=global_pruning, round_to=round_to, target=goal,
        layer_ratios=trial.layer_ratios, ignored_layers=list(pruner.ignored), kept_layers=dict(pruner.kept),
        layer_pruners=[type_name(t) for t in pruner.pruners],
    )  # fmt: skip


def rebuild_pruned(
    pruned: Generator, *, template: Generator | None = None, pruners: Mapping[type, Any] | None = None
) -> Generator:
    """A fresh generator with ``pruned``'s widths, loaded with its weights (strict, eval mode).

    A built-in is built from ``pruned.spec()``; a wrapped model is a copy of ``template`` (its
    unpruned original; default: its factory's fresh model) pruned to the recorded widths with the
    dependency graph (registered pruners plus ``pruners``). Fails with one line naming the layers
    when the widths cannot be expressed.
    """
    spec = pruned.spec()
    if isinstance(pruned, WrappedGenerator):
        fresh = copy.deepcopy(template) if template is not None else build_from_reference(spec.arch, spec.config)
        rebuilt = apply_widths(fresh, spec.widths, pruners=pruners) if spec.widths else fresh
    else:
        rebuilt = build_generator(spec)
    load_state_dict_checked(rebuilt, pruned.state_dict(), f"the pruned {pruned.arch} (rebuilt from its spec)")
    return rebuilt.eval()


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


def _existing_modules(model: Generator, names: Sequence[str]) -> list[str]:
    """``names`` checked against ``model``'s modules (one line naming an unknown one, with a close match)."""
    modules = [n for n, _ in model.named_modules() if n]
    for name in names:
        if name not in modules:
            hint = did_you_mean(name, modules)
            raise PocketganError(f"--ignore-layer {name}: {model.arch} has no module named {name}{hint}")
    return list(dict.fromkeys(names))


def _last_layer_called(model: nn.Module, order: list[str]) -> str:
    """The prunable layer that runs last in a forward pass: the output layer, whose channels are kept."""
    layers = dict(prunable_layers(model))
    called = [name for name in order if name in layers]
    if not called:
        raise PocketganError(f"{type(model).__name__} has no convolution to prune")
    return called[-1]


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
