"""`pocketgan teacher`: train (or import) a pix2pix or CycleGAN teacher generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pocketgan.commands.distill import (
    Augment,
    Batch,
    CheckpointEvery,
    Device,
    Direction,
    Epochs,
    Lr,
    Options,
    Out,
    Resume,
    Seed,
    ShowProgress,
    Size,
    Steps,
    settings_from,
    training_progress,
)
from pocketgan.console import print_trained


def register(app: typer.Typer) -> None:
    """Add the `teacher` verb to `app`."""

    @app.command()
    def teacher(
        out: Out,
        data: Annotated[
            Optional[Path], typer.Option("--data", help="Dataset folder (not needed with --steps 0).")
        ] = None,
        arch: Annotated[
            str,
            typer.Option("--arch", help="Architecture (e.g. resnet9:ngf=64), a model directory, or a .pth file."),
        ] = "resnet9:ngf=64",
        init_arch: Annotated[
            Optional[str], typer.Option("--init-arch", help="Architecture of a .pth/.safetensors given as --arch.")
        ] = None,
        method: Annotated[
            str, typer.Option("--method", help="pix2pix (paired data), cyclegan (unpaired trainA/ + trainB/) or "
                              "stylegan2 (a folder of images; --arch stylegan2:...).")  # fmt: skip
        ] = "pix2pix",
        steps: Steps = None,
        epochs: Epochs = None,
        batch_size: Batch = 4,
        lr: Lr = None,
        gan_mode: Annotated[str, typer.Option("--gan-mode", help="lsgan or vanilla.")] = "lsgan",
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
        """Train a teacher: pix2pix (PatchGAN + L1×100) or cyclegan; Adam 2e-4 β1 0.5, linear LR decay.

        --arch may name a model directory or an official checkpoint (latest_net_G.pth,
        with --init-arch resnet9:ngf=64): training then starts from those weights, and
        with --steps 0 the checkpoint is only imported into OUT as a model directory.
        pix2pix options: ndf (64), n_layers (3), lambda_l1 (100). cyclegan (unpaired data):
        OUT is G_A (A→B), OUT/G_B is B→A (a latest_net_G_B.pth beside a latest_net_G_A.pth
        is imported too); options lambda_cycle (10), lambda_identity (0.5), pool_size (50),
        ndf (64), n_layers_d (3). stylegan2 (a folder of images, --arch stylegan2:size=32,...): non-saturating
        loss, lazy R1, G_ema saved to OUT and the discriminator to OUT/discriminator; Adam 0.002 β (0, 0.99);
        options r1_gamma (10), r1_every (16), style_mixing (0), ema_kimg (10), pl_weight (0). Re-running resumes.
        """
        from pocketgan.core.errors import PocketganError
        from pocketgan.distill.api import train_teacher

        if gan_mode not in ("lsgan", "vanilla"):
            raise PocketganError(f"--gan-mode {gan_mode}: expected lsgan or vanilla")
        settings = settings_from(locals())
        with training_progress(progress and settings.steps != 0) as bar:
            trained = train_teacher(data, out, arch=arch, init_arch=init_arch, method=method, settings=settings,
                                    progress=bar)  # fmt: skip
        print_trained(trained)
