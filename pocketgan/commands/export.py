"""`pocketgan export`: write a deployable artifact (ONNX, CoreML, TensorRT) and its sidecar."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketgan.console import RichProgress, console, format_count
from pocketgan.core.contract import ArtifactManifest
from pocketgan.core.options import parse_size


def register(app: typer.Typer) -> None:
    """Add the `export` verb to `app`."""

    @app.command()
    def export(
        model: str = typer.Argument(
            ..., help="Architecture reference (resnet9:ngf=16), model directory, or checkpoint file with --arch."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
        fmt: str = typer.Option("onnx", "--format", "-f", help="onnx, coreml or tensorrt (pocketgan.export formats)."),
        size: str | None = typer.Option(
            None, "--size", metavar="H|HxW", help="Input size, e.g. 256 or 256x320 (default: the model's fixed size "
            "or 256).",
        ),
        precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (11-20)."),
        dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Make the batch dimension dynamic."),
        max_batch: int = typer.Option(8, "--max-batch", help="Largest dynamic batch (TensorRT, CoreML)."),
        atol: float | None = typer.Option(
            None, "--atol", help="Max abs error allowed vs PyTorch (default: fp32 1e-4, fp16 5e-2, int8 none)."
        ),
        min_psnr: float | None = typer.Option(
            None, "--min-psnr", help="Min PSNR (dB) vs PyTorch (default: fp16 50, int8 25, fp32 none)."
        ),
        samples: int = typer.Option(4, "--samples", help="Inputs used for the parity check."),
        calibration: Path | None = typer.Option(
            None, "--calibration", help="int8: a directory of images to calibrate with (default: synthetic inputs)."
        ),
        calibration_samples: int = typer.Option(16, "--calibration-samples", help="int8: calibration inputs."),
        int8_range: str = typer.Option(
            "reduced", "--int8-range", metavar="reduced|full",
            help="int8 weights: reduced (7-bit, right on every CPU) or full (8-bit, for VNNI, ARM dot-product or "
            "GPU targets; saturates on x86 CPUs without VNNI).",
        ),
        arch: str | None = typer.Option(None, "--arch", help="Architecture of a checkpoint file, e.g. resnet9."),
    ) -> None:
        """Export MODEL for deployment, checked against PyTorch; nothing is written if parity fails."""
        from pocketgan.export import ExportOptions, export_model
        from pocketgan.models import load_model

        options = ExportOptions(
            size=parse_size(size) if size is not None else None, precision=precision, opset=opset,
            dynamic_batch=dynamic_batch, max_batch=max_batch, atol=atol, min_psnr_db=min_psnr, samples=samples,
            calibration=calibration, calibration_samples=calibration_samples, int8_range=int8_range,
        )  # fmt: skip
        loaded = load_model(model, arch)
        with RichProgress() as bar:
            sidecar = export_model(loaded, fmt, out, options, progress=bar)
        _report(out / sidecar.file, sidecar)


def _report(artifact: Path, sidecar: ArtifactManifest) -> None:
    """Two lines: what was written, and how it compares with PyTorch."""
    size = artifact.stat().st_size if artifact.is_file() else sum(p.stat().st_size for p in artifact.rglob("*"))
    shape = " x ".join(str(d) for d in sidecar.inputs[0].shape)
    console.print(
        f"wrote {artifact} ({format_count(size, 'B')}, {sidecar.precision}, input {shape}, "
        f"sha256 {sidecar.sha256[:12]}) and {artifact.name}.json"
    )
    parity = sidecar.parity
    if parity is None:
        console.print(f"parity: {sidecar.extra.get('parity', 'not measured')}")
    else:
        console.print(
            f"parity vs PyTorch on {parity.samples} inputs: max abs {parity.max_abs:.3g}, mean abs "
            f"{parity.mean_abs:.3g}, PSNR {parity.psnr_db:.1f} dB (pass: {sidecar.extra.get('parity_rule')})"
        )
    kernels, host = sidecar.extra.get("parity_kernels"), sidecar.extra.get("parity_host", {})
    if kernels:
        int8_range = sidecar.extra.get("int8", {}).get("int8_range")
        console.print(
            f"PSNR with this host's kernels ({host.get('label')}) {kernels['host_kernels']['psnr_db']:.1f} dB, "
            f"with the reference math {kernels['reference_math']['psnr_db']:.1f} dB"
            + (f"; int8 range {int8_range}" if int8_range else "")
        )
