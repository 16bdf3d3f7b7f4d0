"""A one-line progress display for the stages of an export (rich), silent when disabled."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pocketgan.console import console

T = TypeVar("T")


class StepProgress:
    """``with StepProgress() as p: p.step("tracing"); for x in p.track(xs, "parity"): ...``"""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console, transient=True,
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task("exporting", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def step(self, description: str, total: int | None = None) -> None:
        """Show a new stage; ``total`` makes it a bar of that many units."""
        if self._progress is not None:
            self._progress.reset(self._task, description=description, total=total, completed=0)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Yield ``items`` while advancing a bar named ``description``."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self.step(description, total)
        for item in items:
            yield item
            self.advance()
