"""`pocketgan data BUILDER -o DIR` builds a dataset; `pocketgan data inspect DIR` describes one.

There is one sub-command per builder in :data:`pocketgan.distill.data.builders.BUILDERS`
(built-ins and ``pocketgan.datasets`` entry points), generated when ``pocketgan data`` is
first asked for its commands: a plugin's builder appears in ``pocketgan data --help`` without
touching pocketgan. Every builder command takes the same options (``-o/--out``, ``--size``,
``--count``, ``--val-count``, ``--seed``) plus ``--option KEY=VALUE`` for the options the
builder declares.
"""

# No `from __future__ import annotations`: typer reads the per-builder annotations made in
# builder_command() at runtime, and they close over local values.

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from pocketgan.console import RichProgress, console, err_console

if TYPE_CHECKING:
    import click  # typer vendors its own; a runtime-only install has no click package

    from pocketgan.distill.data.builders import DatasetBuilder

BUILDERS_PANEL = "Builders"
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Print library warnings (skipped files, ...) as one ``warning: ...`` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                err_console.print(f"warning: {warning.message}", markup=False, soft_wrap=True)


def run_builder(name: str, out: Path, *, progress: bool = True, **settings: Any) -> None:
    """Build dataset ``name`` into ``out`` (a progress bar on stderr) and print one summary line."""
    from pocketgan.distill.data import build_dataset, read_dataset_json

    with warnings_as_lines(), RichProgress(enabled=progress) as bar:
        build_dataset(name, out, progress=bar, **settings)
    meta = read_dataset_json(out)
    counts = " + ".join(f"{n} {split}" for split, n in meta.get("counts", {}).items())
    size = meta.get("size")
    sources = f" from {len(meta['sources'])} photos" if meta.get("sources") else ""
    fingerprint = str(meta.get("content_hash", ""))[:12]
    unit = "pairs" if meta.get("layout", "aligned") == "aligned" else "images"
    console.print(f"wrote {out}: {counts} {unit} at {size}×{size} px{sources} (fingerprint {fingerprint})",
                  markup=False, soft_wrap=True)  # fmt: skip


OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Folder to write (replaced only when it holds a previous build).")
]


def _optional(kind: type, flag: str, help: str, **extra: Any) -> Any:
    """``Annotated[Optional[kind], typer.Option(flag, ...)]``: unset means the builder's own default."""
    return Annotated[Optional[kind], typer.Option(flag, help=help, **extra)]  # noqa: UP045 (typer, at runtime)


def builder_command(builder: "DatasetBuilder") -> Callable[..., None]:
    """The CLI function of one builder: the common options (help shows its defaults) and ``--option``."""
    from pocketgan.core.options import parse_square_size

    defaults = builder.defaults()

    def default(name: str) -> str:
        return f" (default {defaults[name]})" if name in defaults else ""

    declared = "; ".join(f"{name}: {text}" for name, text in builder.options.items())
    Size = _optional(str, "--size", f"Side of the square images: H or HxH{default('size')}.")
    Count = _optional(int, "--count", f"Training pairs{default('count')}.", min=1)
    ValCount = _optional(int, "--val-count", f"Validation pairs{default('val_count')}.", min=1)
    Seed = _optional(int, "--seed", f"Same seed, same files, byte for byte{default('seed')}.")
    Options = _optional(list[str], "--option", f"Builder option KEY=VALUE (repeatable). {declared or 'None here.'}")

    def build(out: OutOpt, size: Size = None, count: Count = None, val_count: ValCount = None, seed: Seed = None,
              option: Options = None, progress: ProgressOpt = True) -> None:  # fmt: skip
        settings = {"size": parse_square_size(size) if size is not None else None, "count": count,
                    "val_count": val_count, "seed": seed}  # fmt: skip
        settings = {key: value for key, value in settings.items() if value is not None}
        run_builder(builder.name, out, progress=progress, **settings, **builder.parse_options(option))

    build.__doc__ = f"{builder.summary[:1].upper()}{builder.summary[1:]}.\n\n{builder.description}".strip()
    return build


class DataGroup(TyperGroup):
    """``pocketgan data``: ``inspect`` plus one command per registered builder, made on first use.

    The builders are looked up only when ``pocketgan data`` itself runs, so ``pocketgan --help``
    imports no stage.
    """

    def list_commands(self, ctx: "click.Context") -> list[str]:
        from pocketgan.distill.data.builders import BUILDERS

        return [*BUILDERS.names(), *super().list_commands(ctx)]

    def get_command(self, ctx: "click.Context", name: str) -> "Optional[click.Command]":
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        from pocketgan.distill.data.builders import BUILDERS

        if name not in BUILDERS:
            return None
        app = typer.Typer(add_completion=False)
        app.command(name, short_help=BUILDERS.get(name).summary, rich_help_panel=BUILDERS_PANEL)(
            builder_command(BUILDERS.get(name))
        )
        return typer.main.get_command(app)


def register_inspect(data_app: typer.Typer) -> None:
    """The `inspect` command."""

    @data_app.command("inspect")
    def inspect(root: Annotated[Path, typer.Argument(help="A dataset folder.", show_default=False)]) -> None:
        """Show a dataset's layout, splits, image counts and sizes, and its fingerprint."""
        from rich.table import Table

        from pocketgan.distill.data import describe_dataset

        with RichProgress() as bar:
            summary = describe_dataset(root, progress=bar)
        table = Table(title=f"{summary.name} ({root})", title_justify="left")
        for column in ("split", "layout", "images", "skipped", "size (per side)"):
            table.add_column(column)
        for split in summary.splits:
            images = ", ".join(f"{folder} {n}" for folder, n in split.images.items())
            sizes = ", ".join(f"{size} ×{n}" for size, n in split.sizes.most_common(3))
            more = f" +{len(split.sizes) - 3} sizes" if len(split.sizes) > 3 else ""
            table.add_row(split.split, split.layout, images, str(split.skipped), sizes + more)
        console.print(table)
        console.print(f"fingerprint {summary.fingerprint}", markup=False)
        if summary.meta.get("split_rule"):
            console.print(f"split rule: {summary.meta['split_rule']}", markup=False, soft_wrap=True)
        for split in summary.splits:
            if split.skip_summary:
                err_console.print(f"warning: {split.skip_summary}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `data` verb (a sub-app: one command per registered builder, plus `inspect`) to `app`."""
    data_app = typer.Typer(
        name="data",
        cls=DataGroup,
        help="Build a dataset (pocketgan data BUILDER -o DIR, one command per registered builder) "
        "or inspect a dataset folder.",
        no_args_is_help=True,
    )
    register_inspect(data_app)
    app.add_typer(data_app, name="data")
