"""`pocketgan distill`: train a small student from a teacher (OMGD, GAN Compression, plain KD).

Also defines the training options shared with `pocketgan teacher` (one definition,
one :class:`~pocketgan.distill.trainer.RunSettings`, one implementation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

# ----------------------------------------------------------------- options shared with `pocketgan teacher`
Out = Annotated[Path, typer.Option("--out", help="Model directory to write; training state goes to OUT/train.")]
Size = Annotated[Optional[int], typer.Option("--size", help="Resize images to SIZE×SIZE (default: as stored).")]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Optimisation steps (default 1000).")]
Epochs = Annotated[Optional[float], typer.Option("--epochs", help="Passes over the data, instead of --steps.")]
Batch = Annotated[int, typer.Option("--batch", help="Global batch size (split across torchrun processes).")]
Lr = Annotated[float, typer.Option("--lr", help="Adam learning rate; decays linearly to 0 over the 2nd half.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for weights, batches and augmentation.")]
Resume = Annotated[
    bool, typer.Option("--resume/--no-resume", help="Continue from OUT/train/checkpoint.pt, or start over.")
]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N.")]
Direction = Annotated[str, typer.Option("--direction", help="AtoB or BtoA.")]
Augment = Annotated[bool, typer.Option("--augment/--no-augment", help="pix2pix resize + random crop + flip.")]
Options = Annotated[
    Optional[list[str]], typer.Option("--option", "-o", help="Method option key=value (repeatable).")
]
ShowProgress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")]


def settings_from(values: dict[str, Any]):
    """A :class:`RunSettings` from a command's parameters (same names as its fields)."""
    from dataclasses import fields

    from pocketgan.distill.trainer import RunSettings, parse_options

    names = {f.name for f in fields(RunSettings)}
    chosen = {k: v for k, v in values.items() if k in names}
    chosen["options"] = parse_options(values.get("options"))
    return RunSettings(**chosen).validate()


def report(model_dir: Path) -> None:
    """One summary line about a trained model directory (rank 0 only under torchrun)."""
    from pocketgan.console import console
    from pocketgan.distill.distributed import is_main_process
    from pocketgan.core.contract import ModelManifest

    if not is_main_process():
        return
    prov = ModelManifest.load(model_dir).provenance
    losses = ", ".join(f"{k} {v:.4g}" for k, v in (prov.get("final_losses") or {}).items())
    took = f" in {prov['wall_time_s']:.0f} s" if prov.get("wall_time_s") is not None else ""
    tail = f": {losses}" if losses else ""
    console.print(f"saved {model_dir} ({prov.get('method')}, {prov.get('steps')} steps{took}){tail}")


def register(app: typer.Typer) -> None:
    """Add the `distill` verb to `app`."""

    @app.command()
    def distill(
        method: Annotated[str, typer.Option("--method", help="omgd, gan-compression or kd.")],
        data: Annotated[Path, typer.Option("--data", help="Dataset folder (pix2pix aligned or CycleGAN unaligned).")],
        out: Out,
        teacher: Annotated[Optional[Path], typer.Option("--teacher", help="Teacher model directory.")] = None,
        student: Annotated[
            str, typer.Option("--student", help="Architecture (from scratch) or a model directory (e.g. pruned).")
        ] = "mobile-resnet:ngf=16",
        perceptual: Annotated[
            Optional[str], typer.Option("--perceptual", help="Feature network name or weights file (OMGD).")
        ] = None,
        steps: Steps = None,
        epochs: Epochs = None,
        batch_size: Batch = 4,
        lr: Lr = 2e-4,
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
        or from a model directory (a pruned teacher). Re-running the same command
        resumes after a crash or Ctrl-C. Under `torchrun --nproc_per_node N -m pocketgan
        distill ...` it trains data-parallel with the same options.
        """
        from pocketgan.distill.trainer import distill_student

        settings = settings_from(locals())
        report(distill_student(method, teacher, student, data, out, perceptual=perceptual, settings=settings))
