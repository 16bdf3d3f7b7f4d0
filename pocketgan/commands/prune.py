"""`pocketgan prune MODEL -o DIR`: structural channel pruning (torch-pruning) to a ratio, a MAC target, or
uniformly (``--uniform P``: every layer keeps ``ceil((1 - P) × width)`` channels, the papers' StyleGAN2 students)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pocketgan.commands.profile import ArchOpt, ModelArg, SizeOpt, load_with_shape
from pocketgan.console import RichProgress, console, format_count
from pocketgan.core.errors import PocketganError

if TYPE_CHECKING:
    from pocketgan.models.prune import PruneResult


OutOpt = Annotated[Path, typer.Option("-o", "--out", help="model directory to write (created or updated)")]
RatioOpt = Annotated[
    Optional[float],  # noqa: UP045  (typer reads the annotation at runtime)
    typer.Option("--ratio", help="channel pruning ratio in (0, 1): each layer loses this share"),
]
TargetRateOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--target-rate", help="at least this share fewer MACs, e.g. 0.9 (the ratio is searched)"),
]
TargetMacsOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--target-macs", help="at most this many MACs: 1.2G, 800M or a plain number"),
]
ImportanceOpt = Annotated[
    str, typer.Option("--importance", help="channel ranking: l1, l2, taylor, random or a pocketgan.importance plugin")
]
GlobalOpt = Annotated[bool, typer.Option("--global", help="rank channels across layers instead of per layer")]
RoundToOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--round-to", help="keep every pruned width a multiple of N"),
]
IgnoreLayerOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--ignore-layer",
        metavar="NAME",
        help="keep this module's output channels, and every layer coupled with it (repeatable)",
    ),
]


UniformOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option(
        "--uniform",
        metavar="P",
        help="uniform pruning at rate P in (0, 1): every layer keeps ceil((1-P)*width) channels, the "
        "most important ones (the papers' StyleGAN2 students: 0.7, 0.8, 0.9, 0.95)",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the `prune` verb to `app`."""

    @app.command()
    def prune(
        model: ModelArg,
        out: OutOpt,
        ratio: RatioOpt = None,
        target_rate: TargetRateOpt = None,
        target_macs: TargetMacsOpt = None,
        importance: ImportanceOpt = "l1",
        global_pruning: GlobalOpt = False,
        round_to: RoundToOpt = None,
        ignore_layer: IgnoreLayerOpt = None,
        size: SizeOpt = None,
        arch: ArchOpt = None,
        uniform: UniformOpt = None,
    ) -> None:
        """Prune MODEL's channels with torch-pruning and write the result as a model directory."""
        from pocketgan.models import save_model
        from pocketgan.models.profile import parse_macs
        from pocketgan.models.prune import prune_model
        from pocketgan.models.prune_uniform import prune_uniform

        if out.exists() and not out.is_dir():
            raise PocketganError(f"--out {out}: exists and is not a directory")
        check_uniform_options(uniform, ratio, target_rate, target_macs, global_pruning, round_to)
        budget = parse_macs(target_macs) if target_macs is not None else None
        loaded, shape = load_with_shape(model, arch, size)
        with RichProgress() as bar:
            if uniform is not None:
                result: PruneResult = prune_uniform(
                    loaded.model, uniform, importance=importance, ignored_layers=ignore_layer or (),
                    input_size=shape[2:] or None, progress=bar,
                )  # fmt: skip
            else:
                result = prune_model(
                    loaded.model, ratio=ratio, target_rate=target_rate, target_macs=budget, importance=importance,
                    global_pruning=global_pruning, round_to=round_to, input_size=shape[2:],
                    ignored_layers=ignore_layer or (), progress=bar,
                )  # fmt: skip
        provenance = {"source": model, "parent": loaded.manifest.provenance, **result.provenance()}
        save_model(result.model, out, provenance=provenance, profile=result.after.to_profile())
        print_prune_summary(loaded.name, result)
        console.print(f"wrote {out}")


def check_uniform_options(
    uniform: float | None,
    ratio: float | None,
    target_rate: float | None,
    target_macs: str | None,
    global_pruning: bool,
    round_to: int | None,
) -> None:
    """One line when ``--uniform`` is combined with another goal or an option it does not take, or out of (0, 1)."""
    if uniform is None:
        if ratio is None and target_rate is None and target_macs is None:
            raise PocketganError("give exactly one of --ratio, --target-rate, --target-macs or --uniform")
        return
    from pocketgan.models.prune_uniform import KEEP_RULE, check_uniform_rate

    others = [name for name, v in (("--ratio", ratio), ("--target-rate", target_rate), ("--target-macs", target_macs))
              if v is not None]  # fmt: skip
    if others:
        raise PocketganError(f"--uniform is a goal of its own: give it without {', '.join(others)}")
    if global_pruning or round_to is not None:
        option = "--global" if global_pruning else "--round-to"
        raise PocketganError(f"--uniform keeps {KEEP_RULE} channels in every layer; it takes no {option}")
    check_uniform_rate(uniform)


def print_prune_summary(name: str, result: PruneResult) -> None:
    """Before/after table of MACs and params with the reduction, and how the pruning was done."""
    from rich.table import Table

    from pocketgan.models.prune_uniform import KEEP_RULE, UniformPruneResult

    shape = "×".join(str(d) for d in result.before.input_shape)
    table = Table(title=f"pruning {name} at {shape}", title_justify="left")
    table.add_column("")
    for header in ("before", "after", "reduction"):
        table.add_column(header, justify="right")
    table.add_row("MACs", format_count(result.macs_before), format_count(result.macs_after), f"{result.rate:.2%}")
    table.add_row(
        "params", format_count(result.params_before), format_count(result.params_after), f"{result.param_rate:.2%}"
    )
    console.print(table)
    if isinstance(result, UniformPruneResult):
        ratio = f"uniform p = {result.ratio:g}: every layer keeps {KEEP_RULE} channels"
    else:
        ratio = f"ratio {result.ratio:.4f}"
    if result.layer_ratios:
        ratio += f" ({len(result.layer_ratios)} groups at {max(result.layer_ratios.values()):.4f})"
    scope = "global ranking" if result.global_pruning else "per layer"
    rounding = f", widths multiples of {result.round_to}" if result.round_to else ""
    console.print(f"{ratio}, {result.importance} importance, {scope}{rounding}")
    kept = [f"{n} (--ignore-layer)" for n in result.ignored_layers]
    kept += [f"{n} ({why})" for n, why in result.kept_layers.items()]
    if kept:
        console.print(f"kept at full width: {', '.join(kept)}")
    if result.layer_pruners:
        console.print(f"custom pruners: {', '.join(result.layer_pruners)}")
    console.print(f"MACs by {result.before.counter}: {result.before.convention}", style="dim")
