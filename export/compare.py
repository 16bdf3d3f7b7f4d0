"""Comparing two runs of a generator (Polygraphy-style): output error statistics and the first diverging layer.

:func:`error_stats` summarizes ``candidate - reference`` (max, mean, p90 and p99 of the absolute error,
PSNR over the output value range) and judges it like ``numpy.allclose``: every element must satisfy
``|candidate - reference| <= atol + rtol * |reference|``. :func:`first_divergence` exposes every
intermediate tensor of two ONNX graphs of the same model (tensors matched by name: an fp32 export and
its fp16 or int8 variant keep the node output names) and runs both with onnxruntime on the same feed,
returning the first tensor, in graph order, that breaks the tolerance. ``pocketgan compare`` is the CLI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require

DEFAULT_ATOL = 1e-5  # Polygraphy's defaults
DEFAULT_RTOL = 1e-5
PSNR_CAP_DB = 200.0  # identical outputs (as the export sidecar's parity)


@dataclass(frozen=True)
class ErrorStats:
    """How far ``candidate`` is from ``reference``, and whether it is within ``atol + rtol * |reference|``."""

    max_abs: float
    mean_abs: float
    p90_abs: float
    p99_abs: float
    max_rel: float
    psnr_db: float
    atol: float
    rtol: float
    passed: bool
    elements: int
    failing: int  # elements outside the tolerance

    def line(self) -> str:
        """``max abs 1.2e-03, mean 1.1e-04, p90 2.5e-04, p99 6.0e-04, PSNR 71.3 dB: PASS (atol 0.01, rtol 1e-05)``."""
        verdict = "PASS" if self.passed else f"FAIL ({self.failing} of {self.elements} elements out of tolerance)"
        return (f"max abs {self.max_abs:.3g}, mean {self.mean_abs:.3g}, p90 {self.p90_abs:.3g}, p99 {self.p99_abs:.3g}, "
                f"max rel {self.max_rel:.3g}, PSNR {self.psnr_db:.1f} dB: {verdict} (atol {self.atol:g}, rtol {self.rtol:g})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def error_stats(
    reference: np.ndarray, candidate: np.ndarray, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
    data_range: float = 2.0,
) -> ErrorStats:  # fmt: skip
    """Error statistics of ``candidate`` against ``reference`` (same shape); ``data_range`` is the outputs'
    value range for PSNR (2 for generators with outputs in [-1, 1])."""
    if atol < 0 or rtol < 0:
        raise PocketganError(f"--atol and --rtol must be >= 0; got {atol}, {rtol}")
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise PocketganError(f"the outputs differ in shape: {list(reference.shape)} vs {list(candidate.shape)}")
    if not (np.isfinite(reference).all() and np.isfinite(candidate).all()):
        bad = int((~np.isfinite(reference)).sum() + (~np.isfinite(candidate)).sum())
        return ErrorStats(math.inf, math.inf, math.inf, math.inf, math.inf, 0.0, atol, rtol, False, reference.size, bad)
    diff = np.abs(candidate - reference)
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    psnr = PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(data_range**2 / mse))
    failing = int((diff > atol + rtol * np.abs(reference)).sum())
    p90, p99 = (float(v) for v in np.percentile(diff, [90, 99])) if diff.size else (0.0, 0.0)
    rel = diff / np.maximum(np.abs(reference), np.finfo(np.float32).tiny)
    return ErrorStats(float(diff.max(initial=0.0)), float(diff.mean()) if diff.size else 0.0, p90, p99,
                      float(rel.max(initial=0.0)), psnr, atol, rtol, failing == 0, int(diff.size), failing)  # fmt: skip


def output_range(io: IOSpec) -> float:
    """The value range of a generator's outputs (pixel 0..255 mapped by ``scale``/``offset``)."""
    return 255.0 * io.scale


def seeded_inputs(shape: Sequence[int], io: IOSpec, count: int, *, seed: int = 0) -> np.ndarray:
    """``count`` inputs of ``shape`` (batch dim excluded), drawn with ``seed``: random images mapped into the
    model's input range, or standard-normal latents for a latent-input generator."""
    rng = np.random.default_rng(seed)
    if io.is_latent:
        return rng.standard_normal((count, *shape)).astype(np.float32)
    pixels = rng.integers(0, 256, size=(count, *shape)).astype(np.float32)
    return (pixels * io.scale + io.offset).astype(np.float32)


def image_inputs(directory: str | os.PathLike[str], io: IOSpec, size: tuple[int, int], limit: int) -> np.ndarray:
    """Up to ``limit`` images of ``directory`` (sorted by name) as the model's NCHW float32 inputs."""
    from pocketgan.imaging import is_image_name, prepare, read_rgb

    folder = Path(directory)
    if not folder.is_dir():
        raise PocketganError(f"--input {folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))[:limit]
    if not files:
        raise PocketganError(f"--input {folder}: no images found")
    return np.stack([prepare(read_rgb(p), io, size) for p in files]).astype(np.float32)


@dataclass(frozen=True)
class Divergence:
    """The first tensor where two ONNX graphs disagree: the node producing it, and the error there."""

    node: str
    op: str
    tensor: str
    stats: ErrorStats
    compared: int  # tensors compared up to and including this one

    def line(self) -> str:
        """``first divergence at /model/Conv_3 (Conv) output '/model/Conv_3_output_0': max abs ...``."""
        return f"first divergence at {self.node} ({self.op}) output {self.tensor!r}: {self.stats.line()}"


@dataclass(frozen=True)
class MarkAllResult:
    """``--mark-all``: the tensors both graphs share, how many were compared, and the first divergence."""

    shared: int
    compared: int
    divergence: Divergence | None

    def line(self) -> str:
        """One line for the CLI."""
        if self.divergence is not None:
            return self.divergence.line()
        return f"no divergence: all {self.compared} shared intermediate tensors within tolerance"


def first_divergence(
    reference: str | os.PathLike[str], candidate: str | os.PathLike[str], feed: Mapping[str, np.ndarray], *,
    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, data_range: float = 2.0,
) -> MarkAllResult:  # fmt: skip
    """Run both ONNX files with every shared intermediate tensor exposed; the first that breaks the tolerance.

    Tensors are matched by name and walked in ``reference``'s node order; tensors whose shapes differ
    (a layout change) are skipped. Both graphs run with onnxruntime's CPU provider, optimizations off,
    so each tensor is the node's own result.
    """
    graphs = [_load_onnx(Path(p)) for p in (reference, candidate)]
    shared_types = _shared_float_tensors(*graphs)
    values = [_run_exposed(model, shared_types, feed) for model in graphs]
    compared = 0
    for node in graphs[0].graph.node:
        for tensor in node.output:
            if tensor not in shared_types:
                continue
            ref, cand = values[0][tensor], values[1][tensor]
            if ref.shape != cand.shape:
                continue
            compared += 1
            stats = error_stats(ref, cand, atol=atol, rtol=rtol, data_range=data_range)
            if not stats.passed:
                return MarkAllResult(len(shared_types), compared,
                                     Divergence(node.name or tensor, node.op_type, tensor, stats, compared))  # fmt: skip
    return MarkAllResult(len(shared_types), compared, None)


def _load_onnx(path: Path) -> Any:
    onnx = require("onnx", "export", "comparing ONNX graphs layer by layer (--mark-all)")
    if path.is_dir():
        path = path / "model.onnx"
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise PocketganError(f"--mark-all compares two ONNX files; {path} is not one")
    model = onnx.load(str(path))
    return onnx.shape_inference.infer_shapes(model)


def _float_tensors(model: Any) -> dict[str, int]:
    """Node outputs with a known floating-point element type → that type."""
    tensor = require("onnx", "export", "--mark-all").TensorProto
    floats = {tensor.FLOAT, tensor.FLOAT16, tensor.DOUBLE, tensor.BFLOAT16}
    known = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.output]}
    outputs = [t for node in model.graph.node for t in node.output if t]
    return {t: known[t] for t in outputs if known.get(t) in floats}


def _shared_float_tensors(reference: Any, candidate: Any) -> dict[str, tuple[int, int]]:
    """Float tensors produced in both graphs → (type in reference, type in candidate)."""
    ref, cand = _float_tensors(reference), _float_tensors(candidate)
    return {name: (ref[name], cand[name]) for name in ref if name in cand}


def _run_exposed(model: Any, shared: Mapping[str, tuple[int, int]], feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``model`` with the ``shared`` tensors added as graph outputs; values as float32 arrays."""
    onnx = require("onnx", "export", "--mark-all")
    ort = require("onnxruntime", "export", "--mark-all")
    existing = {o.name for o in model.graph.output}
    types = _float_tensors(model)
    for name in shared:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    missing = inputs - set(feed)
    if missing:
        raise PocketganError(f"--mark-all: the graphs' inputs differ (no value for {', '.join(sorted(missing))})")
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, {k: v for k, v in feed.items() if k in inputs})
    return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, results) if n in shared}
