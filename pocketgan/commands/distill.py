"""`pocketgan distill`: train a small student from a teacher (OMGD, GAN Compression, plain KD).

Also defines the training options shared with `pocketgan teacher` (one definition,
one :class:`~pocketgan.distill.api.RunSettings`, one implementation) and the training progress
bar: the loop reports through a progress callback, this side draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pocketgan.console import print_trained

# ----------------------------------------------------------------- options shared with `pocketgan teacher`
Out = Annotated[
    Path, typer.Option("--out", "-o", help="Model directory to write; training state goes to OUT/train.")
]
Size = Annotated[
    Optional[str], typer.Option("--size", help="Resize images to H×H: H or HxH (default: as stored).")
]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Optimisation steps (default 1000).")]
Epochs = Annotated[Optional[float], typer.Option("--epochs", help="Passes over the data, instead of --steps.")]
Batch = Annotated[int, typer.Option("--batch", help="Global batch size (split across torchrun processes).")]
Lr = Annotated[
    Optional[float],
    typer.Option("--lr", help="Adam learning rate (default: the method's, 2e-4; StyleGAN2 methods 0.002, constant); "
                 "pix2pix-family methods decay it linearly to 0 over the 2nd half."),  # fmt: skip
]
Seed = Annotated[int, typer.Option("--seed", help="Seed for weights, batches and augmentation.")]
Resume = Annotated[
    bool, typer.Option("--resume/--no-resume", help="Continue from OUT/train/checkpoint.pt, or start over.")
]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")]
Direction = Annotated[str, typer.Option("--direction", help="AtoB or BtoA.")]
Augment = Annotated[bool, typer.Option("--augment/--no-augment", help="pix2pix resize + random crop + flip.")]
Options = Annotated[
    Optional[list[str]], typer.Option("--option", help="Method option KEY=VALUE (repeatable; a,b,c for a list).")
]
ShowProgress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")]


def parse_size(text: str | None) -> int | None:
    """``--size``: ``"64"`` or ``"64x64"`` → 64; ``None`` keeps the images' own size."""
    from pocketgan.core.options import parse_square_size

    return None if text is None else parse_square_size(text)


def settings_from(values: dict[str, Any]):
    """A :class:`RunSettings` from a command's parameters (same names as its fields)."""
    from dataclasses import fields

    from pocketgan.distill.api import RunSettings, parse_options

    names = {f.name for f in fields(RunSettings)}
    chosen = {k: v for k, v in values.items() if k in names}
    chosen["options"] = parse_options(values.get("options"))
    chosen["size"] = parse_size(values.get("size"))
    return RunSettings(**chosen).validate()


@contextmanager
def training_progress(enabled: bool) -> Iterator[Callable[..., Any] | None]:
    """The bar the training loop reports to (rank 0 only; it stays on screen when done, as a summary line).

    A run stopped with Ctrl-C prints how to resume before the one-line ``error: interrupted``.
    """
    from pocketgan.console import RichProgress, err_console
    from pocketgan.distill.distributed import is_main_process
    from pocketgan.distill.loop import TrainingInterrupted

    shown = enabled and is_main_process()
    try:
        with RichProgress(transient=False, enabled=shown) as bar:
            yield bar if shown else None
    except TrainingInterrupted as stopped:
        if is_main_process():
            err_console.print(str(stopped))
        raise


def register(app: typer.Typer) -> None:
    """Add the `distill` verb to `app`."""

    @app.command()
    def distill(
        method: Annotated[str, typer.Option("--method", help="omgd, gan-compression or kd; on a StyleGAN2 teacher "
                                            "kd, itgc, dime, nickel or nickel-dime.")],  # fmt: skip
        data: Annotated[Path, typer.Option("--data", help="Dataset folder (pix2pix aligned or CycleGAN unaligned).")],
        out: Out,
        teacher: Annotated[Optional[Path], typer.Option("--teacher", help="Teacher model directory.")] = None,
        student: Annotated[
            str, typer.Option("--student", help="Architecture (from scratch) or a model directory (e.g. pruned).")
        ] = "mobile-resnet:ngf=16",
        perceptual: Annotated[
            Optional[str],
            typer.Option("--perceptual", help="Feature network (OMGD): domain (default), pocketgan-<dataset>[-<key>], "
                         "inception, or a weights file."),  # fmt: skip
        ] = None,
        steps: Steps = None,
        epochs: Epochs = None,
        batch_size: Batch = 4,
        lr: Lr = None,
        size: Size = None,
        seed: Seed = 0,
        resume: Resume = True,
        checkpoint_every: CheckpointEvery = 250,
        device: Device = "auto",
        direction: Direction = "AtoB",
        augment: Augment = True,
        options: Options = None,
        progress: ShowProgress = True,
    ) -> None:
        """Distill TEACHER into a small STUDENT with --method (omgd | gan-compression | kd).

        The student starts from scratch (an architecture such as mobile-resnet:ngf=16)
        or from a model directory (a pruned teacher). On unpaired data (trainA/, trainB/)
        omgd trains its one teacher online as a CycleGAN (G_B from TEACHER/G_B) with λ_CD 5e2,
        and gan-compression reconstructs the teacher's output (λ_recon 10, λ_distill 0.01, LSGAN). A StyleGAN2
        TEACHER (a model directory or a .pt/.pkl checkpoint) takes kd, itgc, dime, nickel or nickel-dime on a folder
        of images; the student is the teacher pruned uniformly (--option ratio=0.9) or --student DIR. Re-running the same command
        resumes after a crash or Ctrl-C. Under `torchrun --nproc_per_node N -m pocketgan
        distill ...` it trains data-parallel with the same options.
        """
        from pocketgan.distill.api import distill_student

        settings = settings_from(locals())
        with training_progress(progress) as bar:
            trained = distill_student(method, teacher, student, data, out, perceptual=perceptual, settings=settings,
                                      progress=bar)  # fmt: skip
        print_trained(trained)
