"""Shared terminal output: one rich console for tables and progress, stderr for errors."""

from __future__ import annotations

from rich.console import Console


def _console(stderr: bool = False) -> Console:
    """Terminals keep their width; logs and pipes get 160 columns so tables don't wrap."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 160)


console = _console()
err_console = _console(stderr=True)


def format_count(n: float, unit: str = "") -> str:
    """``49681530880`` → ``49.68 G``; keeps three significant decimals for small values."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()
