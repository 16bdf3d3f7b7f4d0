"""Compute cost of a generator: MACs (fvcore) and parameters, in total and per module.

Convention (fvcore's ``FlopCountAnalysis``): one fused multiply-add counts as one MAC;
a ConvTranspose is counted over its *input* positions (the real work; torchprofile and
torch-pruning count output positions and report ~14% more for ResNet-9); norm layers
count ~4-5 flops per element; adds, activations and pads count 0. ResNet-9 (ngf 64) at
256×256 is 49.68 GMACs and 11,378,179 parameters in this convention.

A second convention, ``output`` (:data:`CONVENTIONS`), counts every convolution over its
*output* positions, a ConvTranspose included: torchprofile's and the GAN-compression papers'
count (ResNet-9 ~56.9 G; StyleGAN2-256 config-f ~84 G instead of fvcore's 45.1 G, whose
upsampling convs are transposed). It is fvcore with one op handle overridden
(``aten::_convolution``), not a second counter, so everything else is counted identically.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.contract import Profile
from pocketgan.core.registry import did_you_mean

COUNTER = "fvcore"
CONVENTION = (
    "1 fused multiply-add = 1 MAC; ConvTranspose counted over input positions; "
    "norm layers ~4-5 flops/element; adds, activations and pads count 0"
)
OUTPUT_CONVENTION = (
    "1 fused multiply-add = 1 MAC; every convolution, ConvTranspose included, counted over output positions "
    "(torchprofile's and the papers' count); norm layers ~4-5 flops/element; adds, activations and pads count 0"
)
DEFAULT_SIZE = 256
DEFAULT_CONVENTION = "fvcore"


@dataclass(frozen=True)
class CountingConvention:
    """How MACs are counted: fvcore's ``FlopCountAnalysis`` with some operator handles overridden.

    ``counter`` and ``summary`` are what a :class:`~pocketgan.core.contract.Profile` records
    (``counter`` / ``convention``); ``handles`` maps TorchScript operator names to fvcore handles.
    """

    name: str
    counter: str
    summary: str
    handles: Mapping[str, Callable[[list[Any], list[Any]], Counter[str]]] = field(default_factory=dict)


def conv_over_output_positions(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """fvcore handle for ``aten::_convolution`` counting ``batch × weight elements × output positions``.

    fvcore already counts an ordinary convolution that way; this also counts a transposed one over
    its output positions (fvcore: input positions).
    """
    from fvcore.nn.jit_handles import get_shape

    batch = get_shape(inputs[0])[0]
    weight, output = get_shape(inputs[1]), get_shape(outputs[0])
    return Counter({"conv": batch * prod(weight) * prod(output[2:])})


CONVENTIONS: dict[str, CountingConvention] = {
    "fvcore": CountingConvention("fvcore", COUNTER, CONVENTION),
    "output": CountingConvention(
        "output", "fvcore:output-positions", OUTPUT_CONVENTION, {"aten::_convolution": conv_over_output_positions}
    ),
}
"""``fvcore`` (the default: ConvTranspose over input positions) and ``output`` (over output positions)."""


def counting_convention(name: str) -> CountingConvention:
    """The convention named ``name`` (one line naming the choices otherwise)."""
    if name not in CONVENTIONS:
        hint = did_you_mean(name, list(CONVENTIONS))
        raise PocketganError(f"unknown MAC counting convention {name!r}{hint}; choose {' or '.join(CONVENTIONS)}")
    return CONVENTIONS[name]


@dataclass
class ProfileReport:
    """MACs and parameters of a model at one input shape, with a per-module breakdown.

    ``by_module`` maps each module that does work itself (MACs > 0; see :func:`own_macs`) to those
    MACs, in model order;
    ``by_operator`` maps fvcore operator names (``conv``, ``instance_norm``, ...) to MACs.
    """

    macs: int
    params: int
    input_shape: tuple[int, ...]
    by_module: dict[str, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)
    module_types: dict[str, str] = field(default_factory=dict)
    counter: str = COUNTER
    convention: str = CONVENTION

    def top_modules(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The ``n`` most expensive leaf modules as ``(name, type, macs)``, most expensive first."""
        ranked = sorted(self.by_module.items(), key=lambda item: item[1], reverse=True)[:n]
        return [(name, self.module_types.get(name, ""), macs) for name, macs in ranked]

    def to_profile(self) -> Profile:
        """The manifest's :class:`~pocketgan.core.contract.Profile` (what ``model.json`` stores)."""
        return Profile(
            macs=self.macs,
            params=self.params,
            input_shape=list(self.input_shape),
            counter=self.counter,
            convention=self.convention,
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: macs, params, counter, input_shape, by_module (plus the convention)."""
        return {
            "macs": self.macs,
            "params": self.params,
            "counter": self.counter,
            "input_shape": list(self.input_shape),
            "by_module": dict(self.by_module),
            "convention": self.convention,
        }


def profile_model(
    model: nn.Module,
    input_shape: tuple[int, ...] = (1, 3, DEFAULT_SIZE, DEFAULT_SIZE),
    convention: str | CountingConvention = DEFAULT_CONVENTION,
) -> ProfileReport:
    """Count MACs with fvcore and parameters of ``model`` for one input of ``input_shape`` (NCHW, or
    ``(N, z_dim)`` for a latent-input generator).

    ``convention``: ``fvcore`` (ConvTranspose over input positions) or ``output`` (every convolution
    over output positions, the papers' count); see :data:`CONVENTIONS`. The report records it.
    Generators check the input against their I/O constraints first (one-line error).
    The model is traced in eval mode (BatchNorm statistics are not touched) and its mode restored.
    """
    input_shape = tuple(int(d) for d in input_shape)
    check_input_shape(model, input_shape)
    rule = convention if isinstance(convention, CountingConvention) else counting_convention(convention)
    fvcore_nn = require("fvcore.nn", "train", "counting MACs")
    example = torch.zeros(input_shape, device=model_device(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _quiet_fvcore():
            analysis = fvcore_nn.FlopCountAnalysis(model, example).set_op_handle(**rule.handles)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = int(analysis.total())
            per_module = analysis.by_module()
            per_operator = analysis.by_operator()
    finally:
        model.train(was_training)
    by_module = own_macs(model, per_module)
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    return ProfileReport(
        macs=total,
        params=count_params(model),
        input_shape=input_shape,
        by_module=by_module,
        by_operator={op: int(n) for op, n in per_operator.items() if n},
        module_types={name: kinds[name] for name in by_module},
        counter=rule.counter,
        convention=rule.summary,
    )


def check_input_shape(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    """One line unless ``input_shape`` fits ``model``: ``(N, z_dim)`` for a latent-input generator, else NCHW."""
    io = getattr(model, "io", None)
    if io is not None and io.is_latent:
        if input_shape[1:] != (io.z_dim,):
            raise PocketganError(f"{model.arch} takes a latent of shape (N, {io.z_dim}); got {input_shape}")
        return
    if len(input_shape) != 4:
        raise PocketganError(f"input shape must be N,C,H,W; got {input_shape}")
    check_size = getattr(model, "check_input_size", None)
    if callable(check_size):
        check_size(input_shape[2], input_shape[3])


def own_macs(model: nn.Module, per_module: dict[str, int]) -> dict[str, int]:
    """MACs each module does itself (its total minus its children's), for modules that do any, in model order.

    For a leaf that is all its MACs; a custom module counts the functional ops of its own forward
    (a blur applied with ``F.conv2d``) without those of its submodules. The values add up to the
    total unless the top-level forward itself does work.
    """
    own: dict[str, int] = {}
    for name, module in model.named_modules():
        if not name:
            continue
        children = sum(int(per_module.get(f"{name}.{child}", 0)) for child, _ in module.named_children())
        macs = int(per_module.get(name, 0)) - children
        if macs > 0:
            own[name] = macs
    return own


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


class _quiet_fvcore:
    """Silence fvcore's unsupported-operator log lines and the JIT tracer's warnings."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("fvcore.nn.jit_analysis")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: Any) -> None:
        self.warnings.__exit__(*exc)
        self.logger.setLevel(self.level)


_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_macs(text: str | float | int) -> int:
    """``"1.2G"`` → 1_200_000_000, ``"800M"``, ``"5e8"``, ``"2.5GMACs"`` or a plain number."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)\s*(?:macs?)?\s*", str(text).lower())
    if not match:
        raise PocketganError(f"bad MAC count {text!r}: expected a number with an optional K/M/G suffix, e.g. 1.2G")
    value = round(float(match.group(1)) * _SUFFIXES[match.group(2)])
    if value <= 0:
        raise PocketganError(f"bad MAC count {text!r}: must be positive")
    return value
