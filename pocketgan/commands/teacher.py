"""`pocketgan teacher` (placeholder until implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `teacher` verb to `app`."""
