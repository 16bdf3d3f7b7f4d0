"""ncnn: ``model.ncnn.param`` + ``model.ncnn.bin`` converted by pnnx from a TorchScript trace, run with ncnn.

- **fp32**: pnnx with ``fp16=0`` (its default writes fp16 weights: 4.6e-3 off at 256 px); ncnn runs it
  with fp16/bf16 storage and arithmetic off, so parity is held to fp32's 1e-4.
- **fp16**: fp16 weights and ncnn's fp16 storage (and arithmetic where the CPU has it: ARM ``asimdhp``),
  judged by the fp16 PSNR rule of :mod:`pocketgan.export.parity`. On x86, ncnn keeps activations in
  fp16 between layers where the CPU has F16C.

pnnx converts in a scratch directory (its ``.pt`` trace, ``pnnx.param``/``.bin``, generated Python and
ONNX files stay there); only the ncnn pair is published, atomically, beside the sidecar. The files are
named ``model.ncnn.*`` so that they never meet OpenVINO's ``model.bin`` in one export directory.

ncnn's ``.param`` has no metadata slot: what other formats embed (I/O spec, tensors, MACs, provenance:
:func:`~pocketgan.export.metadata.artifact_metadata`) goes into the sidecar's ``extra.metadata`` instead,
with the blob names and layer counts under ``extra.ncnn``; the ``ncnn`` runtime backend requires it. ``--option rewrites=...``
runs graph rewrites first (:mod:`pocketgan.export.rewrites`; ncnn needs none by default). Delegation
coverage: every layer of the ``.param`` whose type ncnn's layer registry knows runs natively; a type
pnnx left unconverted (``torch.cumprod``, ``aten::erfinv``, ``pnnx.Expression``) is a fallback ncnn
cannot load, and the export fails naming them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.coverage import DelegationCoverage
from pocketgan.core.errors import PocketganError
from pocketgan.core.ncnn import configure_ncnn
from pocketgan.core.optional import require
from pocketgan.export.formats import merge_format_options
from pocketgan.export.failures import first_line, reraise_as_user_error
from pocketgan.export.job import BuiltArtifact, ExportJob, Runner
from pocketgan.export.metadata import artifact_metadata
from pocketgan.export.registry import register_exporter
from pocketgan.export.rewrites import DEFAULT as DEFAULT_REWRITES, rewrite_for_target

#: ``--option`` keys of ``--format ncnn`` and their defaults.
OPTION_DEFAULTS: dict[str, object] = {"rewrites": DEFAULT_REWRITES}
#: Layers that compute nothing (the graph input; ncnn's blob fan-out): not counted as coverage.
NON_LAYERS = frozenset({"Input", "Split"})
PARAM_MAGIC = "7767517"
#: The sidecar's ``extra`` key holding what other formats embed (``pocketgan.io``, MACs, provenance): a
#: ``.param`` has no metadata slot.
SIDECAR_METADATA = "metadata"
#: pnnx's own files, kept in the scratch directory.
PNNX_FILES = ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy")


@dataclass(frozen=True)
class NcnnGraph:
    """What an ncnn ``.param`` declares: every layer's type, the input blobs and the output blobs."""

    layer_types: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        """Layers by type (computing layers only), most frequent first."""
        counts = Counter(t for t in self.layer_types if t not in NON_LAYERS)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def read_param(path: Path) -> NcnnGraph:
    """Parse an ncnn text ``.param`` (magic, ``layers blobs``, then ``type name bottoms tops ...`` per layer)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != [PARAM_MAGIC] or len(lines) < 2:
        raise PocketganError(f"{path}: not an ncnn text .param (no {PARAM_MAGIC} header)")
    types, inputs, produced, consumed = [], [], [], set()
    for fields in lines[2:]:
        kind, bottoms, tops = fields[0], int(fields[2]), int(fields[3])
        bottom_names, top_names = fields[4 : 4 + bottoms], fields[4 + bottoms : 4 + bottoms + tops]
        types.append(kind)
        consumed.update(bottom_names)
        produced += top_names
        if kind == "Input":
            inputs += top_names
    outputs = [blob for blob in produced if blob not in consumed and blob not in inputs]
    return NcnnGraph(tuple(types), tuple(inputs), tuple(outputs))


def ncnn_coverage(graph: NcnnGraph) -> DelegationCoverage:
    """Layers ncnn runs natively vs layer types it does not know (what pnnx left unconverted).

    The judge is ncnn's layer registry (``ncnn.layer_to_index(type) >= 0``) when ncnn is installed; without it,
    a type named like a framework op (``torch.*``, ``aten::*``, ``pnnx.*``) counts as unconverted (ncnn's own
    layer types are plain words).
    """
    known, source = _layer_registry()
    counts = graph.counts()
    fallback = {kind: n for kind, n in counts.items() if not known(kind)}
    return DelegationCoverage("ncnn", sum(counts.values()) - sum(fallback.values()), sum(fallback.values()), "layers",
                              by_op=fallback, source=source)  # fmt: skip


def _layer_registry() -> tuple[Callable[[str], bool], str]:
    """``known(layer type)`` and what it consults."""
    if importlib.util.find_spec("ncnn") is not None:
        import ncnn

        return (lambda kind: ncnn.layer_to_index(kind) >= 0), "ncnn .param layers vs ncnn.layer_to_index"
    return (lambda kind: "." not in kind and ":" not in kind), "ncnn .param layers (by name: ncnn not installed)"


@register_exporter("ncnn")
def build_ncnn(job: ExportJob, dest: Path) -> BuiltArtifact:
    """ncnn ``.param`` + ``.bin`` by pnnx (fp32 or fp16 weights); parity with the ncnn Python package."""
    rewrites_option = ncnn_options(job.options.format_options)["rewrites"]
    pnnx = require("pnnx", "ncnn", "ncnn export (pnnx)")
    fp16 = job.options.precision == "fp16"
    model, rewrites = rewrite_for_target(job.model, "ncnn", rewrites_option)
    job.progress.step("tracing with TorchScript")
    trace = job.scratch / "ncnn-source.pt"
    with reraise_as_user_error("TorchScript tracing failed"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.trace(model.eval(), job.example(), check_trace=False).save(str(trace))  # parity is the check
    job.progress.step("converting with pnnx")
    bin_path = dest.with_suffix(".bin")
    convert_with_pnnx(pnnx.EXEC_PATH, trace, list(job.example().shape), dest, bin_path, fp16=fp16)
    graph = read_param(dest)
    coverage = ncnn_coverage(graph)
    if coverage.fallback:
        raise PocketganError(f"ncnn cannot run what pnnx left unconverted: {coverage.describe()}")
    run, reason = ncnn_runner(dest, fp16=fp16)
    extra: dict[str, Any] = {"ncnn": {
        "pnnx": getattr(pnnx, "__version__", "unknown"), "weights": "fp16" if fp16 else "fp32",
        "fp16_storage": fp16, "input_blobs": list(graph.inputs), "output_blobs": list(graph.outputs),
        "layers": graph.counts(),
    }, SIDECAR_METADATA: artifact_metadata(job).to_props()}  # fmt: skip
    exporter = f"torch {torch.__version__} torch.jit.trace + pnnx {getattr(pnnx, '__version__', '?')} (fp16={int(fp16)})"
    return BuiltArtifact(dest, exporter, run, not_run_reason=reason, extra=extra, companions=(bin_path,),
                         rewrites=rewrites, coverage=coverage)  # fmt: skip


def ncnn_options(values: dict[str, object] | None) -> dict[str, object]:
    """The ``--option`` values of ``--format ncnn`` with defaults (one-line error for an unknown key)."""
    return merge_format_options("ncnn", values, OPTION_DEFAULTS)


def convert_with_pnnx(executable: str, trace: Path, shape: list[int], param: Path, bin_path: Path, *,
                      fp16: bool) -> None:  # fmt: skip
    """Run the ``pnnx`` converter on the TorchScript file ``trace`` (input ``shape``, float32), writing the ncnn
    pair to ``param``/``bin_path`` and its other outputs beside ``trace``; one-line error on failure."""
    trace, param, bin_path = trace.resolve(), param.resolve(), bin_path.resolve()  # pnnx runs in the scratch dir
    work, stem = trace.parent, trace.stem
    others = dict(zip(PNNX_FILES, (f"{stem}.pnnx.param", f"{stem}.pnnx.bin", f"{stem}_pnnx.py", f"{stem}.pnnx.onnx",
                                   f"{stem}_ncnn.py")))  # fmt: skip
    command = [executable, str(trace), f"inputshape=[{','.join(map(str, shape))}]f32", "device=cpu", "optlevel=2",
               f"ncnnparam={param}", f"ncnnbin={bin_path}", *(f"{k}={work / v}" for k, v in others.items()),
               f"fp16={int(fp16)}"]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PocketganError(f"pnnx could not run: {first_line(exc)}") from None
    if done.returncode != 0 or not param.is_file() or not bin_path.is_file():
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        cause = next((line for line in said if re.search(r"fail|error|unsupported|not supported", line, re.I)),
                     said[-1] if said else "no output")  # fmt: skip
        raise PocketganError(f"pnnx conversion failed (exit {done.returncode}): {cause}")


def ncnn_runner(param: Path, *, fp16: bool) -> tuple[Runner | None, str]:
    """A function running the ncnn pair with fp32 (or fp16 storage) kernels, one sample per extractor;
    ``None`` and why when the ``ncnn`` package is not installed."""
    if importlib.util.find_spec("ncnn") is None:
        return None, "needs ncnn to run: pip install 'pocketgan[ncnn]'"
    import ncnn

    net = ncnn.Net()
    configure_ncnn(net.opt, fp16=fp16)
    if net.load_param(str(param)) != 0 or net.load_model(str(param.with_suffix(".bin"))) != 0:
        raise PocketganError(f"{param}: ncnn cannot load the converted model")
    (blob_in,), (blob_out,) = net.input_names(), net.output_names()

    def run(batch: np.ndarray) -> np.ndarray:
        outputs = []
        for sample in np.asarray(batch, dtype=np.float32):
            with net.create_extractor() as extractor:
                extractor.input(blob_in, ncnn.Mat(np.ascontiguousarray(sample)).clone())
                status, out = extractor.extract(blob_out)
                if status != 0:
                    raise PocketganError(f"{param}: ncnn failed to compute {blob_out} (status {status})")
                outputs.append(np.array(out, dtype=np.float32))
        return np.stack(outputs)

    return run, ""
