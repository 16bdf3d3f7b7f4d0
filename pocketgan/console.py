"""The application's terminal output: one rich console for tables, stderr for errors, the progress renderer."""

from __future__ import annotations

from pocketgan.runtime.console import RichProgress, console, err_console, make_console

__all__ = ["RichProgress", "console", "err_console", "format_count", "make_console"]


def format_count(n: float, unit: str = "") -> str:
    """``49681530880`` → ``49.68 G``; keeps three significant decimals for small values."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()
