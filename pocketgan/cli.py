"""The ``pocketgan`` command line: one verb per pipeline stage.

Each verb lives in ``pocketgan/commands/<verb>.py`` and registers itself on the app;
heavy libraries (torch, onnx, ...) are imported inside the verbs, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from pocketgan.core.cli import run_app

VERBS = ["data", "teacher", "distill", "prune", "profile", "export", "compare", "bench", "eval", "run", "demo", "web"]

app = typer.Typer(
    name="pocketgan",
    help="Make GAN generators small and fast for edge devices: distill, prune, profile, export, bench.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Make GAN generators small and fast for edge devices: distill, prune, profile, export, bench."""


for _verb in VERBS:
    importlib.import_module(f"pocketgan.commands.{_verb}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a verb; user errors become one ``error:`` line on stderr and a non-zero exit code."""
    return run_app(app, argv, "pocketgan")


if __name__ == "__main__":
    sys.exit(main())
