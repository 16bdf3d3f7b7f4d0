"""`pocketgan run`: the whole pipeline from a YAML recipe or a built-in recipe's name (default without one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

STAGES_HELP = "data, teacher, features, students, prune, profile, export, bench, eval or report"


def register(app: typer.Typer) -> None:
    """Add the `run` verb to `app`."""

    @app.command()
    def run(
        args: Annotated[
            Optional[list[str]],  # noqa: UP045  (typer reads the annotation at runtime)
            typer.Argument(
                metavar="[RECIPE.yaml|NAME] [KEY=VALUE]...",
                help="A recipe file or the name of a built-in recipe (default: edges → photos; stylized: photo → "
                "stylized photo, U-Net teacher; cyclegan: unpaired photos ↔ stylized, CycleGAN teacher, OMGD and "
                "GAN Compression students) and "
                "overrides such as teacher.steps=200 or students.0.method=kd.",
                show_default=False,
            ),
        ] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/default"),
        only: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--only", metavar="STAGE", help=f"Run only this stage ({STAGES_HELP}); earlier ones are "
                         "reused from the cache and the run directory.", show_default=False),  # fmt: skip
        ] = None,
        start: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--from", metavar="STAGE", help="Run this stage and the ones after it; earlier ones are "
                         "reused.", show_default=False),  # fmt: skip
        ] = None,
        print_recipe: Annotated[
            bool,
            typer.Option("--print-recipe", help="Print the resolved recipe (every key, with RECIPE and the "
                         "overrides applied) and exit."),  # fmt: skip
        ] = False,
    ) -> None:
        """Run data → teacher → features → students → (prune) → profile → export → bench → eval → report.

        Finished stages are cached by content, so a second run only redoes what changed,
        and an interrupted run resumes where it stopped. The resolved recipe is written to
        OUT/recipe.yaml before the first stage.
        """
        from pocketgan.config import dump_config, load_config
        from pocketgan.core.errors import PocketganError

        positional = [a for a in args or [] if "=" not in a]
        overrides = [a for a in args or [] if "=" in a]
        if len(positional) > 1:
            raise PocketganError(f"give at most one recipe file (or built-in recipe name); got {', '.join(positional)}")
        recipe_path = positional[0] if positional else None
        config = load_config(recipe_path, overrides)
        if print_recipe:
            typer.echo(dump_config(config), nl=False)
            return

        from pocketgan.pipeline import run_pipeline

        run_pipeline(config, out, recipe_path=recipe_path, overrides=overrides, only=only, start=start)
