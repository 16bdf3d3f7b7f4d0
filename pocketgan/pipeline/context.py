"""The state of one pipeline run (:class:`Run`) and the command that started it (:class:`Invocation`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.config import RunConfig
from pocketgan.console import console
from pocketgan.core.progress import ProgressCallback
from pocketgan.pipeline.cache import RunState, cache_root
from pocketgan.pipeline.records import FeatureRecord, ModelRecord


@dataclass(frozen=True)
class Invocation:
    """How ``pocketgan run`` was called: to tell the user how to resume or re-run part of it."""

    out: Path
    recipe_path: str | None = None
    overrides: tuple[str, ...] = ()
    only: str | None = None
    start: str | None = None

    def command(self, *, only: str | None = None, start: str | None = None) -> str:
        """The ``pocketgan run`` command line, with ``--only``/``--from`` as given (or as passed here)."""
        only, start = (only, start) if only or start else (self.only, self.start)
        parts = ["pocketgan", "run", *([self.recipe_path] if self.recipe_path else []), "-o", str(self.out)]
        parts += ["--only", only] if only else (["--from", start] if start else [])
        return shlex.join(parts + list(self.overrides))


@dataclass
class Run:
    """One pipeline run: its configuration, where things are, and what each stage produced."""

    config: RunConfig
    out: Path
    invocation: Invocation
    cache: Path = field(default_factory=cache_root)
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # stage → the key of what it produced
    data_dir: Path | None = None
    data_key: str = ""
    models: dict[str, ModelRecord] = field(default_factory=dict)
    feature: FeatureRecord | None = None
    host: dict[str, Any] = field(default_factory=dict)
    eval_dataset: Any = None
    progress: ProgressCallback | None = None  # the running stage's progress bars
    _state: RunState | None = None

    @property
    def size(self) -> int:
        """The image side of every stage."""
        return self.config.size

    @property
    def state(self) -> RunState:
        """``RUN/stages.json``, read once."""
        if self._state is None:
            self._state = RunState(self.out)
        return self._state

    def cached_dir(self, stage: str, key: str) -> Path:
        """Where the cache keeps ``stage``'s output for ``key``."""
        return self.cache / stage / key

    def note_cached(self, what: str, path: Path) -> None:
        """Say that ``what`` was found in the cache."""
        self.cached.append(what)
        console.print(f"{what}: [green]cached[/] ({path})")
