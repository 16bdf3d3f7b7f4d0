"""DiME's teacher statistics: the script the released code lacks.

The released DiME code matches the student's embedding moments against *global* teacher
statistics computed beforehand, but ships no script to compute them. This one samples the teacher
generator ``samples`` times (seeded latents; StyleGAN2's per-layer noise drawn at random, as in
training, unless ``noise_mode`` says otherwise), embeds every image with the encoder and accumulates
a :class:`~pocketgan.distill.stylegan2.mmd.TeacherStats` (mean, second moment, and a reservoir of
embeddings for the kernel MMDs), written atomically as ``.safetensors``::

    python -m pocketgan.distill.stylegan2.teacher_stats TEACHER --encoder NAME --samples N -o stats.safetensors

``TEACHER`` is a model directory (or a checkpoint with ``--arch``); ``NAME`` any ``--feature``
(``domain`` with ``--data DIR``, ``dino-resnet50=PATH``, ``clip-rn50=PATH``, a weights file).
The file records the encoder's name and content key, and the distiller refuses statistics of
another encoder. From Python: :func:`compute_teacher_stats` / :func:`write_teacher_stats`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

import torch
from torch import nn

from pocketgan import __version__
from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressEvent, ProgressTask
from pocketgan.distill.features.base import FeatureNetwork
from pocketgan.distill.stylegan2.mmd import TeacherStats

DEFAULT_SAMPLES = 50_000
DEFAULT_RESERVOIR = 1024


def _accepts(module: nn.Module, parameter: str) -> bool:
    return parameter in inspect.signature(module.forward).parameters


def sample_kwargs(teacher: nn.Module, truncation: float, noise_mode: str | None) -> dict[str, object]:
    """The keyword arguments to call ``teacher(z, ...)`` with (one line if it does not take them).

    ``noise_mode=None``: ``"random"`` for a generator that takes a noise mode (the training
    distribution), nothing for one that does not.
    """
    kwargs: dict[str, object] = {}
    if truncation != 1.0:
        kwargs["truncation"] = truncation
    if noise_mode is None and _accepts(teacher, "noise_mode"):
        noise_mode = "random"
    if noise_mode is not None:
        kwargs["noise_mode"] = noise_mode
    refused = [name for name in kwargs if not _accepts(teacher, name)]
    if refused:
        raise PocketganError(f"{type(teacher).__name__} does not take {' or '.join(refused)}: leave the default")
    return kwargs


def require_latent(teacher: nn.Module) -> IOSpec:
    """The I/O spec of ``teacher``, or one line unless it is a latent-input generator."""
    io = getattr(teacher, "io", None)
    if not isinstance(io, IOSpec) or not io.is_latent:
        raise PocketganError(
            f"teacher statistics need a latent-input (StyleGAN2) generator; {type(teacher).__name__} takes images"
        )
    return io


@torch.no_grad()
def compute_teacher_stats(
    teacher: nn.Module,
    encoder: FeatureNetwork,
    *,
    samples: int = DEFAULT_SAMPLES,
    batch_size: int = 32,
    reservoir: int = DEFAULT_RESERVOIR,
    seed: int = 0,
    truncation: float = 1.0,
    noise_mode: str | None = None,
    device: str | torch.device = "cpu",
    progress: ProgressCallback | None = None,
) -> TeacherStats:
    """Embed ``samples`` teacher images (latents ``N(0, I)`` from ``seed``) with ``encoder`` and accumulate them.

    ``teacher`` is a latent-input generator (``teacher.io.input_kind == "latent"``); the same
    arguments give the same statistics. Nothing is written (see :func:`write_teacher_stats`).
    """
    io = require_latent(teacher)
    if samples < 1 or batch_size < 1:
        raise PocketganError(f"--samples and --batch-size must be positive; got {samples} and {batch_size}")
    kwargs = sample_kwargs(teacher, truncation, noise_mode)
    was_training = teacher.training
    teacher, encoder = teacher.eval().to(device), encoder.to(device)
    metadata = {"encoder": encoder.name, "encoder_key": encoder.key, "samples": str(samples), "seed": str(seed),
                "truncation": str(truncation), "noise_mode": str(kwargs.get("noise_mode", "default")),
                "pocketgan": __version__}  # fmt: skip
    stats = TeacherStats(encoder.num_features, reservoir, seed=seed, metadata=metadata)
    latents = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]), ProgressTask(progress, "teacher statistics", total=samples) as task:
        torch.manual_seed(seed)  # the generator's random noise, reproducibly
        done = 0
        while done < samples:
            count = min(batch_size, samples - done)
            z = torch.randn(count, io.z_dim, generator=latents).to(device)
            stats.update(encoder.embed(teacher(z, **kwargs)).float())
            done += count
            task.advance(count, status=f"{done}/{samples} samples")
    teacher.train(was_training)
    return stats


def write_teacher_stats(
    teacher: str | os.PathLike[str],
    encoder: str,
    out: str | os.PathLike[str],
    *,
    arch: str | None = None,
    data: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    **options,
) -> Path:
    """Load the teacher (model directory, or checkpoint with ``arch``) and the encoder, compute the
    statistics (``options``: those of :func:`compute_teacher_stats`) and write them to ``out`` atomically."""
    from pocketgan.distill.features.resolve import load_feature_network
    from pocketgan.models.io import load_model

    out = Path(out)
    if out.suffix != ".safetensors":
        raise PocketganError(f"{out}: teacher statistics are written as .safetensors; name the file *.safetensors")
    loaded = load_model(teacher, arch=arch)
    require_latent(loaded.model)  # checked before the encoder, which may take a while to load or train
    sample_kwargs(loaded.model, options.get("truncation", 1.0), options.get("noise_mode"))
    network = load_feature_network(encoder, data=data, cache_dir=cache_dir, progress=progress)
    stats = compute_teacher_stats(loaded.model, network, progress=progress, **options)
    stats.metadata["teacher"] = loaded.name
    if loaded.manifest.weights_sha256:
        stats.metadata["teacher_weights_sha256"] = loaded.manifest.weights_sha256
    return stats.save(out)


class LineProgress:
    """A plain progress reporter for the script: one ``stderr`` line per tenth of a task (no bar)."""

    def __init__(self) -> None:
        self._shown: dict[str, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        tenth = int(10 * event.completed / event.total) if event.total else 0
        if event.finished or tenth > self._shown.get(event.task, -1):
            self._shown[event.task] = tenth
            print(f"{event.task}: {event.status or f'{event.completed:g}'}", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pocketgan.distill.stylegan2.teacher_stats",
        description="Accumulate DiME teacher statistics over teacher samples.",
    )
    parser.add_argument("teacher", help="teacher model directory (or checkpoint file with --arch)")
    parser.add_argument(
        "--encoder", required=True, help="feature network: domain | dino-resnet50=PATH | clip-rn50=PATH | weights file"
    )
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help=f"teacher samples ({DEFAULT_SAMPLES})")
    parser.add_argument("-o", "--out", required=True, help="output .safetensors file")
    parser.add_argument("--arch", help="architecture of a checkpoint file (e.g. stylegan2)")
    parser.add_argument("--data", help="dataset directory (for the domain feature network)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reservoir", type=int, default=DEFAULT_RESERVOIR, help="embeddings kept for kernel MMDs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, default=1.0)
    parser.add_argument("--noise-mode", choices=("const", "random"), help="default: random for StyleGAN2")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The script's entry point: user errors are one ``error:`` line and exit code 2, never a traceback."""
    from pocketgan.core.cli import fail

    args = parse_args(argv)
    options = {"samples": args.samples, "batch_size": args.batch_size, "reservoir": args.reservoir, "seed": args.seed,
               "truncation": args.truncation, "noise_mode": args.noise_mode, "device": args.device}  # fmt: skip
    try:
        path = write_teacher_stats(args.teacher, args.encoder, args.out, arch=args.arch, data=args.data,
                                   progress=LineProgress(), **options)  # fmt: skip
    except PocketganError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted (nothing written)", 130)
    except Exception as exc:  # anything unexpected: one line unless debugging, as the pocketgan CLI
        if os.environ.get("POCKETGAN_DEBUG"):
            raise
        return fail(f"{type(exc).__name__}: {exc} (set POCKETGAN_DEBUG=1 for the traceback)", 1)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
