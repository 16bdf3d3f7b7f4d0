"""``pocketgan export MODEL --format tensorrt --check-only``: the TensorRT readiness check, on any host.

Prints each node that would fail or fall back (and the precision traps), the one-line verdict and the
``trtexec`` command that builds the engine on the device; writes ``OUT/tensorrt_readiness.json`` and,
for a model, ``OUT/tensorrt.onnx`` (the graph checked: copy it to the device and run the printed command).
Exit code 0 when TensorRT's parser accepts every node, 1 when some node would fail.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pocketgan.console import RichProgress, console
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import write_json_atomic

if TYPE_CHECKING:
    from pocketgan.export.job import ExportOptions

REPORT_NAME = "tensorrt_readiness.json"
ONNX_NAME = "tensorrt.onnx"  # the graph checked, the one the trtexec line builds
SHOWN_TRAPS = 5  # precision traps listed one per node before they are summarized


def check_only(model: str, arch: str | None, names: list[str], out: Path, options: ExportOptions) -> int:
    """Run the check on MODEL (a model reference, or an ``.onnx`` file) and return the exit code."""
    from pocketgan.export.tensorrt import TensorRTSettings, check_readiness
    from pocketgan.export.trt_readiness import check_graph

    if names != ["tensorrt"]:
        raise PocketganError("--check-only applies to --format tensorrt (the TensorRT readiness check)")
    if Path(model).suffix.lower() == ".onnx" and Path(model).is_file():
        report = check_graph(Path(model), precision=options.precision, profiles=True)
        size, channels = onnx_input_geometry(Path(model), options.size)
        settings = TensorRTSettings.from_options(options, size, channels, options.format_options)
        payload = {**report.to_dict(), "onnx": model}
        onnx_name = Path(model).name
    else:
        from pocketgan.models import load_model

        loaded = load_model(model, arch)
        out.mkdir(parents=True, exist_ok=True)
        with RichProgress() as bar:
            result = check_readiness(loaded, options, keep_onnx=out / ONNX_NAME, progress=bar)
        report, settings, payload, onnx_name = result.report, result.settings, result.to_dict(), ONNX_NAME
    settings = replace(settings, fp32_layers=tuple(report.fp32_layers))
    print_report(report)
    console.print(f"build on the device with: {settings.trtexec_line(onnx_name)}", soft_wrap=True, markup=False)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / REPORT_NAME, {**payload, "trtexec": settings.trtexec_line(onnx_name)})
    written = [REPORT_NAME] + ([ONNX_NAME] if onnx_name == ONNX_NAME else [])
    console.print(f"wrote {', '.join(str(out / name) for name in written)}", markup=False)
    return 0 if report.ready else 1


def onnx_input_geometry(path: Path, size: tuple[int, int] | None) -> tuple[tuple[int, int], int]:
    """The ONNX file's input (H, W) (``size`` where given or dynamic; 256×256 when neither) and channels."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    first = next(v for v in graph.input if v.name not in initializers)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in first.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise PocketganError(f"{path}: expected an NCHW image input, got {len(dims)} dimensions")
    static = (dims[2], dims[3]) if dims[2] and dims[3] else None
    if size is not None and static is not None and tuple(size) != static:
        raise PocketganError(f"{path} takes a fixed {static[0]}x{static[1]} input; --size {size[0]}x{size[1]} does not fit")
    return tuple(size or static or (256, 256)), dims[1] or 3  # type: ignore[return-value]


def print_report(report: object) -> None:
    """Failing and falling-back nodes one per line, the first few precision traps, then the verdict."""
    traps = report.of("trap")  # type: ignore[attr-defined]
    for finding in [*report.of("fail"), *report.of("fallback"), *traps[:SHOWN_TRAPS]]:  # type: ignore[attr-defined]
        console.print(finding.line(), soft_wrap=True, markup=False)
    if len(traps) > SHOWN_TRAPS:
        console.print(f"... and {len(traps) - SHOWN_TRAPS} more precision traps (see the JSON report)", markup=False)
    console.print(report.verdict(), markup=False)  # type: ignore[attr-defined]
