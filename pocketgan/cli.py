"""The ``pocketgan`` command line: one verb per pipeline stage.

Each verb lives in ``pocketgan/commands/<verb>.py`` and registers itself on the app;
heavy libraries (torch, onnx, ...) are imported inside the verbs, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from pocketgan.console import fail
from pocketgan.errors import PocketganError

VERBS = ["profile", "prune", "export", "bench", "data", "teacher", "distill", "eval", "run"]

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
    """Entry point: run a verb; turn user errors into one line on stderr and a non-zero exit code."""
    try:
        app(args=argv, prog_name="pocketgan")  # standalone: usage errors print usage and exit 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else fail(str(exc.code), 1))
    except PocketganError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # anything unexpected: one line unless debugging
        if os.environ.get("POCKETGAN_DEBUG"):
            raise
        return fail(f"{type(exc).__name__}: {exc} (set POCKETGAN_DEBUG=1 for the traceback)", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
