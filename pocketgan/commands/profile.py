"""`pocketgan profile MODEL`: MACs (fvcore) and parameters, with the most expensive layers.

``--convention`` picks fvcore's count (ConvTranspose over input positions), the papers' (every conv
over output positions) or both (:data:`pocketgan.models.profile.CONVENTIONS`).

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
    from collections.abc import Sequence

    from rich.table import Table

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
ConventionOpt = Annotated[
    str,
    typer.Option(
        "--convention",
        help="MAC counting convention: fvcore (ConvTranspose over input positions), output (every conv over "
        "output positions, the papers' count) or both",
    ),
]
SizeOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--size", help="input size: H (square) or HxW, e.g. 256 or 256x320 (default: the model's fixed size, "
        "a latent model's image size, else 256)"
    ),
]
DEFAULT_PROFILE_SIZE = 256


def load_with_shape(model: str, arch: str | None, size: str | None) -> tuple[LoadedModel, tuple[int, ...]]:
    """Resolve ``MODEL`` (+ ``--arch``) and its input shape at ``--size``, checked against the model:
    NCHW for an image-to-image generator, ``(1, z_dim)`` for a latent-input one (whose ``--size``, if
    given, must be the size it makes)."""
    from pocketgan.core.options import parse_size
    from pocketgan.models import load_model

    loaded = load_model(model, arch)
    io = loaded.model.io
    default = io.fixed_size or (DEFAULT_PROFILE_SIZE, DEFAULT_PROFILE_SIZE)
    height, width = parse_size(size) if size is not None else default
    loaded.model.check_input_size(height, width)
    return loaded, io.input_shape(1, (height, width))


def register(app: typer.Typer) -> None:
    """Add the `profile` verb to `app`."""

    @app.command()
    def profile(
        model: ModelArg,
        size: SizeOpt = None,
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
        convention: ConventionOpt = "fvcore",
    ) -> None:
        """Count MACs (fvcore: 1 fused multiply-add = 1 MAC) and parameters of MODEL."""
        from pocketgan.core.fsio import write_json_atomic

        out = out or json_path
        if out is not None and out.is_dir():
            raise PocketganError(f"--out {out}: is a directory; give a file path")
        names = conventions_of(convention)
        loaded, shape = load_with_shape(model, arch, size)
        with err_console.status("counting MACs"):
            reports = profile_conventions(loaded.model, shape, names)
        print_profile(loaded.name, reports[0], top, also=reports[1:])
        if out is not None:
            write_json_atomic(out, profile_document(reports))
            console.print(f"wrote {out}")


def conventions_of(option: str) -> list[str]:
    """``--convention`` → the convention names to count (``both``: fvcore's, then the output-position one)."""
    from pocketgan.core.registry import did_you_mean
    from pocketgan.models.profile import CONVENTIONS

    choices = [*CONVENTIONS, "both"]
    if option not in choices:
        hint = did_you_mean(option, choices)
        raise PocketganError(f"--convention {option}: unknown{hint}; choose {', '.join(choices)}")
    return list(CONVENTIONS) if option == "both" else [option]


def convention_label(report: ProfileReport) -> str:
    """``fvcore`` or ``output positions``: the short name of the convention ``report`` was counted in."""
    return report.counter.split(":")[-1].replace("-", " ")


def profile_conventions(model: object, shape: tuple[int, ...], names: list[str]) -> list[ProfileReport]:
    """One :class:`ProfileReport` of ``model`` at ``shape`` per counting convention in ``names``."""
    from pocketgan.models.profile import profile_model

    return [profile_model(model, shape, name) for name in names]


def profile_document(reports: list[ProfileReport]) -> dict[str, object]:
    """The ``--out`` JSON: the first report's fields, plus ``by_convention`` when several were counted."""
    document = reports[0].to_dict()
    if len(reports) > 1:
        document["by_convention"] = {
            r.counter: {"macs": r.macs, "convention": r.convention, "by_module": dict(r.by_module)} for r in reports
        }
    return document


def print_profile(name: str, report: ProfileReport, top: int = 10, also: Sequence[ProfileReport] = ()) -> None:
    """Render a profile as two rich tables: totals, then the ``top`` most expensive layers.

    ``also``: the same model counted in other conventions (a MACs row and a column each).
    """
    from rich.table import Table

    reports = [report, *also]
    shape = "×".join(str(d) for d in report.input_shape)
    totals = Table(title=f"{name} at {shape}", show_header=False, title_justify="left")
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    totals.add_column()
    for r in reports:
        label = "MACs" if not also else f"MACs ({convention_label(r)})"
        totals.add_row(label, format_count(r.macs), f"{r.macs:,}")
    totals.add_row("params", format_count(report.params), f"{report.params:,}")
    operators = ", ".join(f"{op} {format_count(n)}" for op, n in report.by_operator.items())
    totals.add_row("by operator", "", operators)
    for r in reports:
        totals.add_row("counter", r.counter, r.convention)
    console.print(totals)
    if top > 0 and report.by_module:
        console.print(_layers_table(reports, top))


def _layers_table(reports: list[ProfileReport], top: int) -> Table:
    """The ``top`` most expensive layers of ``reports[0]``, with their MACs and share in every report."""
    from rich.table import Table

    first = reports[0]
    layers = Table(title=f"top {min(top, len(first.by_module))} layers by MACs", title_justify="left")
    layers.add_column("layer")
    layers.add_column("type")
    for r in reports:
        suffix = f" ({convention_label(r)})" if len(reports) > 1 else ""
        layers.add_column(f"MACs{suffix}", justify="right")
        layers.add_column(f"share{suffix}", justify="right")
    for layer, kind, _ in first.top_modules(top):
        cells = []
        for r in reports:
            macs = r.by_module.get(layer, 0)
            cells += [format_count(macs), f"{macs / r.macs:.1%}" if r.macs else "-"]
        layers.add_row(layer, kind, *cells)
    return layers
