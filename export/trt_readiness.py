"""TensorRT readiness: would this ONNX graph build (and build well) on the device? Runs on any host.

Walks the graph (the ``onnx`` package, no TensorRT needed) and checks every node against TensorRT
10.x's ONNX parser support matrix (onnx/onnx-tensorrt ``docs/operators.md``, TensorRT 10.15: opsets 9
to 24) and the precision traps deployment engineers hit on a Jetson:

* ``fail``: the parser rejects the node (an operator TensorRT lacks, a custom domain without a
  plugin, a Resize mode it does not implement, a non-zero int8 zero point, a string tensor);
* ``fallback``: it builds, but not as written (a ConvTranspose ``output_padding`` or asymmetric pads
  add a padding/slice layer that may block fusion; double tensors are cast to float);
* ``trap``: FP16 precision traps (InstanceNorm and other reductions kept in FP32 by
  :mod:`pocketgan.export.tensorrt`'s layer precision constraints; ``trtexec`` needs
  ``--layerPrecisions``), int64 values beyond int32, dynamic dimensions with no optimization profile.

:func:`check_graph` returns a :class:`ReadinessReport` naming each node, with a one-line verdict.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.core.optional import require

#: TensorRT 10.x's ONNX parser: the opset range it supports (docs/operators.md, TensorRT 10.15).
OPSET_RANGE = (9, 24)

#: Operators the support matrix marks ``N`` (the parser fails on them).
UNSUPPORTED_OPS = frozenset("""
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im CenterCropPad Compress
ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool MaxUnpool
MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv
QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert
SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat StringNormalizer StringSplit
TfIdfVectorizer Unique
""".split())

#: Operators the support matrix marks ``Y`` (restrictions that matter for generators are checked below).
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization BlackmanWindow
Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageScaler
InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

#: Ops whose FP16 math loses precision in a generator (reductions over a whole feature map, the
#: StyleGAN2 demodulation's sum of squares and rsqrt). :mod:`pocketgan.export.tensorrt` pins them
#: to FP32 under ``--precision fp16``/``int8``; ``trtexec`` gets them as ``--layerPrecisions``.
FP16_SENSITIVE_OPS = frozenset(
    {"InstanceNormalization", "LayerNormalization", "GroupNormalization", "MeanVarianceNormalization",
     "RMSNormalization", "ReduceSumSquare", "ReduceL2", "Pow", "Sqrt", "Reciprocal"}
)  # fmt: skip

#: Resize attributes TensorRT implements (docs/operators.md, "Resize").
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATES = frozenset({"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                                "align_corners"})  # fmt: skip
RESIZE_NEAREST = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
INT32_RANGE = (-(2**31), 2**31 - 1)
LEVELS = ("fail", "fallback", "trap")


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` (fail / fallback / trap), the node (name and op; ``""`` for the graph) and why."""

    level: str
    node: str
    op: str
    message: str

    def line(self) -> str:
        """``fail  /model/Foo (Foo): not supported by TensorRT's ONNX parser``."""
        where = f"{self.node} ({self.op})" if self.node else "graph"
        return f"{self.level:<8} {where}: {self.message}"


@dataclass
class ReadinessReport:
    """The findings of one graph, with its op counts, the nodes pinned to FP32 and a one-line verdict."""

    findings: list[Finding]
    ops: dict[str, int]
    precision: str
    fp32_layers: list[str] = field(default_factory=list)

    def of(self, level: str) -> list[Finding]:
        """The findings of one level."""
        return [f for f in self.findings if f.level == level]

    @property
    def ready(self) -> bool:
        """Whether TensorRT's parser accepts every node (fallbacks and traps are warnings)."""
        return not self.of("fail")

    def verdict(self) -> str:
        """``TensorRT 10.x: ready (42 nodes, 9 op types; 1 fallback, 18 precision traps)`` or ``NOT ready: ...``."""
        counts = [f"{len(self.of(level))} {name}" for level, name in (("fallback", "fallbacks"),
                  ("trap", "precision traps")) if self.of(level)]  # fmt: skip
        nodes = f"{sum(self.ops.values())} nodes, {len(self.ops)} op types"
        detail = "; ".join([nodes, *counts])
        if self.ready:
            return f"TensorRT 10.x readiness ({self.precision}): ready ({detail})"
        failing = sorted({f.op for f in self.of("fail")})
        return (f"TensorRT 10.x readiness ({self.precision}): NOT ready, {len(self.of('fail'))} nodes would fail "
                f"({', '.join(failing)}; {detail})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for the sidecar and ``--check-only``)."""
        return {"verdict": self.verdict(), "ready": self.ready, "precision": self.precision, "ops": self.ops,
                "fp32_layers": self.fp32_layers,
                "findings": [{"level": f.level, "node": f.node, "op": f.op, "message": f.message}
                             for f in self.findings]}  # fmt: skip


def check_graph(model: Any, *, precision: str = "fp32", profiles: bool = False) -> ReadinessReport:
    """Check an ``onnx.ModelProto`` (or a path to one) for a TensorRT build at ``precision``.

    ``profiles``: whether the build will get optimization profiles for the graph's dynamic dimensions
    (:mod:`pocketgan.export.tensorrt` always adds one for its own dynamic batch; a bare ``trtexec``
    needs ``--minShapes/--optShapes/--maxShapes``).
    """
    onnx = require("onnx", "export", "the TensorRT readiness check")
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(Path(model)))
    graph = _Graph(onnx, model)
    findings = [*_opset_findings(model), *_io_findings(graph, profiles)]
    fp32_layers = []
    for node in model.graph.node:
        findings.extend(_node_findings(graph, node, precision))
        if precision != "fp32" and node.op_type in FP16_SENSITIVE_OPS:
            fp32_layers.append(node.name)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    findings.sort(key=lambda f: LEVELS.index(f.level))
    return ReadinessReport(findings, dict(sorted(ops.items())), precision, fp32_layers)


class _Graph:
    """Lookups over one graph: initializers by name, constant values, element types of tensors."""

    def __init__(self, onnx: Any, model: Any) -> None:
        from onnx import numpy_helper

        self.onnx = onnx
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
        self.numpy_helper = numpy_helper
        self.types = {v.name: v.type.tensor_type.elem_type
                      for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}  # fmt: skip
        self.types.update({t.name: t.data_type for t in model.graph.initializer})
        self.inputs = [v for v in model.graph.input if v.name not in self.initializers]

    def value(self, name: str) -> Any:
        """The constant value of tensor ``name`` (an initializer or a Constant node's), else ``None``."""
        if name in self.initializers:
            return self.numpy_helper.to_array(self.initializers[name])
        node = self.constants.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return self.numpy_helper.to_array(attr.t)
        return None

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or name in self.constants


def attributes(onnx: Any, node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _opset_findings(model: Any) -> Iterator[Finding]:
    low, high = OPSET_RANGE
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and not low <= opset.version <= high:
            yield Finding("fail", "", "", f"opset {opset.version} is outside TensorRT 10.x's range {low}-{high}")


def _io_findings(graph: _Graph, profiles: bool) -> Iterator[Finding]:
    for value in graph.inputs:
        dims = value.type.tensor_type.shape.dim
        dynamic = [d.dim_param or "?" for d in dims if not d.HasField("dim_value")]
        if dynamic and not profiles:
            yield Finding("trap", value.name, "input", f"dynamic dimensions {', '.join(dynamic)} need an "
                          "optimization profile (trtexec --minShapes/--optShapes/--maxShapes)")  # fmt: skip


def _node_findings(graph: _Graph, node: Any, precision: str) -> Iterator[Finding]:
    op, name = node.op_type, node.name or (node.output[0] if node.output else "")
    if node.domain not in ("", "ai.onnx"):
        yield Finding("fail", name, op, f"custom domain {node.domain!r}: needs a TensorRT plugin")
        return
    if op in UNSUPPORTED_OPS:
        yield Finding("fail", name, op, "not supported by TensorRT's ONNX parser")
        return
    if op not in SUPPORTED_OPS:
        yield Finding("fail", name, op, "not in TensorRT 10.x's ONNX support matrix")
        return
    checker = _CHECKS.get(op)
    if checker is not None:
        yield from (Finding(level, name, op, message) for level, message in checker(graph, node))
    if precision != "fp32" and op in FP16_SENSITIVE_OPS:
        yield Finding("trap", name, op, "loses precision in FP16: pinned to FP32 (trtexec: --layerPrecisions "
                      f"{name}:fp32 --precisionConstraints=obey)")  # fmt: skip
    yield from _dtype_findings(graph, node, name, op)


def _dtype_findings(graph: _Graph, node: Any, name: str, op: str) -> Iterator[Finding]:
    tensor = graph.onnx.TensorProto
    for tensor_name in [*node.input, *node.output]:
        elem = graph.types.get(tensor_name)
        if elem == tensor.STRING:
            yield Finding("fail", name, op, f"string tensor {tensor_name!r}: TensorRT has no string type")
        elif elem == tensor.DOUBLE:
            yield Finding("fallback", name, op, f"double tensor {tensor_name!r} is cast to float32")
    for tensor_name in node.input:
        value = graph.value(tensor_name) if graph.is_constant(tensor_name) else None
        if value is not None and value.dtype.kind == "i" and value.dtype.itemsize == 8 and value.size:
            low, high = INT32_RANGE
            if value.min() < low or value.max() > high:
                yield Finding("trap", name, op, f"int64 {tensor_name!r} holds values beyond int32: TensorRT 8.x "
                              "clamps them (10.x keeps int64)")  # fmt: skip


def _check_resize(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    attrs = attributes(graph.onnx, node)
    mode = attrs.get("mode", "nearest")
    if mode not in RESIZE_MODES:
        yield "fail", f"Resize mode {mode!r} is not supported (nearest, linear)"
    coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
    if coordinates not in RESIZE_COORDINATES:
        yield "fail", f"coordinate_transformation_mode {coordinates!r} is not supported"
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    if mode == "nearest" and nearest not in RESIZE_NEAREST:
        yield "fail", f"nearest_mode {nearest!r} is not supported"
    if attrs.get("antialias", 0):
        yield "fail", "antialiasing is not supported"
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        yield "fail", "keep_aspect_ratio_policy other than stretch is not supported"


def _check_conv_transpose(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    attrs = attributes(graph.onnx, node)
    if any(attrs.get("output_padding", [])):
        yield "fallback", (f"output_padding {list(attrs['output_padding'])} is padded after the deconvolution "
                           "(an extra layer that may block fusion; the 'conv-transpose-crop' rewrite avoids it)")  # fmt: skip
    pads = list(attrs.get("pads", []))
    half = len(pads) // 2
    if pads and pads[:half] != pads[half:]:
        yield "fallback", f"asymmetric pads {pads}: the deconvolution is followed by a slice"
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        yield "fallback", f"auto_pad {attrs['auto_pad']}: padding computed per shape"
    yield from _check_weights(graph, node)


def _check_weights(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    if len(node.input) > 1 and not graph.is_constant(node.input[1]):
        yield "fallback", "weights are not an initializer: no int8 weight quantization, no fused bias"


def _check_pad(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    mode = attributes(graph.onnx, node).get("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        yield "fail", f"Pad mode {mode!r} is not supported"


def _check_zero_point(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    if len(node.input) > 2:
        zero = graph.value(node.input[2])
        if zero is None:
            yield "fail", "the zero point must be a constant"
        elif zero.any():
            yield "fail", "the zero point must be 0 (TensorRT quantizes symmetrically)"
        elif zero.dtype.name == "uint8":
            yield "fail", "uint8 quantization: TensorRT's Q/DQ are int8"


def _check_reduce_axes(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    if len(node.input) > 1 and node.input[1] and not graph.is_constant(node.input[1]):
        yield "fail", "axes must be an initializer"


def _check_pool(graph: _Graph, node: Any) -> Iterator[tuple[str, str]]:
    dilations = attributes(graph.onnx, node).get("dilations", [])
    if any(d != 1 for d in dilations):
        yield "fail", f"dilations {list(dilations)}: must be all ones"


_CHECKS = {
    "Resize": _check_resize,
    "Upsample": _check_resize,
    "ConvTranspose": _check_conv_transpose,
    "Conv": _check_weights,
    "Pad": _check_pad,
    "QuantizeLinear": _check_zero_point,
    "DequantizeLinear": _check_zero_point,
    "AveragePool": _check_pool,
    "MaxPool": _check_pool,
    **{op: _check_reduce_axes for op in SUPPORTED_OPS if op.startswith("Reduce")},
}
