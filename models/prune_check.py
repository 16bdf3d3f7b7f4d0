"""After pruning, check the model still runs and keeps its output shape; else name the module at fault.

torch-pruning shrinks what its dependency graph sees: parameters of known layers and the layers
coupled with them. State kept elsewhere — typically a blur kernel in a buffer applied with
``F.conv2d(groups=C)`` — keeps its old channel count, and the pruned model breaks at or after it.
:func:`check_pruned` runs the pruned copy once with hooks on every module and, when it fails,
names (1) a module whose input channels changed while one of its own buffers is still sized for
the old count, else (2) the innermost module whose forward raised, else (3) the last module run
(when only the output shape changed), with the layer to keep (``--ignore-layer``) or the custom
pruner to register.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.models.base import PRUNABLE_TYPES, prunable_widths


class PrunedModelError(PocketganError):
    """A pruned model no longer runs, or changed its output shape."""


@dataclass
class ForwardTrace:
    """One forward pass seen module by module (each module's first call)."""

    order: list[str] = field(default_factory=list)  # modules entered, in order
    in_channels: dict[str, int] = field(default_factory=dict)  # dim 1 of each module's first tensor input
    output_shape: tuple[int, ...] | None = None
    failed: str | None = None  # innermost module whose forward raised
    error: str | None = None


def trace_forward(model: nn.Module, example: torch.Tensor) -> ForwardTrace:
    """Run ``model(example)`` (no grad) recording module order and input channels; exceptions are recorded."""
    trace, stack, seen = ForwardTrace(), [], set()

    def enter(name: str, args: tuple) -> None:
        stack.append(name)
        if name not in seen:
            seen.add(name)
            trace.order.append(name)
            tensor = next((a for a in args if isinstance(a, torch.Tensor) and a.dim() >= 2), None)
            if tensor is not None:
                trace.in_channels[name] = int(tensor.shape[1])

    def leave(*_: object) -> None:  # returns None: a forward hook's result would replace the output
        stack.pop()

    modules = [(n, m) for n, m in model.named_modules() if n]
    handles = [m.register_forward_pre_hook(lambda _m, args, n=n: enter(n, args)) for n, m in modules]
    handles += [m.register_forward_hook(leave) for _, m in modules]
    try:
        with torch.no_grad():
            trace.output_shape = tuple(model(example).shape)
    except Exception as exc:
        trace.failed = stack[-1] if stack else ""
        trace.error = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    finally:
        for handle in handles:
            handle.remove()
    return trace


def check_pruned(reference: ForwardTrace, base_widths: dict[str, int], model: nn.Module, example: torch.Tensor) -> None:
    """:class:`PrunedModelError` (one line) unless ``model`` runs on ``example`` with ``reference``'s output shape.

    ``reference`` is the unpruned model's trace on ``example``; ``base_widths`` its prunable widths.
    """
    trace = trace_forward(model, example)
    if trace.error is None and trace.output_shape == reference.output_shape:
        return
    modules = dict(model.named_modules())
    stale = _stale_buffer(reference, trace, modules)
    if stale is not None:
        culprit, what = stale
    elif trace.error is not None:
        culprit, what = trace.failed or "", f"its forward fails: {trace.error}"
    else:
        culprit = trace.order[-1] if trace.order else ""
        what = f"the output shape changed from {reference.output_shape} to {trace.output_shape}"
    kind = type(modules[culprit]).__name__ if culprit in modules else type(model).__name__
    feeder = _pruned_layer_before(trace, culprit, base_widths, model)
    keep = f"keep its input unpruned with --ignore-layer {feeder}, or " if feeder else ""
    raise PrunedModelError(
        f"the pruned model no longer runs: module {culprit or '(top level)'} ({kind}): {what}; "
        f"{keep}register a custom pruner for {kind} (pocketgan.models.register_pruner)"
    )


def _stale_buffer(
    reference: ForwardTrace, trace: ForwardTrace, modules: dict[str, nn.Module]
) -> tuple[str, str] | None:
    """The first module (in run order) whose input lost channels while a buffer of its own keeps the old count."""
    for name in trace.order:
        before, now = reference.in_channels.get(name), trace.in_channels.get(name)
        if before is None or now is None or before == now:
            continue
        for buffer_name, buffer in modules[name].named_buffers(recurse=False):
            if buffer is not None and buffer.dim() >= 1 and buffer.shape[0] == before:
                shape = "×".join(str(d) for d in buffer.shape)
                return name, (
                    f"buffer {buffer_name!r} ({shape}) is still sized for {before} channels but the input now has "
                    f"{now}: torch-pruning does not prune buffers"
                )
    return None


def _pruned_layer_before(
    trace: ForwardTrace, culprit: str, base_widths: dict[str, int], model: nn.Module
) -> str | None:
    """The last layer run before ``culprit`` whose width pruning changed (the one feeding it)."""
    if culprit not in trace.order:
        return None
    widths = prunable_widths(model)
    modules = dict(model.named_modules())
    for name in reversed(trace.order[: trace.order.index(culprit)]):
        if isinstance(modules.get(name), PRUNABLE_TYPES) and widths.get(name) != base_widths.get(name):
            return name
    return None
