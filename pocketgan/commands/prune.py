"""`pocketgan prune` (placeholder until implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `prune` verb to `app`."""
