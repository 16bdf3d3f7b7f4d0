"""Orchestration of ``pocketgan run``: the stage table, ``--only``/``--from``, and one-line stage errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketgan.config import RunConfig, dump_config, parse_config
from pocketgan.console import RichProgress, console
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path
from pocketgan.core.registry import did_you_mean
from pocketgan.pipeline.cache import NotBuilt
from pocketgan.pipeline.context import Invocation, Run
from pocketgan.pipeline.measure import stage_bench, stage_eval, stage_export, stage_profile
from pocketgan.pipeline.reporting import stage_report
from pocketgan.pipeline.stages import stage_data, stage_features, stage_prune, stage_students, stage_teacher

CONFIG_FILE = "recipe.yaml"


@dataclass(frozen=True)
class Stage:
    """A named step; ``run(run, build)`` builds it, or with ``build=False`` only reuses an earlier result."""

    name: str
    run: Callable[[Run, bool], None]


STAGES: tuple[Stage, ...] = (
    Stage("data", stage_data),
    Stage("teacher", stage_teacher),
    Stage("features", stage_features),
    Stage("students", stage_students),
    Stage("prune", stage_prune),
    Stage("profile", stage_profile),
    Stage("export", stage_export),
    Stage("bench", stage_bench),
    Stage("eval", stage_eval),
    Stage("report", stage_report),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def run_pipeline(
    config: RunConfig | Mapping[str, Any],
    out: str | Path,
    *,
    recipe_path: str | None = None,
    overrides: list[str] | None = None,
    only: str | None = None,
    start: str | None = None,
) -> Path:
    """Run the stages of ``config`` into ``out`` (all, ``only`` one, or those from ``start`` on); returns ``report.md``.

    The resolved configuration is written to ``out/recipe.yaml`` before the first stage. Stages before
    the selected ones reuse their earlier results (the cache, ``out/stages.json``) or fail in one line.
    """
    if not isinstance(config, RunConfig):
        config = parse_config(dict(config))
    first, last = select_stages(only, start)
    preflight(config)
    invocation = Invocation(Path(out), recipe_path, tuple(overrides or ()), only, start)
    run = Run(config=config, out=Path(out), invocation=invocation)
    run.out.mkdir(parents=True, exist_ok=True)
    write_config(config, run.out / CONFIG_FILE)
    started = time.perf_counter()
    for index, stage in enumerate(STAGES[: last + 1]):
        if index < first:
            with reusing(run, stage.name):
                stage.run(run, False)
        else:
            with announced(run, stage.name, index + 1 - first, last + 1 - first), RichProgress() as bar:
                run.progress = bar
                stage.run(run, True)
            run.progress = None
    total = time.perf_counter() - started
    console.print(f"[bold green]done[/] in {total / 60:.1f} min → {run.out / 'report.md'}")
    return run.out / "report.md"


def select_stages(only: str | None, start: str | None) -> tuple[int, int]:
    """``(first, last)`` indices into :data:`STAGES` for ``--only STAGE`` or ``--from STAGE`` (default: all)."""
    if only and start:
        raise PocketganError("give --only or --from, not both")
    for flag, name in (("--only", only), ("--from", start)):
        if name is not None and name not in STAGE_NAMES:
            raise PocketganError(
                f"{flag} {name}: no such stage{did_you_mean(name, STAGE_NAMES)}; stages: {', '.join(STAGE_NAMES)}"
            )
    if only:
        return STAGE_NAMES.index(only), STAGE_NAMES.index(only)
    return (STAGE_NAMES.index(start) if start else 0), len(STAGES) - 1


def preflight(config: RunConfig) -> None:
    """Check the names the recipe uses (dataset builder, methods, export options) before any stage runs."""
    from pocketgan.distill.base import get_distiller
    from pocketgan.distill.data.builders import get_builder
    from pocketgan.export.job import ExportOptions
    from pocketgan.export.registry import get_exporter

    checks: list[tuple[str, Callable[[], Any]]] = []
    if not config.data.path:
        checks.append(("data", lambda: get_builder(config.data.builder).check_options(config.data.options)))
    checks += [(f"students.{i}.method", lambda s=s: get_distiller(s.method)) for i, s in enumerate(config.students)]
    options = ExportOptions(size=(config.size, config.size), opset=config.export.opset)
    checks.append(("export", lambda: options.validate(get_exporter(config.export.format))))
    for where, check in checks:
        try:
            check()
        except PocketganError as exc:
            raise PocketganError(f"recipe: {where}: {exc}") from None


def write_config(config: RunConfig, path: Path) -> Path:
    """The resolved configuration as a commented recipe (``pocketgan run PATH`` runs it again)."""
    with atomic_path(path) as tmp:
        tmp.write_text(dump_config(config))
    return path


@contextmanager
def announced(run: Run, name: str, index: int, count: int) -> Iterator[None]:
    """Announce a stage, time it, and turn a failure into one line naming the stage and how to resume."""
    console.rule(f"[bold][{index}/{count}] {name}")
    started = time.perf_counter()
    command = run.invocation.command()
    try:
        yield
    except KeyboardInterrupt:
        raise PocketganError(f"interrupted in stage {name}; re-run `{command}` to resume") from None
    except PocketganError as exc:
        raise PocketganError(f"stage {name} failed: {exc}; fix it and re-run `{command}` to resume") from None
    except Exception as exc:  # unexpected: keep the type for debugging
        raise PocketganError(f"stage {name} failed: {type(exc).__name__}: {exc}; re-run `{command}` to resume") from exc
    run.timings[name] = round(time.perf_counter() - started, 2)


@contextmanager
def reusing(run: Run, name: str) -> Iterator[None]:
    """A stage before ``--from``/``--only``: its earlier result, or one line saying how to build it."""
    try:
        yield
    except NotBuilt as exc:
        fix = run.invocation.command(start=name)
        raise PocketganError(f"stage {name} has no result for this configuration yet ({exc}); run `{fix}`") from None
    except PocketganError as exc:
        raise PocketganError(f"stage {name}: {exc}") from None
    console.print(f"{name}: reused")
