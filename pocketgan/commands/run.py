"""`pocketgan run`: the whole pipeline from a YAML recipe (the built-in default without one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the `run` verb to `app`."""

    @app.command()
    def run(
        args: Annotated[
            Optional[list[str]],
            typer.Argument(
                metavar="[RECIPE.yaml] [KEY=VALUE]...",
                help="A recipe file (default: the built-in edges2photos recipe) and overrides such as "
                "teacher.steps=200 or students.0.method=kd.",
                show_default=False,
            ),
        ] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/default"),
        print_recipe: Annotated[
            bool, typer.Option("--print-recipe", help="Print the built-in recipe (a starting point) and exit.")
        ] = False,
    ) -> None:
        """Run data → teacher → distill → (prune) → profile → export → bench → eval → report.

        Finished stages are cached by content, so a second run only redoes what changed,
        and an interrupted run resumes where it stopped.
        """
        from pocketgan.core.errors import PocketganError
        from pocketgan.recipe import default_recipe_text, load_recipe

        if print_recipe:
            typer.echo(default_recipe_text(), nl=False)
            return
        positional = [a for a in args or [] if "=" not in a]
        overrides = [a for a in args or [] if "=" in a]
        if len(positional) > 1:
            raise PocketganError(f"give at most one recipe file; got {', '.join(positional)}")
        recipe_path = positional[0] if positional else None
        recipe = load_recipe(recipe_path, overrides)

        from pocketgan.pipeline import run_pipeline

        run_pipeline(recipe, out, recipe_path=recipe_path, overrides=overrides)
