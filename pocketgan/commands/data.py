"""`pocketgan data BUILDER --out DIR` builds an embedded dataset; `pocketgan data inspect DIR` describes one.

Builders are listed under "Builders" in ``pocketgan data --help``; each is a thin command
over :func:`pocketgan.distill.data.build_dataset` (the library registry). To add one,
register its function there and add its command to :data:`BUILDER_COMMANDS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pocketgan.console import console, err_console

BUILDERS_PANEL = "Builders"

OutOpt = Annotated[Path, typer.Option("--out", help="Folder to write (replaced only when it holds a previous build).")]
SizeOpt = Annotated[int, typer.Option("--size", min=16, help="Side of the square images, in pixels.")]
CountOpt = Annotated[int, typer.Option("--count", min=1, help="Training pairs.")]
ValCountOpt = Annotated[int, typer.Option("--val-count", min=1, help="Validation pairs.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Same seed, same files (byte for byte).")]
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


def run_builder(name: str, out: Path, **options: Any) -> None:
    """Build dataset ``name`` into ``out`` and print one summary line."""
    from pocketgan.distill.data import build_dataset, read_dataset_json

    with warnings_as_lines():
        build_dataset(name, out, **options)
    meta = read_dataset_json(out)
    counts = " + ".join(f"{n} {split}" for split, n in meta.get("counts", {}).items())
    size = meta.get("size")
    sources = f" from {len(meta['sources'])} photos" if meta.get("sources") else ""
    fingerprint = str(meta.get("content_hash", ""))[:12]
    console.print(f"wrote {out}: {counts} pairs at {size}×{size} px{sources} (fingerprint {fingerprint})",
                  markup=False, soft_wrap=True)  # fmt: skip


def register_edges2photos(data_app: typer.Typer) -> None:
    """The `edges2photos` builder command."""

    @data_app.command("edges2photos", rich_help_panel=BUILDERS_PANEL)
    def edges2photos(
        out: OutOpt,
        size: SizeOpt = 128,
        count: CountOpt = 600,
        val_count: ValCountOpt = 64,
        photos: Annotated[
            Optional[Path],  # noqa: UP045  (typer reads the annotation at runtime)
            typer.Option("--photos", help="A folder of your own photos (default: scikit-image's sample photos)."),
        ] = None,
        seed: SeedOpt = 0,
        progress: ProgressOpt = True,
    ) -> None:
        """Edge maps → photos (edges2shoes-style): random crops of real photos beside their Canny edges.

        Validation crops come from a band of each photo that training crops never touch.
        """
        run_builder("edges2photos", out, size=size, count=count, val_count=val_count, seed=seed, photos=photos,
                    progress=progress)  # fmt: skip


BUILDER_COMMANDS: list[Callable[[typer.Typer], None]] = [register_edges2photos]


def register_inspect(data_app: typer.Typer) -> None:
    """The `inspect` command."""

    @data_app.command("inspect")
    def inspect(root: Annotated[Path, typer.Argument(help="A dataset folder.", show_default=False)]) -> None:
        """Show a dataset's layout, splits, image counts and sizes, and its fingerprint."""
        from rich.table import Table

        from pocketgan.distill.data import describe_dataset

        summary = describe_dataset(root)
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
    """Add the `data` verb (a sub-app: one command per builder, plus `inspect`) to `app`."""
    data_app = typer.Typer(
        name="data",
        help="Build an embedded dataset (pocketgan data BUILDER --out DIR) or inspect a dataset folder.",
        no_args_is_help=True,
    )
    for add_builder in BUILDER_COMMANDS:
        add_builder(data_app)
    register_inspect(data_app)
    app.add_typer(data_app, name="data")
