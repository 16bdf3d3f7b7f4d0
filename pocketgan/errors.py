"""Errors that the CLI turns into one clear line and a non-zero exit (standard library only)."""

from __future__ import annotations


class PocketganError(Exception):
    """A user-facing failure: bad input, a missing file, an unmet target. Printed as one line."""

    exit_code = 2


class ManifestError(PocketganError):
    """A model directory or artifact sidecar is missing, malformed or too new."""


class MissingDependencyError(PocketganError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: install pocketgan[{extra}] (pip install 'pocketgan[{extra}]')")


class ParityError(PocketganError):
    """An exported artifact disagrees with PyTorch beyond the tolerance."""


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from None


def fail(message: str, code: int = 2) -> int:
    """Print ``error: message`` on one line to stderr and return ``code``."""
    import sys

    print(f"error: {' '.join(str(message).split()) or 'failed'}", file=sys.stderr)
    return code


def run_app(app, argv: list[str] | None, prog_name: str) -> int:
    """Run a typer app; user errors become one ``error:`` line and an exit code, never a traceback.

    Usage errors print typer's usage and exit 2; ``POCKETGAN_DEBUG=1`` re-raises unexpected errors.
    """
    import os
    import sys
    import warnings

    def show_warning(message, *_args, **_kwargs) -> None:
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            app(args=argv, prog_name=prog_name)  # standalone mode: usage errors raise SystemExit(2)
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
