"""What LiteRT (TFLite) says about a model, read with the standard library only (export and runtime share it).

- **Delegation coverage** (:func:`delegation_coverage`): after the XNNPACK delegate is applied, LiteRT's
  interpreter lists the model's own operators followed by one ``DELEGATE`` node per delegated subgraph
  (``Interpreter._get_ops_details()``: each node's ``op_name``, ``inputs`` and ``outputs`` tensor indices).
  A delegate node replaces every operator between its inputs and its outputs, so walking back from its
  outputs to its inputs finds the operators it took; the others run on LiteRT's own CPU kernels.
- **Tensors in and out** (:func:`to_interpreter`, :func:`from_interpreter`): an NCHW float batch becomes the
  interpreter's input (transposed for an NHWC artifact, quantized with the tensor's scale and zero point when the
  converter made it int8, as a PT2E int8 graph's input is), and its output becomes NCHW float32 again. Array
  methods only, so the kernel still imports no numpy.
- **Metadata layout** (:data:`LAYOUT_KEY`, :data:`LAYOUTS`): the pocketgan metadata travels in the
  flatbuffer's ``metadata`` table, one entry per ``pocketgan.*`` key of
  :class:`~pocketgan.core.embedded.EmbeddedMetadata` (its buffer holds the JSON value), plus
  ``pocketgan.layout``: ``"nchw"`` or ``"nhwc"``, the layout of the artifact's input and output.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pocketgan.core.coverage import DelegationCoverage
from pocketgan.core.embedded import PREFIX
from pocketgan.core.errors import ManifestError

#: The op name LiteRT gives a node standing for a delegated subgraph.
DELEGATE_OP = "DELEGATE"
#: The metadata entry stating the artifact's tensor layout, and its values (NCHW: PyTorch's).
LAYOUT_KEY = PREFIX + "layout"
LAYOUTS = ("nchw", "nhwc")
#: What the coverage record names as its inspector.
COVERAGE_SOURCE = "ai_edge_litert Interpreter op details (DELEGATE nodes)"


def delegation_coverage(ops: Sequence[Mapping[str, Any]], backend: str = "XNNPACK") -> DelegationCoverage:
    """The coverage of ``ops`` (``Interpreter._get_ops_details()`` after the delegate was applied): how many of
    the model's operators the delegate nodes replaced, in how many islands, and the rest by op type."""
    delegates = [op for op in ops if op["op_name"] == DELEGATE_OP]
    model_ops = [op for op in ops if op["op_name"] != DELEGATE_OP]
    producer = {int(t): op for op in model_ops for t in op["outputs"]}
    taken: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        pending = [int(t) for t in node["outputs"]]
        while pending:
            tensor = pending.pop()
            op = producer.get(tensor)
            if op is None or tensor in boundary or int(op["index"]) in taken:
                continue
            taken.add(int(op["index"]))
            pending.extend(int(t) for t in op["inputs"] if int(t) >= 0)
    left = Counter(str(op["op_name"]) for op in model_ops if int(op["index"]) not in taken)
    return DelegationCoverage(backend, len(taken), sum(left.values()), "ops", len(delegates), dict(left),
                              COVERAGE_SOURCE)  # fmt: skip


#: Integer tensor types of quantized LiteRT inputs and outputs, and their ranges.
INTEGER_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def to_interpreter(batch: Any, detail: Mapping[str, Any], layout: str) -> Any:
    """An NCHW float array as the tensor ``detail`` (``get_input_details()[i]``) takes: NHWC for ``layout="nhwc"``,
    ``round(x / scale + zero_point)`` clipped to its range when it is an integer tensor; C-contiguous."""
    x = batch.transpose(0, 2, 3, 1) if layout == "nhwc" else batch
    dtype = detail["dtype"]
    bounds = INTEGER_RANGES.get(getattr(dtype, "__name__", str(dtype)))
    if bounds is not None:
        scale, zero_point = detail["quantization"]
        x = (x / scale + zero_point).round().clip(*bounds)
    return x.astype(dtype, order="C")


def from_interpreter(value: Any, detail: Mapping[str, Any], layout: str) -> Any:
    """The interpreter's output ``value`` (tensor ``detail``) as an NCHW float32 array (dequantized if it is an
    integer tensor; a copy)."""
    y = value.transpose(0, 3, 1, 2) if layout == "nhwc" else value
    if getattr(detail["dtype"], "__name__", "") in INTEGER_RANGES:
        scale, zero_point = detail["quantization"]
        return (y.astype("float32") - zero_point) * scale
    return y.astype("float32", order="C")


def layout_of(props: Mapping[str, str], source: str) -> str:
    """The layout an artifact's metadata states (``"nchw"`` when it states none); one error line if unknown."""
    try:
        value = json.loads(props[LAYOUT_KEY]) if LAYOUT_KEY in props else "nchw"
    except ValueError:
        value = props[LAYOUT_KEY]
    if value not in LAYOUTS:
        raise ManifestError(f"{source}: embedded {LAYOUT_KEY} must be {' or '.join(LAYOUTS)}; got {value!r}")
    return str(value)


@contextlib.contextmanager
def quiet_fd(fd: int = 2) -> Iterator[None]:
    """Discard what native code writes to file descriptor ``fd`` inside the block (LiteRT's "Created TensorFlow Lite
    XNNPACK delegate for CPU." and absl lines on stderr, which Python's own redirection cannot catch)."""
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
