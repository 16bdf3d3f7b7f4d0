"""The options of `pocketgan export`, as ``Annotated`` types (the verb's signature stays one line per option)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pocketgan.console import console
from pocketgan.export.formats import help_text as formats_help


def _list_formats(value: bool) -> None:
    """``--list-formats``: print the formats table and exit."""
    if value:
        from pocketgan.commands.export_summary import formats_listing

        table, notes = formats_listing()
        console.print(table)
        for note in notes:
            console.print(note, soft_wrap=True, markup=False)
        raise typer.Exit()


ModelArg = Annotated[str, typer.Argument(
    help="Architecture reference (resnet9:ngf=16), model directory, or checkpoint file with --arch.",
)]  # fmt: skip
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory (created if missing).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", metavar="F[,F...]|all", help=formats_help())]
SizeOpt = Annotated[str | None, typer.Option(
    "--size", metavar="H|HxW", help="Input size, e.g. 256 or 256x320 (default: the model's fixed size or 256).",
)]  # fmt: skip
PrecisionOpt = Annotated[str | None, typer.Option(
    "--precision", "-p", help="fp32, fp16 or int8 (default fp32; --format coreml alone: fp16).",
)]  # fmt: skip
OpsetOpt = Annotated[int, typer.Option("--opset", help="ONNX opset (11-20).")]
DynamicBatchOpt = Annotated[bool, typer.Option("--dynamic-batch", help="Make the batch dimension dynamic.")]
MaxBatchOpt = Annotated[int, typer.Option("--max-batch", help="Largest dynamic batch (TensorRT, CoreML).")]
AtolOpt = Annotated[float | None, typer.Option(
    "--atol", help="Max abs error allowed vs PyTorch (default: fp32 1e-4, fp16 5e-2, int8 none).",
)]  # fmt: skip
MinPsnrOpt = Annotated[float | None, typer.Option(
    "--min-psnr", help="Min PSNR (dB) vs PyTorch (default: fp16 50, int8 25, fp32 none).",
)]  # fmt: skip
SamplesOpt = Annotated[int, typer.Option("--samples", help="Inputs used for the parity check.")]
CalibrationOpt = Annotated[Path | None, typer.Option(
    "--calibration", help="int8: a directory of images to calibrate with (default: synthetic inputs).",
)]  # fmt: skip
CalibrationSamplesOpt = Annotated[int, typer.Option("--calibration-samples", help="int8: calibration inputs.")]
Int8RangeOpt = Annotated[str, typer.Option(
    "--int8-range", metavar="reduced|full", help="int8 weights: reduced (7-bit, right on every CPU) or full (8-bit, "
    "for VNNI, ARM dot-product or GPU targets; saturates on x86 CPUs without VNNI).",
)]  # fmt: skip
ArchOpt = Annotated[str | None, typer.Option("--arch", help="Architecture of a checkpoint file, e.g. resnet9.")]
LatencyOpt = Annotated[bool, typer.Option(
    "--latency/--no-latency", help="With several formats: time each artifact that runs here (a short interleaved "
    "benchmark; pocketgan-bench measures properly).",
)]  # fmt: skip
ListFormatsOpt = Annotated[bool, typer.Option(
    "--list-formats", is_eager=True, callback=_list_formats, help="List the formats: artifacts, precisions, "
    "options, what building and running each needs, its runtime backend, and what this host can do.",
)]  # fmt: skip
TruncationOpt = Annotated[float | None, typer.Option(
    "--truncation", metavar="PSI", help="Latent generators (StyleGAN2): truncation ψ baked into the graph "
    "(default: the model's, 1 = none).",
)]  # fmt: skip
TruncationInputOpt = Annotated[bool, typer.Option(
    "--truncation-input", help="Latent generators: make ψ an input ('truncation' [1], default --truncation) "
    "instead of a constant.",
)]  # fmt: skip
NoiseInputOpt = Annotated[bool, typer.Option(
    "--noise-input", help="Latent generators: make the noise maps inputs (noise_0, ...) instead of the stored "
    "constant noise.",
)]  # fmt: skip
DelegateOpt = Annotated[str, typer.Option(
    "--delegate", metavar="xnnpack|coreml|qnn|mediatek", help="--format executorch: the backend the program is "
    "lowered to (xnnpack: phone CPUs, checked here; coreml, qnn, mediatek where their packages are installed, "
    "not checkable here).",
)]  # fmt: skip
FormatOptionOpt = Annotated[list[str], typer.Option(
    "--option", metavar="KEY=VALUE", help="Builder option of the format (repeatable), e.g. tensorrt "
    "workspace_mb=2048, min_size=128, max_size=512, opt_batch=4; coreml minimum_target=iOS17, input_type=image, "
    "rewrites=none; executorch, tflite, ncnn rewrites=default|all|none|NAMES (e.g. instance-norm-decomposed,"
    "reflection-pad-kept); tflite layout=nchw|nhwc.",
)]  # fmt: skip
CheckOnlyOpt = Annotated[bool, typer.Option(
    "--check-only", help="--format tensorrt: check the ONNX graph against TensorRT 10.x here (ops, attributes, "
    "dtypes, precision traps) and print the trtexec command; builds nothing. MODEL may be an .onnx file.",
)]  # fmt: skip
QualityDataOpt = Annotated[Path | None, typer.Option(
    "--data", metavar="DIR", help="--precision int8 or fp16: also measure FID and KID of the PyTorch fp32 model "
    "and of the artifact on DIR's val split and report the change (ΔFID, ΔKID; sidecar extra.quality). "
    "Image-to-image models only.",
)]  # fmt: skip
QualityFeatureOpt = Annotated[str | None, typer.Option(
    "--feature", metavar="NAME|PATH", help="With --data: the feature network for FID/KID (default: DIR's domain "
    "network, trained once and cached; inception, pocketgan-<dataset>[-<key>] or a weights file).",
)]  # fmt: skip
