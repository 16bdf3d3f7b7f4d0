"""`pocketgan export`: write deployable artifacts (the formats table: ONNX, ORT, OpenVINO, CoreML, TensorRT)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pocketgan.commands import export_options as o
from pocketgan.console import RichProgress, console, format_count
from pocketgan.core.contract import ArtifactManifest
from pocketgan.core.coverage import coverage_of
from pocketgan.core.options import parse_key_values, parse_size

if TYPE_CHECKING:
    from pocketgan.export import ExportOptions
    from pocketgan.models import LoadedModel


def _default_precision(fmt: str) -> str:
    """fp16 for a CoreML-only export (what an iPhone package ships: the Neural Engine computes in fp16), else fp32."""
    return "fp16" if fmt.strip() == "coreml" else "fp32"


def register(app: typer.Typer) -> None:
    """Add the `export` verb to `app`."""

    @app.command()
    def export(
        model: o.ModelArg,
        out: o.OutOpt,
        fmt: o.FormatOpt = "onnx",
        size: o.SizeOpt = None,
        precision: o.PrecisionOpt = None,
        opset: o.OpsetOpt = 17,
        dynamic_batch: o.DynamicBatchOpt = False,
        max_batch: o.MaxBatchOpt = 8,
        atol: o.AtolOpt = None,
        min_psnr: o.MinPsnrOpt = None,
        samples: o.SamplesOpt = 4,
        calibration: o.CalibrationOpt = None,
        calibration_samples: o.CalibrationSamplesOpt = 16,
        int8_range: o.Int8RangeOpt = "reduced",
        arch: o.ArchOpt = None,
        latency: o.LatencyOpt = True,
        list_formats: o.ListFormatsOpt = False,
        truncation: o.TruncationOpt = None,
        truncation_input: o.TruncationInputOpt = False,
        noise_input: o.NoiseInputOpt = False,
        option: o.FormatOptionOpt = [],  # noqa: B006  (typer reads the default; never mutated)
        delegate: o.DelegateOpt = "xnnpack",
        check_only: o.CheckOnlyOpt = False,
        data: o.QualityDataOpt = None,
        feature: o.QualityFeatureOpt = None,
    ) -> None:
        """Export MODEL for deployment, checked against PyTorch; nothing is written if parity fails."""
        from pocketgan.export import ExportOptions

        options = ExportOptions(
            size=parse_size(size) if size is not None else None, precision=precision or _default_precision(fmt),
            opset=opset,
            dynamic_batch=dynamic_batch, max_batch=max_batch, atol=atol, min_psnr_db=min_psnr, samples=samples,
            calibration=calibration, calibration_samples=calibration_samples, int8_range=int8_range,
            truncation=truncation, truncation_input=truncation_input, noise_input=noise_input,
            format_options=parse_key_values(option), delegate=delegate,
        )  # fmt: skip
        quality = QualityRequest(data, feature) if data is not None else None
        _run_export(model, arch, fmt, out, options, latency=latency, check_only=check_only, quality=quality)


@dataclass(frozen=True)
class QualityRequest:
    """``--data DIR [--feature NAME|PATH]``: measure the export's FID/KID change (pocketgan.quantization_quality)."""

    data: Path
    feature: str | None = None


def _run_export(
    model: str, arch: str | None, fmt: str, out: Path, options: ExportOptions, *, latency: bool, check_only: bool,
    quality: QualityRequest | None = None,
) -> None:
    """Checks (``--check-only``), or exports to one format (two report lines) or several (one summary table)."""
    from pocketgan.commands.export_summary import export_formats
    from pocketgan.export import export_model
    from pocketgan.export.formats import parse_formats
    from pocketgan.models import load_model

    names = parse_formats(fmt)
    if check_only:  # pocketgan.commands.trt_check
        from pocketgan.commands.trt_check import check_only as run_check

        raise typer.Exit(run_check(model, arch, names, out, options))
    loaded = load_model(model, arch)
    if quality is not None:  # refused in one line before anything is exported
        from pocketgan.quantization_quality import check_quality_request

        check_quality_request(loaded, quality.data, options.precision)
    every = fmt.strip() == "all"
    if len(names) > 1 or every:  # one summary table (pocketgan.commands.export_summary)
        measure = partial(_quality, loaded, quality=quality, precision=options.precision) if quality else None
        export_formats(loaded, names, out, options, latency=latency, every=every, quality=measure)
        return
    with RichProgress() as bar:
        sidecar = export_model(loaded, names[0], out, options, progress=bar)
    _report(out / sidecar.file, sidecar)
    if quality is not None:
        _quality(loaded, out / sidecar.file, quality=quality, precision=options.precision)


def _quality(loaded: LoadedModel, artifact: Path, *, quality: QualityRequest, precision: str) -> dict[str, float]:
    """Measure, record in the sidecar and print the FID/KID change of ``artifact`` (``--data``); return the change."""
    from pocketgan.quantization_quality import measure_quality_change, record_quality_change

    with RichProgress() as bar:
        change = measure_quality_change(loaded, artifact, quality.data, feature=quality.feature, progress=bar)
    record_quality_change(artifact, change)
    console.print(f"{artifact.name}: {change.line(precision)}", soft_wrap=True, markup=False)
    return change.delta


def _latent_line(sidecar: ArtifactManifest) -> str:
    """``latent z [batch, 32]; truncation 0.7 baked in; constant noise baked in``."""
    names = [t.name for t in sidecar.inputs]
    psi = sidecar.io.truncation
    truncation = f"truncation input (default {psi:g})" if "truncation" in names else f"truncation {psi:g} baked in"
    noise = [n for n in names if n.startswith("noise_")]
    noises = f"noise inputs {noise[0]}..{noise[-1]}" if noise else "constant noise baked in"
    shape = " x ".join(str(d) for d in sidecar.inputs[0].shape)
    return f"latent {names[0]} {shape}; {truncation}; {noises}"


def _report(artifact: Path, sidecar: ArtifactManifest) -> None:
    """Two lines: what was written, and how it compares with PyTorch."""
    size = artifact.stat().st_size if artifact.is_file() else sum(p.stat().st_size for p in artifact.rglob("*"))
    shape = " x ".join(str(d) for d in sidecar.inputs[0].shape)
    console.print(
        f"wrote {artifact} ({format_count(size, 'B')}, {sidecar.precision}, input {shape}, "
        f"sha256 {sidecar.sha256[:12]}) and {artifact.name}.json"
    )
    if sidecar.io.is_latent:
        console.print(_latent_line(sidecar))
    coverage = coverage_of(sidecar.extra)
    if coverage is not None:  # phone formats: as the runtime's own inspector reports it
        console.print(f"delegation: {coverage.describe()}", markup=False)
    if "trtexec" in sidecar.extra.get("tensorrt", {}):  # the same build on the device (pocketgan.export.tensorrt)
        console.print(f"build it on the device with: {sidecar.extra['tensorrt']['trtexec']}", soft_wrap=True,
                      markup=False)  # fmt: skip
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
