"""`pocketgan profile MODEL`: MACs (fvcore) and parameters, with the most expensive layers.

Also home of the options every model-taking verb shares (``MODEL``, ``--arch``, ``--size``).
``MODEL`` and ``--arch`` take registered architectures (``resnet9:ngf=64``) and the user's own
factories (``mypkg.nets:build:channels=16``, imported with the current directory on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pocketgan.console import console, err_console, format_count
from pocketgan.core.errors import PocketganError

if TYPE_CHECKING:
    from pocketgan.models import LoadedModel
    from pocketgan.models.profile import ProfileReport

ModelArg = Annotated[
    str,
    typer.Argument(
        help="an architecture (resnet9:ngf=64, mobile-resnet:ngf=16, unet256), your own factory "
        "(package.module:factory[:key=value,...]), a model directory, or a checkpoint (.pth/.safetensors) with --arch",
        show_default=False,
    ),
]
ArchOpt = Annotated[
    Optional[str],  # noqa: UP045  (typer reads the annotation at runtime)
    typer.Option(
        "--arch", help="architecture of a checkpoint file: resnet9, mobile-resnet:ngf=16 or mypkg.nets:build:ngf=8"
    ),
]
SizeOpt = Annotated[str, typer.Option("--size", help="input size: H (square) or HxW, e.g. 256 or 256x320")]


def load_with_shape(model: str, arch: str | None, size: str) -> tuple[LoadedModel, tuple[int, int, int, int]]:
    """Resolve ``MODEL`` (+ ``--arch``) and the NCHW input shape ``--size`` gives, checked against the model."""
    from pocketgan.core.options import parse_size
    from pocketgan.models import load_model

    height, width = parse_size(size)
    loaded = load_model(model, arch)
    loaded.model.check_input_size(height, width)
    return loaded, (1, loaded.model.io.input_channels, height, width)


def register(app: typer.Typer) -> None:
    """Add the `profile` verb to `app`."""

    @app.command()
    def profile(
        model: ModelArg,
        size: SizeOpt = "256",
        arch: ArchOpt = None,
        out: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("-o", "--out", help="also write {macs, params, counter, input_shape, by_module} here (JSON)"),
        ] = None,
        json_path: Annotated[
            Optional[Path],  # noqa: UP045
            typer.Option("--json", hidden=True, help="the former spelling of --out"),
        ] = None,
        top: Annotated[int, typer.Option("--top", min=0, help="how many of the most expensive layers to list")] = 10,
    ) -> None:
        """Count MACs (fvcore: 1 fused multiply-add = 1 MAC) and parameters of MODEL."""
        from pocketgan.core.fsio import write_json_atomic
        from pocketgan.models.profile import profile_model

        out = out or json_path
        if out is not None and out.is_dir():
            raise PocketganError(f"--out {out}: is a directory; give a file path")
        loaded, shape = load_with_shape(model, arch, size)
        with err_console.status("counting MACs"):
            report = profile_model(loaded.model, shape)
        print_profile(loaded.name, report, top)
        if out is not None:
            write_json_atomic(out, report.to_dict())
            console.print(f"wrote {out}")


def print_profile(name: str, report: ProfileReport, top: int = 10) -> None:
    """Render a profile as two rich tables: totals, then the ``top`` most expensive layers."""
    from rich.table import Table

    shape = "×".join(str(d) for d in report.input_shape)
    totals = Table(title=f"{name} at {shape}", show_header=False, title_justify="left")
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    totals.add_column()
    totals.add_row("MACs", format_count(report.macs), f"{report.macs:,}")
    totals.add_row("params", format_count(report.params), f"{report.params:,}")
    operators = ", ".join(f"{op} {format_count(n)}" for op, n in report.by_operator.items())
    totals.add_row("by operator", "", operators)
    totals.add_row("counter", report.counter, report.convention)
    console.print(totals)
    if top <= 0 or not report.by_module:
        return
    layers = Table(title=f"top {min(top, len(report.by_module))} layers by MACs", title_justify="left")
    layers.add_column("layer")
    layers.add_column("type")
    layers.add_column("MACs", justify="right")
    layers.add_column("share", justify="right")
    for layer, kind, macs in report.top_modules(top):
        layers.add_row(layer, kind, format_count(macs), f"{macs / report.macs:.1%}")
    console.print(layers)
