"""The steps of one export, reported through a :data:`~pocketgan.core.progress.ProgressCallback`.

Exporters call ``job.progress.step("tracing")`` and ``job.progress.track(items, "parity")``; each
step is one :class:`~pocketgan.core.progress.ProgressTask` (closed when the next one starts), so a
CLI renderer shows the current step and a plain callback sees every step. Silent without a callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from pocketgan.core.progress import ProgressCallback, ProgressTask

T = TypeVar("T")


class StepProgress:
    """``with StepProgress(callback) as p: p.step("tracing"); for x in p.track(xs, "parity"): ...``"""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback
        self._task: ProgressTask | None = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close()

    def step(self, description: str, total: int | None = None) -> None:
        """Finish the current step and start ``description``; ``total`` makes it a bar of that many units."""
        self._close()
        self._task = ProgressTask(self.callback, description, total)

    def advance(self, amount: int = 1) -> None:
        """``amount`` more units of the current step done."""
        if self._task is not None:
            self._task.advance(amount)

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Yield ``items`` as a step named ``description``, advancing after each."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self.step(description, total)
        for item in items:
            yield item
            self.advance()

    def _close(self) -> None:
        if self._task is not None:
            self._task.close()
            self._task = None
