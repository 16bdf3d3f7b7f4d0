"""Running a command-line app so that user errors become one ``error:`` line (standard library only).

Both CLIs (``pocketgan`` and the torch-free ``pocketgan-bench``) run through :func:`run_app`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from pocketgan.core.errors import PocketganError


def fail(message: str, code: int = 2) -> int:
    """Print ``error: message`` on one line to stderr and return ``code``."""
    print(f"error: {' '.join(str(message).split()) or 'failed'}", file=sys.stderr)
    return code


def run_app(app: Callable[..., Any], argv: list[str] | None, prog_name: str) -> int:
    """Run a typer/click app; user errors become one ``error:`` line and an exit code, never a traceback.

    Usage errors print the app's usage and exit 2; ``POCKETGAN_DEBUG=1`` re-raises unexpected errors.
    """

    def show_warning(message: Any, *_args: Any, **_kwargs: Any) -> None:
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
