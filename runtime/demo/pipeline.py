"""The demo's pipeline: decode → preprocess → inference → postprocess → encode, each stage its own thread.

Stages are joined by bounded :class:`~pocketgan.runtime.demo.frames.FrameQueue` s, so every stage works on a
different frame at once and the throughput is the slowest stage's, not the sum. The source runs in a
thread of its own; the last stage (encode or display) runs in the caller's thread, because GUI toolkits
want their windows driven from the main thread. A live source never waits for the pipeline: each queue
up to inference keeps its freshest frames, dropping (and counting) the oldest when full, so what is shown
lags the camera by at most the frames those queues hold; a computed frame is never dropped. A file source
waits instead (back-pressure everywhere).
A failure in any stage stops every stage and is raised in the caller's thread; Ctrl-C stops the source
and finishes the frames already in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pocketgan.runtime.demo.frames import Frame, FrameQueue
from pocketgan.runtime.demo.sources import Source
from pocketgan.runtime.demo.steps import StageFn

#: Frames each queue between two stages may hold (a file source; a live one: :data:`LIVE_QUEUE_BOUND`).
QUEUE_BOUND = 2
LIVE_QUEUE_BOUND = 1
#: The stage a live source's frames may be dropped before (and in every queue ahead of it).
DROP_BEFORE = "inference"
#: Seconds to wait for a stage's thread at the end (a camera blocked in a read is left behind).
JOIN_TIMEOUT_S = 2.0


@dataclass
class PipelineRun:
    """What came out: per frame (in output order) its index, the milliseconds of every stage, its end-to-end
    latency and when it left the pipeline; the frames read and dropped; each queue's high-water mark."""

    indices: list[int] = field(default_factory=list)
    ms: list[dict[str, float]] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    read: int = 0
    dropped: int = 0
    elapsed_s: float = 0.0
    queue_bound: int = QUEUE_BOUND
    high_water: list[int] = field(default_factory=list)
    stopped: bool = False  # the viewer or Ctrl-C stopped it before the source ended


class Pipeline:
    """``source`` through ``stages`` (``(name, fn(frame))`` in order) into ``last`` (``(name, fn(frame) ->
    keep going?)``, run in the caller's thread), with queues of ``queue_bound`` frames between them (default:
    :data:`QUEUE_BOUND`, or :data:`LIVE_QUEUE_BOUND` for a live source)."""

    def __init__(
        self,
        source: Source,
        stages: Sequence[tuple[str, StageFn]],
        last: tuple[str, Callable[[Frame], bool]],
        queue_bound: int | None = None,
    ) -> None:
        self.source = source
        self.stages = list(stages)
        self.last = last
        bound = queue_bound or (LIVE_QUEUE_BOUND if source.live else QUEUE_BOUND)
        names = [name for name, _fn in self.stages]
        dropping = names.index(DROP_BEFORE) + 1 if source.live and DROP_BEFORE in names else int(source.live)
        self.queues = [FrameQueue(bound, evicting=k < dropping) for k in range(len(self.stages) + 1)]
        self.result = PipelineRun(queue_bound=bound)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def run(self, max_frames: int | None = None, on_frame: Callable[[PipelineRun], None] | None = None) -> PipelineRun:
        """Run until the source ends, ``max_frames`` were read, the last stage says stop, or Ctrl-C."""
        start = time.perf_counter()
        threads = [threading.Thread(target=self._produce, args=(max_frames,), name="demo-decode", daemon=True)]
        for (name, fn), inbox, outbox in zip(self.stages, self.queues, self.queues[1:]):
            threads.append(threading.Thread(target=self._work, args=(name, fn, inbox, outbox),
                                            name=f"demo-{name}", daemon=True))  # fmt: skip
        for thread in threads:
            thread.start()
        try:
            self._drain(on_frame)
        except BaseException as exc:
            self._fail(exc)
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
        self.result.elapsed_s = time.perf_counter() - start
        self.result.high_water = [queue.high_water for queue in self.queues]
        self.result.dropped = self.dropped()
        if self._failure is not None:
            raise self._failure
        return self.result

    def stop(self) -> None:
        """Read no more frames; those in flight are finished."""
        self._stop.set()

    def _produce(self, max_frames: int | None) -> None:
        out = self.queues[0]
        try:
            index = 0
            while not self._stop.is_set() and (max_frames is None or index < max_frames) and self.source.wait():
                started = time.perf_counter()
                item = self.source.read()
                if item is None:
                    break
                frame = Frame(index, item if self.source.images else None, item, started)
                frame.ms["decode"] = (time.perf_counter() - started) * 1e3
                index += 1
                self.result.read = index
                out.push(frame)
        except BaseException as exc:
            self._fail(exc)
        finally:
            out.close()

    def _work(self, name: str, fn: StageFn, inbox: FrameQueue, outbox: FrameQueue) -> None:
        try:
            while (frame := inbox.get()) is not None:
                began = time.perf_counter_ns()
                fn(frame)
                frame.ms[name] = (time.perf_counter_ns() - began) / 1e6
                outbox.push(frame)
        except BaseException as exc:
            self._fail(exc)
        finally:
            outbox.close()

    def _drain(self, on_frame: Callable[[PipelineRun], None] | None) -> None:
        """The last stage, in this thread; the first Ctrl-C stops the source, a second one aborts."""
        name, fn = self.last
        while True:
            try:
                frame = self.queues[-1].get()
                if frame is None:
                    return
                began = time.perf_counter_ns()
                keep_going = fn(frame)
                frame.ms[name] = (time.perf_counter_ns() - began) / 1e6
                self._record(frame)
                if on_frame is not None:
                    on_frame(self.result)
                if not keep_going:
                    self.result.stopped = True
                    self.stop()
            except KeyboardInterrupt:
                if self._stop.is_set():
                    raise
                self.result.stopped = True
                self.stop()

    def _record(self, frame: Frame) -> None:
        now = time.perf_counter()
        result = self.result
        result.indices.append(frame.index)
        result.ms.append(dict(frame.ms))
        result.end_to_end_ms.append((now - frame.started) * 1e3)
        result.finished.append(now)
        result.dropped = self.dropped()

    def dropped(self) -> int:
        """Frames dropped so far (by every evicting queue)."""
        return sum(queue.evicted for queue in self.queues)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
        self._stop.set()
        for queue in self.queues:
            queue.abort()
