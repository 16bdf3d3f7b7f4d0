"""`pocketgan compare A B`: run two artifacts (or an artifact and the PyTorch model) on the same inputs.

Each side is an artifact (``.onnx``, ``.ort``, ``.xml``, an export directory: run by the runtime backend
the formats table names) or a model directory / architecture reference (run eagerly by the ``torch``
backend). Both get the same inputs (seeded, or ``--input DIR`` of images); the report is the output
error statistics (:func:`pocketgan.export.compare.error_stats`) and, with ``--mark-all`` on two ONNX
files, the first tensor where they diverge. Exit code 1 when B is out of tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from pocketgan.console import console
from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_size

DEFAULT_SIZE = (256, 256)


def register(app: typer.Typer) -> None:
    """Add the `compare` verb to `app`."""

    @app.command()
    def compare(
        reference: str = typer.Argument(..., metavar="A", help="Reference: an artifact, export directory, model "
                                        "directory or architecture reference."),  # fmt: skip
        candidate: str = typer.Argument(..., metavar="B", help="Compared against A (same kinds)."),
        atol: float = typer.Option(1e-5, "--atol", help="Absolute tolerance: |B - A| <= atol + rtol * |A|."),
        rtol: float = typer.Option(1e-5, "--rtol", help="Relative tolerance."),
        mark_all: bool = typer.Option(False, "--mark-all", help="Two ONNX files: expose every intermediate tensor "
                                      "of both and name the first layer where they diverge."),  # fmt: skip
        size: str | None = typer.Option(None, "--size", metavar="H|HxW", help="Input size where a side has a "
                                        "dynamic one (default: the artifact's, else the model's, else 256)."),  # fmt: skip
        input_dir: Path | None = typer.Option(None, "--input", help="A directory of images to compare on "
                                              "(default: seeded random inputs)."),  # fmt: skip
        samples: int = typer.Option(4, "--samples", help="Inputs to compare on."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    ) -> None:
        """Compare B's outputs with A's on the same inputs; exit 1 if they differ beyond the tolerance."""
        if samples < 1:
            raise PocketganError(f"--samples must be at least 1; got {samples}")
        runners = [open_side(reference), open_side(candidate)]
        hw = resolve_size(runners, parse_size(size) if size is not None else None)
        inputs = make_inputs(runners[0], hw, samples, seed, input_dir)
        outputs = [run_all(r, inputs) for r in runners]
        from pocketgan.export.compare import error_stats, first_divergence, output_range

        data_range = output_range(runners[0].io)
        stats = error_stats(outputs[0], outputs[1], atol=atol, rtol=rtol, data_range=data_range)
        for label, runner in zip("AB", runners):
            console.print(f"{label}: {runner.name} ({runner.backend}: {', '.join(runner.providers)})", markup=False)
        what = f"{len(inputs)} {'images from ' + str(input_dir) if input_dir else f'seeded inputs (seed {seed})'}"
        console.print(f"output {runners[0].output_name} on {what}, {_shape(inputs)}:", markup=False)
        console.print(stats.line(), soft_wrap=True, markup=False)
        if mark_all:
            feed = {runners[0].input_name: inputs[:1]}
            result = first_divergence(reference, candidate, feed, atol=atol, rtol=rtol, data_range=data_range)
            console.print(result.line(), soft_wrap=True, markup=False)
        if not stats.passed:
            raise typer.Exit(1)


def open_side(reference: str) -> Any:
    """A runtime :class:`~pocketgan.runtime.runner.Runner` for an artifact, or the torch backend for a model."""
    from pocketgan.runtime import load
    from pocketgan.runtime.registry import artifact_file, pick_backend

    path = Path(reference)
    if path.is_file() or (path.is_dir() and artifact_file(path) != path):
        return load(path, backend=pick_backend(path))
    import pocketgan.torch_backend  # noqa: F401  (registers the torch backend)

    return load(reference, backend="torch")


def resolve_size(runners: list[Any], size: tuple[int, int] | None) -> tuple[int, int]:
    """``--size``, else the first static H×W of a side's input, else a side's fixed size, else 256×256."""
    if size is not None:
        return size
    for runner in runners:
        shape = runner.input_shape
        if not runner.io.is_latent and len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]):
            return int(shape[2]), int(shape[3])
    fixed = next((r.io.fixed_size for r in runners if r.io.fixed_size), None)
    return tuple(fixed) if fixed else DEFAULT_SIZE  # type: ignore[return-value]


def make_inputs(runner: Any, size: tuple[int, int], count: int, seed: int, directory: Path | None) -> np.ndarray:
    """The inputs both sides run on (``count`` of them): images from ``directory``, else seeded ones."""
    from pocketgan.export.compare import image_inputs, seeded_inputs

    shape = runner.concrete_input_shape(1, None if runner.io.is_latent else size)
    if directory is not None:
        if runner.io.is_latent:
            raise PocketganError("--input gives images; a latent-input generator takes z (drop --input)")
        return image_inputs(directory, runner.io, tuple(shape[2:]), count)
    return seeded_inputs(shape[1:], runner.io, count, seed=seed)


def run_all(runner: Any, inputs: np.ndarray) -> np.ndarray:
    """Run ``inputs`` one at a time (artifacts may have a fixed batch of one) and stack the outputs."""
    return np.concatenate([np.asarray(runner.run(inputs[i : i + 1]), dtype=np.float32) for i in range(len(inputs))])


def _shape(inputs: np.ndarray) -> str:
    return "input " + "x".join(str(d) for d in inputs.shape[1:])
