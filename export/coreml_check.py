"""Validating a saved CoreML ``.mlpackage`` on any host: its spec, its ML Program's ops, and what leaves the ANE.

``coremltools`` reads the package's spec on Linux too (prediction needs macOS), so the export checks
what it wrote: the inputs and outputs (tensor or image, shape, dtype, the image's scale and bias), the
compute precision (the dtype the program's ops produce), the op list, the metadata, the spec version
(the minimum deployment target) — and flags the ops Apple's stack is known to run on the CPU or GPU
instead of the Neural Engine.

:data:`ANE_FALLBACKS` is a heuristic table, not Apple's word (Apple publishes no per-op ANE list):
it follows hollance/neural-engine ``docs/unsupported-layers.md`` (custom layers and the N-d
"broadcastable" layer family such as gather/scatter stay off the ANE; a few unsupported layers make
Core ML split the model and switch processors, which costs a copy each time) and coremltools' note
that the ANE computes in fp16 only, plus reports from the pix2pix/CycleGAN deployment community for
reflection padding, instance normalization over large maps and transposed convolutions whose kernel
is not a multiple of the stride. The ground truth is Xcode's Core ML Performance Report on the device.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pocketgan.core.errors import PocketganError

#: MIL op type → why Core ML is known/reported to run it off the Neural Engine.
ANE_FALLBACKS = {
    "gather": "N-d gather: runs on the CPU/GPU",
    "gather_nd": "N-d gather: runs on the CPU/GPU",
    "scatter": "N-d scatter: runs on the CPU/GPU",
    "scatter_nd": "N-d scatter: runs on the CPU/GPU",
    "non_zero": "data-dependent shape: CPU only",
    "topk": "runs on the CPU",
    "einsum": "runs on the CPU/GPU",
    "random_normal": "random ops run on the CPU",
    "random_uniform": "random ops run on the CPU",
    "instance_norm": "reported on the GPU/CPU for large feature maps (per-channel H×W reduction); "
                     "batch-folded or group norms stay on the ANE more often",
}  # fmt: skip
PAD_MODES_OFF_ANE = {"reflect": "reflection padding: reported off the ANE, unconfirmed (coremltools itself folds "
                                "slices + concat into it; --option rewrites=all to A/B on the device)",
                     "replicate": "replicate padding: reported off the ANE"}  # fmt: skip
#: The spec version each minimum deployment target writes (coremltools ``_SPECIFICATION_VERSION_...``).
SPEC_TARGETS = {6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18"}
MIL_FP16, MIL_FP32 = "FLOAT16", "FLOAT32"


@dataclass(frozen=True)
class Feature:
    """One input or output: ``kind`` ``tensor`` or ``image``; for an image its color layout, scale and bias."""

    name: str
    kind: str
    shape: list[int]
    dtype: str = ""
    color_layout: str = ""
    scale: float | None = None
    bias: list[float] | None = None


@dataclass
class CoreMLReport:
    """What a saved package holds (see the module docstring)."""

    program: str
    target: str
    precision: str
    inputs: list[Feature]
    outputs: list[Feature]
    ops: dict[str, int]
    metadata: dict[str, str]
    author: str
    version: str
    description: str
    off_ane: list[dict[str, str]] = field(default_factory=list)

    def verdict(self) -> str:
        """``CoreML mlProgram (iOS15, fp16): 127 ops, 41 may run off the Neural Engine (instance_norm ...)``."""
        count = sum(self.ops.values())
        head = f"CoreML {self.program} ({self.target}, {self.precision}): {count} ops"
        if not self.off_ane:
            return f"{head}, all of kinds that run on the Neural Engine"
        kinds = sorted({f["op"] for f in self.off_ane})
        return f"{head}, {len(self.off_ane)} may run off the Neural Engine ({', '.join(kinds)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the sidecar's ``extra["coreml_check"]``, metadata keys only)."""
        data = asdict(self)
        data["metadata"] = sorted(self.metadata)
        data["verdict"] = self.verdict()
        return data


def check_package(ct: Any, path: Path) -> CoreMLReport:
    """Read the spec of the ``.mlpackage`` at ``path`` (no prediction) and report on it."""
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as exc:  # a broken package: one line
        raise PocketganError(f"{path}: not a readable CoreML package ({exc})") from None
    program = spec.WhichOneof("Type") or "unknown"
    operations = list(_operations(spec)) if program == "mlProgram" else []
    meta = spec.description.metadata
    return CoreMLReport(
        program=program, target=SPEC_TARGETS.get(spec.specificationVersion, f"spec {spec.specificationVersion}"),
        precision=_precision(operations),
        inputs=[with_preprocessing(_feature(f), operations) for f in spec.description.input],
        outputs=[_feature(f) for f in spec.description.output],
        ops=dict(sorted(Counter(op.type for op in operations if op.type != "const").items())),
        metadata=dict(meta.userDefined), author=meta.author, version=meta.versionString,
        description=meta.shortDescription, off_ane=off_ane_ops(operations),
    )  # fmt: skip


def _operations(spec: Any) -> Any:
    function = spec.mlProgram.functions["main"]
    yield from function.block_specializations[function.opset].operations


def _precision(operations: list[Any]) -> str:
    """``fp16`` when the compute ops produce float16, ``fp32`` when float32, ``mixed`` otherwise."""
    types = {_dtype(op) for op in operations if op.type in ("conv", "conv_transpose", "linear", "matmul")}
    if types == {MIL_FP16}:
        return "fp16"
    return "fp32" if types <= {MIL_FP32} else "mixed"


def _dtype(op: Any) -> str:
    from coremltools.proto import MIL_pb2

    return MIL_pb2.DataType.Name(op.outputs[0].type.tensorType.dataType) if op.outputs else ""


def off_ane_ops(operations: list[Any]) -> list[dict[str, str]]:
    """Ops (by output name) the table says may leave the Neural Engine, with the reason."""
    consts = {op.outputs[0].name: op for op in operations if op.type == "const" and op.outputs}
    found = []
    for op in operations:
        reason = ANE_FALLBACKS.get(op.type)
        if op.type == "pad":
            reason = PAD_MODES_OFF_ANE.get(_const_string(consts, op, "mode"))
        elif op.type == "conv_transpose":
            reason = _odd_deconv(consts, op)
        if reason:
            found.append({"op": op.type, "name": op.outputs[0].name if op.outputs else "", "reason": reason})
    return found


def _odd_deconv(consts: dict[str, Any], op: Any) -> str | None:
    weight, strides = _const_array(consts, op, "weight"), _const_array(consts, op, "strides")
    if weight is None or strides is None:
        return None
    kernel = list(weight.shape[2:])
    if any(k % s for k, s in zip(kernel, strides)):
        return f"transposed conv with kernel {kernel} not a multiple of its stride {list(strides)}: reported slow/off the ANE"
    return None


def _const_value(consts: dict[str, Any], op: Any, key: str) -> Any:
    if key not in op.inputs or not op.inputs[key].arguments:
        return None
    source = consts.get(op.inputs[key].arguments[0].name)
    if source is None or "val" not in source.attributes:
        return None
    return source.attributes["val"].immediateValue.tensor


def _const_string(consts: dict[str, Any], op: Any, key: str) -> str:
    tensor = _const_value(consts, op, key)
    return tensor.strings.values[0] if tensor is not None and tensor.strings.values else ""


def _const_array(consts: dict[str, Any], op: Any, key: str) -> Any:
    import numpy as np

    tensor = _const_value(consts, op, key)
    if tensor is not None and tensor.ints.values:
        return np.asarray(tensor.ints.values)
    if key == "weight" and key in op.inputs and op.inputs[key].arguments:
        source = consts.get(op.inputs[key].arguments[0].name)
        if source is not None:  # weights live in a blob file: the shape is in the op's output type
            dims = source.outputs[0].type.tensorType.dimensions
            return np.empty([d.constant.size for d in dims], dtype=np.uint8)
    return None


def _feature(feature: Any) -> Feature:
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        image = feature.type.imageType
        from coremltools.proto import FeatureTypes_pb2

        layout = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace)
        return Feature(feature.name, "image", [int(image.height), int(image.width)], "uint8", layout)
    array = feature.type.multiArrayType
    from coremltools.proto import FeatureTypes_pb2

    dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
    shape = [int(d) for d in array.shape] or [int(r.lowerBound) for r in array.shapeRange.sizeRanges]
    return Feature(feature.name, "tensor", shape, dtype)


def with_preprocessing(feature: Feature, operations: list[Any]) -> Feature:
    """An image input with the scale and bias the package applies (its ``<name>__scaled__``/``__biased__`` ops)."""
    if feature.kind != "image":
        return feature
    consts = {op.outputs[0].name: op for op in operations if op.type == "const" and op.outputs}
    values: dict[str, Any] = {}
    for op in operations:
        for suffix, key in (("__scaled__", "scale"), ("__biased__", "bias")):
            if op.outputs and op.outputs[0].name == f"{feature.name}{suffix}" and "y" in op.inputs:
                tensor = _const_value(consts, op, "y")
                numbers = list(tensor.floats.values) if tensor is not None else []
                numbers = numbers or _half_values(tensor)
                values[key] = numbers
    scale = values.get("scale", [1.0])
    return replace(feature, scale=float(scale[0]), bias=[float(v) for v in values.get("bias", [0.0])])


def _half_values(tensor: Any) -> list[float]:
    import numpy as np

    if tensor is None or not tensor.bytes.values:
        return []
    return np.frombuffer(tensor.bytes.values, dtype=np.float16).astype(float).tolist()
