"""`pocketgan eval`: every registered metric (PSNR, SSIM, FID, KID, an LPIPS-style distance, plugins) of a
generator on a dataset split. The table's rows, labels, arrows and formats come from the metric registry
(:data:`pocketgan.distill.metrics.METRICS`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pocketgan.commands.distill import Device, Direction, ShowProgress, Size, parse_size  # shared by the verbs

if TYPE_CHECKING:
    from rich.table import Table

    from pocketgan.core.progress import ProgressCallback
    from pocketgan.distill.metrics import EvalReport


def format_metric(key: str, value: float | None) -> str:
    """A table cell in the registered metric's format: ``–`` when not computed, ``∞`` for identical images' PSNR."""
    from pocketgan.distill.metrics import get_metric

    return get_metric(key).render(value)


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
        "pocketgan-<dataset> (the same, by content key), pocketgan-<dataset>-<key> (that cached network), "
        "inception, or a weights file (.pth InceptionV3, .safetensors domain network).",
    ),
]
Split = Annotated[str, typer.Option("--split", help="Dataset split to evaluate on.")]
Batch = Annotated[int, typer.Option("--batch", help="Images per forward pass.")]
OutPath = Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the results as JSON to this file.")]
JsonAlias = Annotated[Optional[Path], typer.Option("--json", hidden=True, help="Old spelling of --out.")]
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
        out: OutPath = None,
        json_path: JsonAlias = None,
        arch: Arch = None,
        teacher_arch: TeacherArch = None,
        direction: Direction = "AtoB",
        device: Device = "auto",
        progress: ShowProgress = True,
    ) -> None:
        """Evaluate MODEL on a dataset split: quality vs the ground truth and vs a teacher, each metric
        labelled with the feature network it used."""
        from pocketgan.console import RichProgress, console
        from pocketgan.core.errors import PocketganError
        from pocketgan.core.fsio import write_json_atomic

        target = out or json_path
        if target is not None and target.is_dir():
            raise PocketganError(f"--out {target}: is a directory; give a file path")
        with RichProgress(enabled=progress) as bar:
            report = run_eval(
                model, data, teacher=teacher, feature=feature, split=split, size=parse_size(size), batch=batch,
                arch=arch, teacher_arch=teacher_arch, direction=direction, device=device, progress=bar,
            )  # fmt: skip
        console.print(results_table(report, f"{data}/{split}"))
        for note in report.notes:
            console.print(f"note: {note}")
        if target is not None:
            write_json_atomic(target, report.to_dict())
            console.print(f"wrote {target}")


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
    progress: ProgressCallback | None = None,
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
    layout = "images" if student.model.io.is_latent else None  # a latent model is compared with single images
    dataset = open_dataset(data, split=split, size=size, direction=direction, layout=layout)
    height, width = dataset[0]["B"].shape[-2:]  # the images the model must make (a latent model: of its size)
    for loaded in filter(None, (student, guide)):
        loaded.model.check_input_size(int(height), int(width))
    network = load_feature_network(feature, data=data, progress=progress)
    return evaluate(
        student.model, dataset, feature=network, teacher=guide.model if guide else None, batch_size=batch,
        device=resolve_device(device), progress=progress, model_name=student.name,
        teacher_name=guide.name if guide else None,
    )  # fmt: skip


def results_table(report: EvalReport, where: str) -> Table:
    """A rich table: metric (with its network and direction), vs ground truth, vs teacher."""
    from rich.table import Table

    from pocketgan.distill.metrics import get_metric

    size = "×".join(str(s) for s in report.image_size)
    key = f" (key {report.feature_key})" if report.feature_key else ""
    table = Table(
        title=f"{report.model} on {where}: n={report.n} images at {size} px, "
        f"{report.seconds:.1f} s; feature network {report.feature_network}{key}",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("vs ground truth", justify="right")
    table.add_column(f"vs teacher ({report.teacher})" if report.teacher else "vs teacher", justify="right")
    for name, result in report.metrics.items():
        metric = get_metric(name)
        table.add_row(f"{result.label} {metric.direction}", metric.render(result.vs_ground_truth),
                      metric.render(result.vs_teacher))  # fmt: skip
    return table
