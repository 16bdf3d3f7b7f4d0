"""`pocketgan profile` (placeholder until implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `profile` verb to `app`."""

    @app.command()
    def profile(model: str) -> None:
        """Placeholder."""
        from pocketgan.models import load_model

        load_model(model)
