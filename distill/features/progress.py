"""One transient rich progress bar on stderr, silent when disabled (feature training and evaluation)."""

from __future__ import annotations

from typing import Any


class TaskBar:
    """``with TaskBar("evaluating", total=n) as bar: bar.advance(k, status="...")``."""

    def __init__(self, description: str, total: int, enabled: bool = True) -> None:
        self.description, self.total, self.enabled = description, total, enabled and total > 0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TaskBar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from pocketgan.console import err_console

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"), console=err_console, transient=True,
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, status="")
        return self

    def advance(self, amount: int = 1, status: str | None = None) -> None:
        """Move ``amount`` units; ``status`` replaces the text after the bar (e.g. the running losses)."""
        if self._progress is not None:
            fields = {} if status is None else {"status": status}
            self._progress.update(self._task, advance=amount, **fields)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
