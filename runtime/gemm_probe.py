"""Timed square matrix multiplications: how many multiply-adds per second a library reaches on this host.

A GEMM is the densest work a CPU does; the best rate any installed library reaches on it is the host's
practical compute limit, the yardstick :mod:`pocketgan.runtime.compute_limit` holds generators to.
Each probe multiplies two ``n × n`` matrices repeatedly for about ``budget_s`` seconds after one
untimed run and keeps the *best* run (the least disturbed by other load):

- :func:`numpy_sgemm`: numpy's BLAS (OpenBLAS in the wheels) fp32, in a child process so that its
  thread count can be set (BLAS reads ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` once, at import);
- :func:`ort_gemm`: onnxruntime's MLAS ``MatMul`` (fp32) or ``MatMulInteger`` (uint8 × int8 → int32,
  the kernel of a QDQ int8 convolution: ``vpdpbusd`` with VNNI, ``vpmaddubsw`` without), on a
  one-node ONNX graph whose bytes :func:`matmul_model_bytes` writes (the runtime has no ``onnx``);
- :func:`openvino_sgemm`: OpenVINO's CPU plugin (oneDNN) fp32 ``MatMul``, built with its opset API.

An ``n × n × n`` product is ``n³`` multiply-accumulates (MACs), ``2 n³`` operations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Matrix side of the default probe: 8.6 G multiply-adds, 20-100 ms per run on a laptop or server core.
DEFAULT_N = 2048
#: Timed seconds per probe (after one untimed run).
DEFAULT_BUDGET_S = 0.5
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


@dataclass(frozen=True)
class GemmProbe:
    """One library's best time for an ``n³`` GEMM at ``threads`` threads (``dtype`` ``fp32`` or ``int8``)."""

    library: str
    dtype: str
    n: int
    threads: int
    best_s: float
    runs: int

    @property
    def gmacs(self) -> float:
        """Giga multiply-accumulates per second of the best run."""
        return self.n**3 / self.best_s / 1e9

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived ``gmacs`` and ``gflops``."""
        return {**asdict(self), "gmacs": self.gmacs, "gflops": 2 * self.gmacs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GemmProbe:
        return cls(str(data["library"]), str(data["dtype"]), int(data["n"]), int(data["threads"]),
                   float(data["best_s"]), int(data["runs"]))  # fmt: skip


def best_time(run: Callable[[], Any], budget_s: float) -> tuple[float, int]:
    """``(best seconds, timed runs)`` of ``run`` repeated for ``budget_s`` seconds after one untimed run."""
    run()
    best, runs, start = float("inf"), 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - start < budget_s:
        begin = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - begin)
        runs += 1
    return best, runs


def _operands(n: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if dtype == "int8":  # full-range activations and weights: the worst case for vpmaddubsw saturation
        return rng.integers(0, 256, (n, n), dtype=np.uint8), rng.integers(-128, 128, (n, n), dtype=np.int8)
    return rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)


# ------------------------------------------------------------------------------------------------ numpy
def numpy_sgemm(n: int = DEFAULT_N, threads: int = 1, budget_s: float = DEFAULT_BUDGET_S) -> GemmProbe:
    """numpy ``a @ b`` in fp32, timed in a child process whose BLAS runs ``threads`` threads."""
    env = {**os.environ, **{name: str(threads) for name in _BLAS_THREAD_VARIABLES}}
    code = f"from {__name__} import _numpy_child; _numpy_child({n}, {budget_s})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"numpy GEMM probe failed: {done.stderr.strip().splitlines()[-1:]}")
    best, runs, library = json.loads(done.stdout.strip().splitlines()[-1])
    return GemmProbe(library, "fp32", n, threads, best, runs)


def _numpy_child(n: int, budget_s: float) -> None:
    """The child's side of :func:`numpy_sgemm`: prints ``[best_s, runs, library]`` as JSON."""
    a, b = _operands(n, "fp32")
    best, runs = best_time(lambda: a @ b, budget_s)
    print(json.dumps([best, runs, f"numpy {np.__version__} ({_blas_name()})"]))


def _blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # numpy >= 1.26
        return f"{blas.get('name', 'BLAS')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "BLAS"


# ------------------------------------------------------------------------------------------- onnxruntime
#: ONNX element types (``TensorProto.DataType``) the probe graphs use.
_FLOAT, _UINT8, _INT8, _INT32 = 1, 2, 3, 6
_ORT_OPS = {"fp32": ("MatMul", _FLOAT, _FLOAT, _FLOAT), "int8": ("MatMulInteger", _UINT8, _INT8, _INT32)}


def ort_gemm(dtype: str, n: int = DEFAULT_N, threads: int = 1, budget_s: float = DEFAULT_BUDGET_S) -> GemmProbe:
    """onnxruntime's CPU ``MatMul`` (``fp32``) or ``MatMulInteger`` (``int8``) at ``threads`` intra-op threads."""
    import onnxruntime as ort

    op, a_type, b_type, c_type = _ORT_OPS[dtype]
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    session = ort.InferenceSession(matmul_model_bytes(op, n, a_type, b_type, c_type), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    a, b = _operands(n, dtype)
    best, runs = best_time(lambda: session.run(None, {"A": a, "B": b}), budget_s)
    return GemmProbe(f"onnxruntime {ort.__version__} {op}", dtype, n, threads, best, runs)


def matmul_model_bytes(op: str, n: int, a_type: int, b_type: int, c_type: int) -> bytes:
    """A serialized ONNX ``ModelProto`` (IR 7, opset 13) of one ``op`` node ``C = op(A, B)`` on ``n × n`` inputs.

    Written field by field with the protobuf wire format (varints and length-delimited fields), so the
    torch-free runtime needs neither ``onnx`` nor a model file shipped beside it.
    """
    def value(name: str, elem_type: int) -> bytes:
        dims = b"".join(_field(1, _varint_field(1, n)) for _ in range(2))  # TensorShapeProto.dim.dim_value
        tensor = _varint_field(1, elem_type) + _field(2, dims)  # TypeProto.Tensor: elem_type, shape
        return _field(1, name.encode()) + _field(2, _field(1, tensor))  # ValueInfoProto: name, type.tensor_type

    node = _field(1, b"A") + _field(1, b"B") + _field(2, b"C") + _field(4, op.encode())
    graph = (_field(1, node) + _field(2, b"gemm_probe") + _field(11, value("A", a_type)) +
             _field(11, value("B", b_type)) + _field(12, value("C", c_type)))  # fmt: skip
    opset = _field(1, b"") + _varint_field(2, 13)
    return _varint_field(1, 7) + _field(2, b"pocketgan") + _field(7, graph) + _field(8, opset)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings and nested messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# ---------------------------------------------------------------------------------------------- OpenVINO
def openvino_sgemm(n: int = DEFAULT_N, threads: int = 1, budget_s: float = DEFAULT_BUDGET_S) -> GemmProbe:
    """OpenVINO's CPU plugin fp32 ``MatMul`` (f32 inference precision, as the openvino backend compiles)."""
    import openvino as ov
    from openvino import opset13

    a, b = opset13.parameter([n, n], np.float32, name="A"), opset13.parameter([n, n], np.float32, name="B")
    model = ov.Model([opset13.matmul(a, b, False, False)], [a, b], "gemm_probe")
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    x, y = _operands(n, "fp32")
    best, runs = best_time(lambda: request.infer({"A": x, "B": y}), budget_s)
    return GemmProbe(f"openvino {ov.get_version().split('-')[0]} MatMul", "fp32", n, threads, best, runs)
