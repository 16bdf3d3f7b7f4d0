"""Graph rewrites proven equal: module swaps applied before tracing, where a target runs the plain form better.

Each :class:`Rewrite` replaces one kind of module by a numerically equal composition of simpler ops:

* ``reflection-pad``: ``nn.ReflectionPad2d`` → mirrored slices concatenated (copies only, bit-exact).
  CoreML's ``pad`` in reflect mode is one of the ops Apple's stack runs off the Neural Engine
  (:mod:`pocketgan.export.coreml_check`); slices and a concat stay on it.
* ``conv-transpose-crop``: ``nn.ConvTranspose2d`` with ``output_padding`` → the same deconvolution
  with ``padding=0, output_padding=0`` followed by a crop ``[p : -(p - output_padding)]``. Output padding
  (and the asymmetric padding it implies) makes TensorRT add a padding layer after the deconvolution and
  CoreML/ANE fall back; a full deconvolution and a slice are fast everywhere. Needs ``output_padding <=
  padding`` on each axis (true of pix2pix's ``k3 s2 p1 op1``); other layers are left alone.
  LiteRT's converter cannot legalize the output-padded form at all.
* ``instance-norm-decomposed``: ``nn.InstanceNorm2d`` without running statistics → ``x - mean``,
  ``* rsqrt(var + eps)`` (biased variance, as the layer), then the affine weight and bias if it has them.
  XNNPACK has no instance norm: ExecuTorch leaves the fused op to its portable kernels and splits the
  graph around each one; the mean/mul/rsqrt form is delegated whole.

Each is tested equal in PyTorch and in onnxruntime (``tests/test_rewrites.py``, ≤ 1e-5).
:func:`apply_rewrites` returns a rewritten copy and how many modules each rewrite replaced. Exporters
pick their rewrites with :func:`rewrites_for` (``--option rewrites=default|all|none|NAME,...``; the
defaults per target are :data:`TARGET_REWRITES`), run them with :func:`rewrite_for_target` and hand the
counts to ``BuiltArtifact(rewrites=...)``: the sidecar records them as ``extra.rewrites`` (``{name: count}``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pocketgan.core.registry import Registry


@dataclass(frozen=True)
class Rewrite:
    """``matches(module)``: whether ``replace(module)`` applies; the replacement computes the same function."""

    name: str
    description: str
    matches: Callable[[nn.Module], bool]
    replace: Callable[[nn.Module], nn.Module]


#: Every graph rewrite, by name.
REWRITES: Registry[Rewrite] = Registry("graph rewrite")


def register_rewrite(rewrite: Rewrite) -> Rewrite:
    """Add ``rewrite`` to :data:`REWRITES`."""
    REWRITES.register(rewrite.name, rewrite)
    return rewrite


class ReflectPadByConcat(nn.Module):
    """Reflection padding (left, right, top, bottom) as mirrored slices and concatenations."""

    def __init__(self, padding: Sequence[int]) -> None:
        super().__init__()
        self.left, self.right, self.top, self.bottom = (int(p) for p in padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _mirror(x, -1, self.left, self.right)
        return _mirror(x, -2, self.top, self.bottom)


def _mirror(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """``x`` with ``before``/``after`` mirrored slices (the edge itself excluded) added along ``dim``.

    Only constant slices (``i:i+1`` from the start, ``-(i+1):-i`` from the end): no shape arithmetic, so the
    traced graph is the same for any size and every converter folds it.
    """
    index = [slice(None)] * x.dim()

    def take(part: slice) -> torch.Tensor:
        index[dim] = part
        return x[tuple(index)]

    parts = [take(slice(i, i + 1)) for i in range(before, 0, -1)]
    parts.append(x)
    parts += [take(slice(-(i + 1), -i)) for i in range(1, after + 1)]
    return torch.cat(parts, dim=dim) if len(parts) > 1 else x


class CroppedConvTranspose2d(nn.Module):
    """A ``ConvTranspose2d`` with ``padding=0, output_padding=0`` (``deconv``) and the crop that restores
    the original layer's padding and output padding."""

    def __init__(self, deconv: nn.ConvTranspose2d, padding: tuple[int, int], output_padding: tuple[int, int]) -> None:
        super().__init__()
        self.deconv = deconv
        self.crop = [(p, p - op) for p, op in zip(padding, output_padding)]  # (start, cut from the end) for H, W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.deconv(x)
        (top, bottom), (left, right) = self.crop  # constant slices (no shape arithmetic in the graph)
        return y[..., top : -bottom or None, left : -right or None]


class DecomposedInstanceNorm2d(nn.Module):
    """``InstanceNorm2d`` (no running statistics) as means, a subtraction, ``rsqrt`` and the optional affine."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = float(norm.eps)
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().clone().reshape(-1, 1, 1))
        self.bias = None if norm.bias is None else nn.Parameter(norm.bias.detach().clone().reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=(-2, -1), keepdim=True)  # over H, W of each (sample, channel); CHW input too
        y = centred * torch.rsqrt((centred * centred).mean(dim=(-2, -1), keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        return y + self.bias if self.bias is not None else y


def _norm_matches(module: nn.Module) -> bool:
    return type(module) is nn.InstanceNorm2d and not module.track_running_stats


def _reflect_matches(module: nn.Module) -> bool:
    return type(module) is nn.ReflectionPad2d


def _reflect_replace(module: nn.Module) -> nn.Module:
    return ReflectPadByConcat(module.padding)  # type: ignore[arg-type]


def _deconv_matches(module: nn.Module) -> bool:
    if type(module) is not nn.ConvTranspose2d or not any(module.output_padding):
        return False
    pads = module.padding
    return not isinstance(pads, str) and all(op <= p for op, p in zip(module.output_padding, pads))


def _deconv_replace(module: nn.Module) -> nn.Module:
    assert isinstance(module, nn.ConvTranspose2d)
    full = nn.ConvTranspose2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, padding=0,
                              output_padding=0, groups=module.groups, bias=module.bias is not None,
                              dilation=module.dilation)  # fmt: skip
    full.load_state_dict(module.state_dict())
    full.train(module.training)
    return CroppedConvTranspose2d(full, tuple(module.padding), tuple(module.output_padding))  # type: ignore[arg-type]


register_rewrite(Rewrite("reflection-pad", "ReflectionPad2d → mirrored slices + concat", _reflect_matches,
                         _reflect_replace))  # fmt: skip
register_rewrite(Rewrite("conv-transpose-crop", "ConvTranspose2d output_padding → padding 0 + crop",
                         _deconv_matches, _deconv_replace))  # fmt: skip
register_rewrite(Rewrite("instance-norm-decomposed", "InstanceNorm2d → x - mean, * rsqrt(var + eps), affine",
                         _norm_matches, DecomposedInstanceNorm2d))  # fmt: skip

#: The rewrites each target runs by default (``--option rewrites=default``): those that make its runtime take
#: the whole graph. ncnn and OpenVINO/ONNX Runtime run every op natively and need none.
TARGET_REWRITES: dict[str, tuple[str, ...]] = {
    "coreml": ("conv-transpose-crop",),
    # XNNPACK has neither op: both forms delegated make one island (student 256 px: 0.69x ORT's p50 vs 0.99x
    # with the norms alone; keeping the pads whole, --option rewrites=...,reflection-pad-kept: 0.84x)
    "executorch": ("instance-norm-decomposed", "reflection-pad"),
    # tflite: the output-padded deconvolution does not convert; XNNPACK does not take MIRROR_PAD (21 islands) and
    # runs the mean/rsqrt InstanceNorm faster (Mobile ResNet ngf 16, 256 px: 1.64x ORT -> 0.56x -> 0.44x)
    "tflite": ("conv-transpose-crop", "reflection-pad", "instance-norm-decomposed"),
    "ncnn": (),
}
DEFAULT = "default"
#: Default rewrites an int8 export leaves out: the decomposed InstanceNorm's squared deviations lose too much in
#: per-tensor int8 (Mobile ResNet ngf 16, 256 px, synthetic calibration: ExecuTorch 24.7 dB with it, below the
#: 25 dB bar, 32.6 dB without; LiteRT 22.4 dB with it, 27.1 dB without).
FLOAT_ONLY_REWRITES = ("instance-norm-decomposed",)


def resolve_rewrites(value: object) -> list[str]:
    """``"all"``/``None`` → every rewrite; ``"none"`` → none; a name or a list of names → those (checked)."""
    if value is None or value == "all":
        return REWRITES.names()
    if value == "none":
        return []
    names = value if isinstance(value, (list, tuple)) else [part.strip() for part in str(value).split(",")]
    for name in names:
        REWRITES.get(str(name))  # one-line error with "did you mean"
    return [str(n) for n in names]


def rewrites_for(target: str, value: object = None, precision: str = "fp32") -> list[str]:
    """The rewrites ``target`` runs: its :data:`TARGET_REWRITES` for ``None``/``"default"`` (for int8 without
    :data:`FLOAT_ONLY_REWRITES`), else as :func:`resolve_rewrites` (``all``, ``none``, names; one-line errors)."""
    if value is None or value == DEFAULT:
        names = TARGET_REWRITES.get(target, ())
        return [name for name in names if precision != "int8" or name not in FLOAT_ONLY_REWRITES]
    return resolve_rewrites(value)


def rewrite_for_target(model: nn.Module, target: str, value: object = None) -> tuple[nn.Module, dict[str, int]]:
    """:func:`apply_rewrites` of :func:`rewrites_for` ``(target, value)``: what exporters call before tracing."""
    return apply_rewrites(model, rewrites_for(target, value))


def apply_rewrites(model: nn.Module, names: Sequence[str] | None = None) -> tuple[nn.Module, dict[str, int]]:
    """A rewritten deep copy of ``model`` (``model`` itself is untouched) and the modules each rewrite replaced.

    ``names``: the rewrites to run (default all), in order. Rewrites that replaced nothing are not listed.
    """
    rewritten = copy.deepcopy(model)
    counts: dict[str, int] = {}
    for name in names if names is not None else REWRITES.names():
        rewrite = REWRITES.get(name)
        targets = [(n, m) for n, m in rewritten.named_modules() if n and rewrite.matches(m)]
        for path, module in targets:
            parent_path, _, attr = path.rpartition(".")
            parent = rewritten.get_submodule(parent_path) if parent_path else rewritten
            setattr(parent, attr, rewrite.replace(module))
        if targets:
            counts[name] = len(targets)
    return rewritten, counts
