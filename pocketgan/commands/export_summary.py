"""``pocketgan export --format F,F|all``: every format in turn, then one summary table; and ``--list-formats``.

Each format ends in one of three states: ✅ exported and checked here (parity against PyTorch on this
host), ❎ exported but not checkable here (and why: macOS, a GPU), ❌ failed (and why). Artifacts that
run here are then timed together, interleaved, with the backend the formats table names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from pocketgan.console import RichProgress, console
from pocketgan.core.contract import ArtifactManifest
from pocketgan.core.coverage import DelegationCoverage, coverage_of
from pocketgan.core.errors import PocketganError
from pocketgan.export.formats import (
    FormatSpec,
    check_format_options,
    check_options,
    format_names,
    format_spec,
    options_for,
)

if TYPE_CHECKING:
    from pocketgan.export.job import ExportOptions
    from pocketgan.models import LoadedModel

CHECKED, UNCHECKED, FAILED = "✅", "❎", "❌"
#: The short benchmark behind the table's p50 column (``pocketgan-bench`` measures properly).
QUICK_BENCH = {"warmup_ms": 200.0, "iterations": 10, "duration_s": 1.0, "placement": False}  # p50 only


@dataclass
class FormatOutcome:
    """One format's row: ``status`` (one of the three marks), the reason, the artifact and its sidecar."""

    spec: FormatSpec
    status: str
    reason: str = ""
    sidecar: ArtifactManifest | None = None
    artifact: Path | None = None
    p50_ms: float | None = None
    host_limited: bool = False  # failed only because this host cannot build the format
    quality_delta: dict[str, float] | None = None  # --data: ΔFID/ΔKID vs PyTorch fp32 (quantization_quality)

    @property
    def runs_here(self) -> bool:
        """Checked here, and the runtime backend the formats table names for it is installed."""
        from pocketgan.runtime.registry import backend_installed

        return self.status == CHECKED and bool(self.spec.backend) and backend_installed(self.spec.backend)

    @property
    def coverage(self) -> DelegationCoverage | None:
        """The delegation coverage the exporter recorded in the sidecar (phone formats), if any."""
        return coverage_of(self.sidecar.extra) if self.sidecar else None

    @property
    def size_mb(self) -> float | None:
        """The artifact and its companion files, in MB."""
        if self.artifact is None:
            return None
        files = [self.artifact.with_name(n) for n in self.spec.companions] + [self.artifact]
        paths = [p for f in files for p in ([f] if f.is_file() else f.rglob("*")) if p.is_file()]
        return sum(p.stat().st_size for p in paths) / 1e6


def export_formats(
    loaded: LoadedModel, names: Sequence[str], out: Path, options: ExportOptions, *, latency: bool = True,
    every: bool = False, quality: Callable[[Path], dict[str, float]] | None = None,
) -> list[FormatOutcome]:
    """Export ``loaded`` in every format of ``names`` into ``out``, time those that run here, print the table.

    ``quality`` (``--data``) measures the FID/KID change of an artifact that runs here (``{"fid": Δ, "kid": Δ}``):
    the table then gains ΔFID and ΔKID columns.

    Raises a one-line :class:`PocketganError` after the table when a format failed for a reason other than
    this host lacking what it needs to build it (or, for ``every`` format: ``--format all``, than the
    format not taking the options given, e.g. coreml and ``--precision int8``).
    """
    specs = [format_spec(name) for name in names]
    check_format_options(specs, options)  # --option goes only to the formats that take it
    outcomes = [_export_one(loaded, spec.name, out, options_for(spec, options), every) for spec in specs]
    if latency:
        _time_runnable(outcomes)
    for outcome in outcomes if quality is not None else []:
        if outcome.runs_here and outcome.artifact is not None:
            outcome.quality_delta = quality(outcome.artifact)  # type: ignore[misc]
    console.print(summary_table(outcomes, options.precision))
    failures = [o for o in outcomes if o.status == FAILED and not o.host_limited]
    if failures:
        raise PocketganError("; ".join(f"--format {o.spec.name} failed: {o.reason}" for o in failures))
    return outcomes


def _export_one(loaded: LoadedModel, name: str, out: Path, options: ExportOptions, every: bool) -> FormatOutcome:
    from pocketgan.export.api import export_model

    spec = format_spec(name)
    unmet = spec.build.unmet()
    if unmet:
        reason = f"cannot build here: {unmet}" + _readiness(loaded, name, options)
        return FormatOutcome(spec, FAILED, reason, host_limited=True)
    try:
        check_options(spec, options)
    except PocketganError as exc:
        return FormatOutcome(spec, FAILED, f"not applicable: {exc}" if every else str(exc), host_limited=every)
    try:
        with RichProgress() as bar:
            sidecar = export_model(loaded, name, out, options, progress=bar)
    except PocketganError as exc:
        return FormatOutcome(spec, FAILED, str(exc))
    artifact = out / sidecar.file
    if sidecar.parity is None:
        return FormatOutcome(spec, UNCHECKED, str(sidecar.extra.get("parity", "not measured")), sidecar, artifact)
    return FormatOutcome(spec, CHECKED, "", sidecar, artifact)


def _readiness(loaded: LoadedModel, name: str, options: ExportOptions) -> str:
    """For tensorrt, the readiness check's verdict (it runs here; pocketgan.export.tensorrt)."""
    if name != "tensorrt":
        return ""
    from pocketgan.export.tensorrt import check_readiness

    try:
        return f"; {check_readiness(loaded, options).report.verdict()}"
    except PocketganError as exc:
        return f"; readiness check failed: {exc}"


def _time_runnable(outcomes: Sequence[FormatOutcome]) -> None:
    """p50 of every checked artifact whose backend is installed here, measured interleaved in one run."""
    from pocketgan.runtime import benchmark, load
    from pocketgan.runtime.bench import BenchSettings

    runnable = [o for o in outcomes if o.runs_here]
    if not runnable:
        return
    runners = [load(o.artifact, backend=o.spec.backend) for o in runnable]  # type: ignore[arg-type]
    with RichProgress() as bar:
        results = benchmark(runners, BenchSettings(**QUICK_BENCH), progress=bar)  # type: ignore[arg-type]
    for outcome, result in zip(runnable, results, strict=True):
        outcome.p50_ms = result.latency.p50_ms


def summary_table(outcomes: Sequence[FormatOutcome], precision: str) -> Table:
    """Format, status, size, parity (max abs, PSNR), p50 (ΔFID, ΔKID with --data) and the reason, one row each."""
    table = Table(title=f"pocketgan export ({precision})", title_justify="left")
    measured = any(o.quality_delta for o in outcomes)
    delegated = any(o.coverage for o in outcomes)
    for column, justify in (("format", "left"), ("status", "center"), ("size MB", "right"), ("max abs", "right"),
                            ("PSNR dB", "right"), ("p50 ms", "right"),
                            *((("ΔFID", "right"), ("ΔKID", "right")) if measured else ()),
                            *((("delegated", "right"),) if delegated else ()), ("notes", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for o in outcomes:
        parity, delta = o.sidecar.parity if o.sidecar else None, o.quality_delta or {}
        quality = (_number(delta.get("fid"), "+.3g"), _number(delta.get("kid"), "+.3g")) if measured else ()
        coverage = (o.coverage.short() if o.coverage else "-",) if delegated else ()
        table.add_row(
            o.spec.name, o.status, _number(o.size_mb, ".2f"), _number(parity.max_abs if parity else None, ".2g"),
            _number(parity.psnr_db if parity else None, ".1f"), _number(o.p50_ms, ".2f"), *quality, *coverage,
            escape(_note(o)),
        )  # fmt: skip
    return table


def _note(outcome: FormatOutcome) -> str:
    """The reason of a failed or unchecked format, else the files written."""
    if outcome.reason or outcome.artifact is None:
        return outcome.reason
    return " + ".join([outcome.artifact.name, *outcome.spec.companions])


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def formats_listing() -> tuple[Table, list[str]]:
    """``--list-formats``: the formats table with what this host can do, and one note per format it cannot."""
    table = Table(title="pocketgan export formats", title_justify="left")
    for column in ("format", "artifact", "precisions", "options", "build needs", "run needs", "backend", "here"):
        table.add_column(column, overflow="fold")
    notes = []
    for spec in map(format_spec, format_names()):
        build, run = spec.build.unmet(), spec.cannot_run_here()
        here = f"{CHECKED} builds, runs" if not build and not run else f"{UNCHECKED} builds" if not build else FAILED
        if build or run:
            notes.append(f"{spec.name}: " + (f"cannot build here: {build}" if build else f"cannot run here: {run}"))
        cells = (spec.name, " + ".join([spec.artifact, *spec.companions]), ", ".join(spec.precisions),
                 " ".join(spec.flags()) or "-", spec.build.describe(), spec.run.describe(), spec.backend or "-", here)  # fmt: skip
        table.add_row(*map(escape, cells))
    return table, notes
