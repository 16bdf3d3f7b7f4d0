"""torch-pruning's dependency graph, as pruning and rebuilding share it.

- :func:`register_pruner` / :data:`LAYER_PRUNERS`: custom pruners (torch-pruning's
  ``customized_pruners``) for layers it cannot shrink by itself, e.g. a blur kernel kept in a
  buffer and applied with ``F.conv2d(groups=C)``. A registered pruner applies to every module
  of its type, when pruning and when a pruned model is rebuilt, so register it where the
  model's factory is defined (importing the factory then registers it).
- :func:`regrouped_layers`: layers whose channels a pixel shuffle regroups; torch-pruning maps
  channels one to one through it, so these are kept at full width.
- :func:`apply_widths`: rebuild a pruned model from a fresh one by pruning each recorded layer
  to its width; coupled layers (residual adds, concatenations, norms) follow through the graph.

Every in-place op is switched off while the graph is traced (:func:`no_inplace`): torch-pruning
misses InstanceNorm layers behind an in-place ReLU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.registry import Registry
from pocketgan.models.base import Generator, layer_width, prunable_layers

TRACE_SIZE = 32  # spatial size used to trace the dependency graph (and count MACs during a search)
REGROUPING_OPS = ("pixelshuffle", "pixelunshuffle", "channelshuffle")  # autograd node names, lower case


@dataclass(frozen=True)
class LayerPruner:
    """A torch-pruning ``BasePruningFunc`` for every module of ``module_type``."""

    module_type: type
    pruner: Any


#: Custom pruners by module type name (``mypkg.nets.Downsample``).
LAYER_PRUNERS: Registry[LayerPruner] = Registry("layer pruner")


def register_pruner(module_type: type, pruner: Any = None) -> Any:
    """Register a torch-pruning pruner (a ``BasePruningFunc`` instance or class) for ``module_type``.

    Also a class decorator: ``@register_pruner(Downsample) class BlurPruner(BasePruningFunc): ...``.
    Set ``prune_in_channels = prune_out_channels`` in it when the module keeps its channel count
    (a blur): torch-pruning then couples its input and output channels.
    """

    def add(item: Any) -> Any:
        instance = item() if isinstance(item, type) else item
        LAYER_PRUNERS.register(type_name(module_type), LayerPruner(module_type, instance))
        return item

    return add if pruner is None else add(pruner)


def type_name(cls: type) -> str:
    """``module.QualName`` of a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def customized_pruners(model: nn.Module, extra: Mapping[type, Any] | None = None) -> dict[type, Any]:
    """torch-pruning's ``customized_pruners`` for ``model``: registered ones for types it contains, then ``extra``."""
    present = {type(m) for m in model.modules()}
    found = {entry.module_type: entry.pruner for _, entry in LAYER_PRUNERS.items() if entry.module_type in present}
    found.update(extra or {})
    return {module_type: as_tp_pruner(pruner) for module_type, pruner in found.items()}


def as_tp_pruner(pruner: Any) -> Any:
    """``pruner`` as a torch-pruning ``BasePruningFunc``.

    A plain object with ``prune_out_channels``, ``prune_in_channels``, ``get_out_channels`` and
    ``get_in_channels`` (e.g. a built-in model's pruner, defined without importing the optional
    torch-pruning) gets the base class's other methods; a ``BasePruningFunc`` is returned as is.
    """
    base = require("torch_pruning", "train", "channel pruning").pruner.function.BasePruningFunc
    if isinstance(pruner, base):
        return pruner
    wrapped = _with_tp_base(type(pruner), base)()
    wrapped.__dict__.update(vars(pruner))
    return wrapped


@functools.cache
def _with_tp_base(cls: type, base: type) -> type:
    return type(cls.__name__, (cls, base), {"__module__": cls.__module__})


@contextmanager
def no_inplace(model: nn.Module) -> Iterator[nn.Module]:
    """``inplace = False`` on every module while tracing (restored after)."""
    saved = [(m, m.inplace) for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)]
    for module, _ in saved:
        module.inplace = False
    try:
        yield model
    finally:
        for module, flag in saved:
            module.inplace = flag


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (BatchNorm statistics untouched by a tracing forward), the previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def valid_size(model: Generator, at_least: int) -> int:
    """The smallest square side of at least ``at_least`` pixels that ``model`` accepts."""
    if model.io.fixed_size:
        return int(model.io.fixed_size[0])
    multiple = model.io.size_multiple
    return multiple * math.ceil(at_least / multiple)


def small_input(model: Generator) -> torch.Tensor:
    """A small valid input (NCHW at ``TRACE_SIZE`` px or the architecture's minimum; a latent-input
    generator's ``(1, z_dim)``): cheap to trace."""
    size = valid_size(model, TRACE_SIZE)
    width = int(model.io.fixed_size[1]) if model.io.fixed_size else size
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.zeros(model.io.input_shape(1, (size, width)), device=device)


def regrouped_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Prunable layers whose output channels a pixel (un)shuffle or channel shuffle regroups.

    Found by walking autograd back from each regrouping op to the nearest prunable layers.
    """
    producers: dict[Any, str] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=n: producers.__setitem__(getattr(out, "grad_fn", None), n))
        for n, m in prunable_layers(model)
    ]
    try:
        with torch.enable_grad(), no_inplace(model), eval_mode(model):
            out = model(example.detach().clone().requires_grad_(True))
    finally:
        for hook in hooks:
            hook.remove()
    found: list[str] = []
    stack, seen = [getattr(out, "grad_fn", None)], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if any(op in fn.name().lower() for op in REGROUPING_OPS):
            found.extend(n for n in _nearest_producers(fn, producers) if n not in found)
        stack.extend(f for f, _ in fn.next_functions)
    return found


def _nearest_producers(fn: Any, producers: dict[Any, str]) -> list[str]:
    names, stack, seen = [], [f for f, _ in fn.next_functions], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in producers:
            names.append(producers[node])
        else:
            stack.extend(f for f, _ in node.next_functions)
    return names


def dependency_graph(model: nn.Module, example: torch.Tensor, pruners: Mapping[type, Any] | None = None) -> Any:
    """torch-pruning's ``DependencyGraph`` of ``model`` (traced in eval mode without in-place ops)."""
    tp = require("torch_pruning", "train", "channel pruning")
    with torch.enable_grad(), no_inplace(model), eval_mode(model):
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=example, customized_pruners=customized_pruners(model, pruners), verbose=False
        )


def apply_widths(
    model: Generator, widths: Mapping[str, int], *, pruners: Mapping[type, Any] | None = None
) -> Generator:
    """Prune ``model`` in place so each layer in ``widths`` has that many output channels.

    Each layer's group (the layers coupled with it) loses its last channels; the values do not
    matter, because the pruned weights are loaded afterwards. Fails with one line naming the
    layers when ``model`` cannot take the widths.
    """
    modules = dict(prunable_layers(model))
    unknown = sorted(set(widths) - set(modules))
    if unknown:
        raise PocketganError(f"{model.arch} has no prunable layer named {', '.join(unknown[:5])}")
    too_wide = [f"{n} ({w} > {layer_width(modules[n])})" for n, w in widths.items() if w > layer_width(modules[n])]
    if too_wide:
        raise PocketganError(f"{model.arch}: recorded widths exceed the fresh model's: {', '.join(too_wide[:3])}")
    graph = dependency_graph(model, small_input(model), pruners)
    for name, width in widths.items():
        layer, current = modules[name], layer_width(modules[name])
        if width < current:
            prune = graph.get_pruner_of_module(layer).prune_out_channels
            graph.get_pruning_group(layer, prune, idxs=list(range(width, current))).prune()
    wrong = [f"{n} {layer_width(modules[n])} (recorded {w})" for n, w in widths.items() if layer_width(modules[n]) != w]
    if wrong:
        raise PocketganError(
            f"{model.arch}: its dependency graph cannot reach the recorded widths: {', '.join(wrong[:3])}"
        )
    return model
