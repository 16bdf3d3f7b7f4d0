"""Terminal output shared by both CLIs: the rich consoles and the one progress renderer.

Library code reports progress through :mod:`pocketgan.core.progress` callbacks; :class:`RichProgress`
is the callback the CLIs pass, drawing one transient bar per task on stderr (nothing in logs or pipes).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from pocketgan.core.progress import ProgressEvent

REDRAW_INTERVAL_S = 0.2  # no refresh thread: redraw from the caller's updates, at most 5 times a second


def make_console(stderr: bool = False) -> Console:
    """Terminals keep their width; logs and pipes get 160 columns so tables don't wrap."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 160)


console = make_console()
err_console = make_console(stderr=True)


class RichProgress:
    """A :data:`~pocketgan.core.progress.ProgressCallback` drawing each task as a rich bar.

    Use as a context manager around the work; tasks appear on their first event and vanish on
    their last (``transient``), or stay as a final line when ``transient`` is false. It redraws
    only from events (no refresh thread competing with timed work). Disabled when ``console``
    is not a terminal or ``enabled`` is false.
    """

    def __init__(self, console: Console = err_console, *, enabled: bool = True, transient: bool = True) -> None:
        status = Column(ratio=1, no_wrap=True, overflow="ellipsis")  # the status gives way, not the bar
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[status]}", table_column=status),
            console=console, transient=transient, auto_refresh=False, expand=True,
            disable=not (enabled and console.is_terminal),
        )  # fmt: skip
        self.tasks: dict[str, TaskID] = {}
        self.last_draw = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        task = self.tasks.get(event.task)
        if task is None:
            task = self.tasks[event.task] = self.progress.add_task(event.task, total=event.total, status="")
        self.progress.update(task, completed=event.completed, total=event.total, status=event.status)
        now = time.monotonic()
        if event.finished or now - self.last_draw >= REDRAW_INTERVAL_S:
            self.progress.refresh()
            self.last_draw = now
        if event.finished and self.progress.live.transient:
            self.progress.remove_task(task)
            del self.tasks[event.task]

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()
