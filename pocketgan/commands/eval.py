"""`pocketgan eval`: PSNR, SSIM, FID, KID and an LPIPS-style distance of a generator on a dataset split."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pocketgan.commands.distill import Device, Direction, ShowProgress, Size  # the options shared by the verbs

if TYPE_CHECKING:
    from rich.table import Table

    from pocketgan.distill.metrics import EvalReport

FORMATS = {"psnr": "{:.2f}", "ssim": "{:.4f}", "fid": "{:.3f}", "kid": "{:.5f}", "lpips_style": "{:.4f}"}


def format_metric(key: str, value: float | None) -> str:
    """A table cell: ``–`` when not computed, ``∞`` for identical images' PSNR."""
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return FORMATS.get(key, "{:.4g}").format(value)


Model = Annotated[
    str, typer.Argument(help="Model directory, checkpoint (.pth/.safetensors, with --arch) or architecture reference.")
]
Data = Annotated[Path, typer.Option("--data", help="Dataset directory (pix2pix aligned or CycleGAN layout).")]
Teacher = Annotated[
    Optional[str], typer.Option("--teacher", help="Teacher model (directory or reference): adds 'vs teacher'.")
]
Feature = Annotated[
    Optional[str],
    typer.Option(
        "--feature",
        help="Feature network for FID/KID/LPIPS-style: domain (default: trained on --data, cached), "
        "pocketgan-<dataset>, inception, or a weights file (.pth InceptionV3, .safetensors domain network).",
    ),
]
Split = Annotated[str, typer.Option("--split", help="Dataset split to evaluate on.")]
Batch = Annotated[int, typer.Option("--batch", help="Images per forward pass.")]
JsonPath = Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")]
Arch = Annotated[Optional[str], typer.Option("--arch", help="Architecture of a MODEL checkpoint file.")]
TeacherArch = Annotated[Optional[str], typer.Option("--teacher-arch", help="Architecture of a --teacher checkpoint.")]


def register(app: typer.Typer) -> None:
    """Add the `eval` verb to `app`."""

    @app.command("eval")
    def eval_command(
        model: Model,
        data: Data,
        teacher: Teacher = None,
        feature: Feature = None,
        split: Split = "val",
        size: Size = None,
        batch: Batch = 8,
        json_path: JsonPath = None,
        arch: Arch = None,
        teacher_arch: TeacherArch = None,
        direction: Direction = "AtoB",
        device: Device = "auto",
        progress: ShowProgress = True,
    ) -> None:
        """Evaluate MODEL on a dataset split: quality vs the ground truth and vs a teacher, each metric
        labelled with the feature network it used."""
        from pocketgan.console import console
        from pocketgan.core.fsio import write_json_atomic

        report = run_eval(
            model, data, teacher=teacher, feature=feature, split=split, size=size, batch=batch, arch=arch,
            teacher_arch=teacher_arch, direction=direction, device=device, progress=progress,
        )  # fmt: skip
        console.print(results_table(report, f"{data}/{split}"))
        for note in report.notes:
            console.print(f"note: {note}")
        if json_path is not None:
            write_json_atomic(json_path, report.to_dict())
            console.print(f"wrote {json_path}")


def run_eval(
    model: str,
    data: Path,
    *,
    teacher: str | None = None,
    feature: str | None = None,
    split: str = "val",
    size: int | None = None,
    batch: int = 8,
    arch: str | None = None,
    teacher_arch: str | None = None,
    direction: str = "AtoB",
    device: str = "auto",
    progress: bool = True,
) -> EvalReport:
    """Load everything the command names and return the :class:`~pocketgan.distill.metrics.EvalReport`."""
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.distributed import resolve_device
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.metrics import evaluate
    from pocketgan.core.errors import PocketganError
    from pocketgan.models import load_model

    if not Path(data).is_dir():
        raise PocketganError(f"--data {data}: no such dataset directory")
    if batch < 1:
        raise PocketganError(f"--batch must be at least 1; got {batch}")
    student = load_model(model, arch)
    guide = load_model(teacher, teacher_arch) if teacher else None
    dataset = open_dataset(data, split=split, size=size, direction=direction)
    height, width = dataset[0]["A"].shape[-2:]
    for loaded in filter(None, (student, guide)):
        loaded.model.check_input_size(int(height), int(width))
    network = load_feature_network(feature, data=data, progress=progress)
    return evaluate(
        student.model, dataset, feature=network, teacher=guide.model if guide else None, batch_size=batch,
        device=resolve_device(device), progress=progress, model_name=student.name,
        teacher_name=guide.name if guide else None,
    )  # fmt: skip


def results_table(report: EvalReport, where: str) -> Table:
    """A rich table: metric (with its network), vs ground truth, vs teacher."""
    from rich.table import Table

    size = "×".join(str(s) for s in report.image_size)
    table = Table(
        title=f"{report.model} on {where}: n={report.n} images at {size} px, "
        f"{report.seconds:.1f} s; feature network {report.feature_network}",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("vs ground truth", justify="right")
    table.add_column(f"vs teacher ({report.teacher})" if report.teacher else "vs teacher", justify="right")
    for key, metric in report.metrics.items():
        arrow = "↑" if metric.higher_is_better else "↓"
        table.add_row(
            f"{metric.label} {arrow}", format_metric(key, metric.vs_ground_truth), format_metric(key, metric.vs_teacher)
        )
    return table
