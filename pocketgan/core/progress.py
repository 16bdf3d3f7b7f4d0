"""Progress of long-running library work, reported through a callback (standard library only).

Stages never draw progress bars: a long-running function takes ``progress: ProgressCallback | None``
and reports :class:`ProgressEvent` s through a :class:`ProgressTask`. The CLIs pass a renderer
(:class:`pocketgan.runtime.console.RichProgress`); Python callers pass their own callback or
nothing (silent).

>>> with ProgressTask(callback, "int8 calibration", total=16) as task:
...     for batch in batches:
...         task.advance(status=f"batch {batch}")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ProgressEvent:
    """One update of a task: ``completed`` of ``total`` units (``total`` None: unknown), a status line.

    ``finished`` is set once, on the task's last event; ``task`` identifies it (its description).
    """

    task: str
    completed: float
    total: float | None = None
    status: str = ""
    finished: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


class ProgressTask:
    """Reports one task's progress to ``callback``; every method is a no-op when ``callback`` is None."""

    def __init__(self, callback: ProgressCallback | None, task: str, total: float | None = None) -> None:
        self.callback = callback
        self.task = task
        self.total = total
        self.completed = 0.0
        self.status = ""
        self.finished = False
        self._emit()

    def advance(self, amount: float = 1, status: str | None = None) -> None:
        """``amount`` more units done; ``status`` replaces the status line."""
        self.completed += amount
        self.update(status=status)

    def update(self, *, completed: float | None = None, total: float | None = None, status: str | None = None) -> None:
        """Set any of ``completed``, ``total`` and ``status``, then report."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if status is not None:
            self.status = status
        self._emit()

    def extend(self, more: float) -> None:
        """The task grew by ``more`` units (a search that plans more trials)."""
        self.update(total=(self.total or 0) + more)

    def track(self, items: Iterable[T], status: Callable[[T], str] | None = None) -> Iterator[T]:
        """Yield ``items``, advancing by one after each (``status(item)`` as the status line)."""
        for item in items:
            yield item
            self.advance(status=status(item) if status else None)

    def close(self) -> None:
        """Report the final event (once)."""
        if not self.finished:
            self.finished = True
            self._emit()

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _emit(self) -> None:
        if self.callback is not None:
            self.callback(ProgressEvent(self.task, self.completed, self.total, self.status, self.finished))
