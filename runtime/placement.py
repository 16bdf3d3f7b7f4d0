"""Where a benchmarked graph actually ran: which provider (or device) executed how many of its nodes.

A backend's :meth:`~pocketgan.runtime.runner.Runner.placement` builds a :class:`Placement` from what the
library itself reports, never from what was requested:

- onnxruntime: a short profiled run; every ``cat == "Node"`` event of the profile names the node's
  ``args.provider`` and ``args.op_name`` (:func:`from_ort_profile`). A subgraph fused into the TensorRT
  EP counts as the one node ORT runs.
- OpenVINO: the compiled model's runtime graph, each executed layer's ``rt_info`` (``layerType``,
  ``runtimePrecision``, ``primitiveType``, the kernel) (:func:`from_openvino_runtime_model`); an int8 IR
  shows how many layers ran in ``u8``/``i8``.

Ops that ran outside the first-choice provider (CPU fallbacks when CUDA, TensorRT or an EP is first)
are counted by op type in :attr:`Placement.fallback_ops`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

_PROVIDER_SUFFIX = "ExecutionProvider"
#: Runtime-graph layers that compute nothing: constants and the graph's inputs and outputs.
OPENVINO_NON_LAYERS = frozenset({"Const", "Input", "Output"})
#: Fallback op types named in the one-line summary before "…".
SUMMARY_OPS = 3


@dataclass(frozen=True)
class Placement:
    """Node counts per provider (or device) and op type, as the backend reported them after a run."""

    source: str
    first_choice: str
    by_provider: dict[str, int]
    op_types: dict[str, int]
    fallback_ops: dict[str, int] = field(default_factory=dict)
    precisions: dict[str, int] = field(default_factory=dict)
    kernels: dict[str, int] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        """How many nodes (layers) ran, on every provider together."""
        return sum(self.by_provider.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (``precisions`` and ``kernels`` only where the backend reports them)."""
        record: dict[str, Any] = {
            "source": self.source,
            "nodes": self.nodes,
            "first_choice": self.first_choice,
            "by_provider": self.by_provider,
            "fallback_ops": self.fallback_ops,
            "op_types": self.op_types,
        }
        if self.precisions:
            record["precisions"] = self.precisions
        if self.kernels:
            record["kernels"] = self.kernels
        return record

    def summary(self) -> str:
        """One short line: ``CPU 202/202``, ``Tensorrt 3/9, CPU 6 (Resize 4, Pad 2)``, or with precisions
        ``CPU 156/156; u8 110, f32 46``."""
        first = self.by_provider.get(self.first_choice, 0)
        parts = [f"{short_provider(self.first_choice)} {first}/{self.nodes}"]
        parts += [f"{short_provider(p)} {n}" for p, n in self.by_provider.items() if p != self.first_choice]
        line = ", ".join(parts)
        if self.fallback_ops:
            ops = list(self.fallback_ops.items())
            named = ", ".join(f"{op} {n}" for op, n in ops[:SUMMARY_OPS]) + (", …" if len(ops) > SUMMARY_OPS else "")
            line += f" ({named})"
        if self.precisions:
            line += "; " + ", ".join(f"{p} {n}" for p, n in self.precisions.items())
        return line


def short_provider(provider: str) -> str:
    """``CUDAExecutionProvider`` → ``CUDA``; OpenVINO device names stay as they are."""
    return provider.removesuffix(_PROVIDER_SUFFIX) or provider


def from_ort_profile(events: Iterable[Mapping[str, Any]], first_choice: str, runs: int) -> Placement:
    """A placement from onnxruntime profile events (the JSON list ``end_profiling`` writes).

    Each node is counted once however many runs the profile holds: a node is its name, index and op
    (``args.node_index``, ``args.op_name``); its provider is ``args.provider``.
    """
    nodes: dict[tuple[str, str, str], str] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") != "Node" or "provider" not in args or "op_name" not in args:
            continue
        name = str(event.get("name", "")).removesuffix("_kernel_time")
        nodes.setdefault((name, str(args.get("node_index", "")), str(args["op_name"])), str(args["provider"]))
    ran = [(op, provider) for (_name, _index, op), provider in nodes.items()]
    return _placement(f"onnxruntime profile ({runs} run{'s' if runs > 1 else ''})", first_choice, ran)


def from_openvino_runtime_model(runtime_model: Any, devices: Sequence[str], first_choice: str) -> Placement:
    """A placement from an OpenVINO ``CompiledModel.get_runtime_model()``: every executed layer (constants,
    inputs and outputs left out) with its ``layerType``, ``runtimePrecision`` and ``primitiveType``.

    The runtime graph of a single-device compiled model names no device per layer, so its layers count
    under that device (``EXECUTION_DEVICES``); several devices count as one ``A+B`` entry.
    """
    device = devices[0] if len(devices) == 1 else "+".join(devices) or first_choice
    layers = []
    precisions: Counter[str] = Counter()
    kernels: Counter[str] = Counter()
    for op in runtime_model.get_ordered_ops():
        info = op.get_rt_info()
        layer_type = _rt_str(info, "layerType") or op.get_type_name()
        if layer_type in OPENVINO_NON_LAYERS:
            continue
        layers.append((layer_type, device))
        precisions[_rt_str(info, "runtimePrecision") or "unknown"] += 1
        kernels[_rt_str(info, "primitiveType") or "unknown"] += 1
    placement = _placement("openvino runtime model", first_choice, layers)
    return replace(placement, precisions=_most_first(precisions), kernels=_most_first(kernels))


def from_layers(source: str, device: str, layer_types: Iterable[str]) -> Placement:
    """A placement of a runtime that runs every layer it loaded on one ``device`` (ncnn on the CPU: a layer
    type it cannot run fails the load, so nothing falls back)."""
    return _placement(source, device, [(kind, device) for kind in layer_types])


def _placement(source: str, first_choice: str, nodes: Sequence[tuple[str, str]]) -> Placement:
    """Counts of ``(op type, provider)`` pairs: per provider (first choice first), per op type, and the
    op types that ran elsewhere."""
    providers = Counter(provider for _op, provider in nodes)
    by_provider = {first_choice: providers.pop(first_choice)} if first_choice in providers else {}
    by_provider.update(_most_first(providers))
    return Placement(
        source=source,
        first_choice=first_choice,
        by_provider=by_provider,
        op_types=_most_first(Counter(op for op, _provider in nodes)),
        fallback_ops=_most_first(Counter(op for op, provider in nodes if provider != first_choice)),
    )


def _most_first(counts: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name, as a plain dict (stable JSON)."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _rt_str(info: Any, key: str) -> str:
    """An OpenVINO ``rt_info`` entry as a string ('' when absent)."""
    if key not in info:
        return ""
    value = info[key]
    return str(value.astype(str) if hasattr(value, "astype") else value)
