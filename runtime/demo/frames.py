"""What flows through the demo pipeline: :class:`Frame` records and the bounded :class:`FrameQueue` between stages."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The pipeline's stages, in order; each frame records its milliseconds in every one.
STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")


@dataclass
class Frame:
    """One frame on its way through the pipeline.

    ``image`` is the decoded RGB ``uint8`` source image (``None`` for a latent walk), ``data`` what the
    next stage works on (the image, the model's input, its output, the frame to encode), ``ms`` the
    milliseconds each stage spent on it and ``started`` the ``perf_counter()`` when decoding began.
    """

    index: int
    image: np.ndarray | None
    data: Any
    started: float
    ms: dict[str, float] = field(default_factory=dict)


class FrameQueue:
    """A bounded FIFO between two stages that never holds more than ``bound`` items.

    :meth:`put` blocks while full (a file source back-pressures); :meth:`put_latest` never blocks and
    evicts the oldest item instead (a live source drops what the next stage cannot keep up with);
    :meth:`push` is the one of the two the queue was made for (``evicting``). :meth:`get` returns ``None``
    once the queue is closed and drained, or aborted. ``high_water`` is the most items it ever held,
    ``evicted`` how many it dropped.
    """

    def __init__(self, bound: int, evicting: bool = False) -> None:
        if bound < 1:
            raise ValueError(f"a queue bound is at least 1, got {bound}")
        self.bound = bound
        self.evicting = evicting
        self.high_water = 0
        self.evicted = 0
        self._items: deque[Any] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._aborted = False

    def put(self, item: Any) -> None:
        """Append ``item``, waiting while the queue is full (returns at once, dropping it, if aborted)."""
        with self._changed:
            while len(self._items) >= self.bound and not self._aborted:
                self._changed.wait()
            if not self._aborted:
                self._append(item)

    def put_latest(self, item: Any) -> Any | None:
        """Append ``item`` without waiting; when full, the oldest item is evicted (counted) and returned."""
        with self._changed:
            if self._aborted:
                return None
            evicted = self._items.popleft() if len(self._items) >= self.bound else None
            self.evicted += evicted is not None
            self._append(item)
            return evicted

    def push(self, item: Any) -> None:
        """:meth:`put_latest` for an evicting queue, else :meth:`put`."""
        if self.evicting:
            self.put_latest(item)
        else:
            self.put(item)

    def get(self) -> Any | None:
        """The oldest item, waiting for one; ``None`` when closed and empty, or aborted."""
        with self._changed:
            while not self._items and not self._closed and not self._aborted:
                self._changed.wait()
            if self._aborted or not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        """No more items will come: :meth:`get` returns ``None`` once the queue is drained."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def abort(self) -> None:
        """Drop everything and wake every waiter (a stage failed)."""
        with self._changed:
            self._aborted = True
            self._items.clear()
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def _append(self, item: Any) -> None:
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._changed.notify_all()
