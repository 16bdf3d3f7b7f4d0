"""`pocketgan distill` (placeholder until implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `distill` verb to `app`."""
