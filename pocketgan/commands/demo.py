"""`pocketgan demo` (being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` verb to `app` (placeholder until the verb lands)."""
