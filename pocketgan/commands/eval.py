"""`pocketgan eval` (placeholder until implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `eval` verb to `app`."""
