"""The benchmark engine: timed warm-up, then interleaved timed turns, then statistics.

Several runners are measured *interleaved* so that frequency scaling, thermal throttling and
background load hit all of them alike and their ratios stay fair, but not one iteration each in
turn: a runtime's worker threads keep spinning for milliseconds after a call (onnxruntime's
intra-op pool, OpenVINO's TBB arena, XNNPACK's pthreadpool), so a per-iteration round robin makes
every runtime share the cores with the previous one's spinners. On 2 cores that inflated
OpenVINO's student latencies about 2× (``benchmarks/interleave.py``). Each runner instead gets
**turns**: an idle ``settle_ms`` pause (several runners only) so the previous runtime's threads go
to sleep, one untimed lead-in iteration when an iteration is short against the turn, then timed
iterations back to back for ``block_ms``: the steady state a real-time loop sees. Rounds of turns go on until every
runner has at least ``iterations`` timed iterations AND ``duration_s`` seconds have passed.
Progress goes to a :data:`~pocketgan.core.progress.ProgressCallback`: a "warm-up" task, then a
"timing" task in percent of the run (reported between turns, never during one), then, untimed, a
"placement" task: each runner's backend says which provider ran each part of the graph
(:mod:`pocketgan.runtime.placement`; ``BenchSettings(placement=False)`` skips it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.runtime.efficiency import Efficiency, macs_at
from pocketgan.runtime.host import host_record, peak_rss_mb
from pocketgan.runtime.latent import latent_feeds
from pocketgan.runtime.placement import Placement
from pocketgan.runtime.power import measuring, no_power, open_meter
from pocketgan.runtime.runner import Runner
from pocketgan.runtime.stats import HIGH_CV, LatencyStats

#: The timed task's ``total``: its progress is reported in percent of the run.
PERCENT = 100.0


@dataclass(frozen=True)
class BenchSettings:
    """How long and on what input to measure."""

    batch: int = 1
    size: tuple[int, int] | None = None
    warmup_ms: float = 500.0
    iterations: int = 50
    duration_s: float = 5.0
    seed: int = 0
    placement: bool = True  # after timing: which provider ran each part of the graph
    power: bool = True  # energy over the timed loop (tegrastats on a Jetson, else RAPL), when the host has it
    block_ms: float = 100.0  # one runner's turn: timed iterations back to back for this long (at least one)
    settle_ms: float = 20.0  # idle before each turn when several runners interleave (their threads stop spinning)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise PocketganError(f"--batch must be >= 1, got {self.batch}")
        if self.iterations < 1:
            raise PocketganError(f"--iterations must be >= 1, got {self.iterations}")
        if self.duration_s < 0 or self.warmup_ms < 0:
            raise PocketganError("--duration and --warmup-ms must be >= 0")
        if self.block_ms < 0 or self.settle_ms < 0:
            raise PocketganError("--block-ms and --settle-ms must be >= 0")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise PocketganError(f"--size needs a positive height and width (H or HxW), got {self.size}")


@dataclass
class BenchResult:
    """One runner's measurement; :meth:`to_dict` is the JSON record (raw samples included)."""

    artifact: str
    backend: str
    providers: list[str]
    input_shape: list[int]
    batch: int
    threads: int | None
    warmup_iterations: int
    warmup_ms: float
    elapsed_s: float
    latency: LatencyStats
    samples_ms: list[float]
    peak_rss_mb: float | None
    versions: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    input_kind: str = "image"  # "latent": fresh random z every iteration
    placement: Placement | None = None  # None: skipped, or the backend cannot tell
    macs: int | None = None  # at input_shape, from the artifact's profile (None: it carries none)
    precision: str | None = None  # as the artifact says
    efficiency: Efficiency | None = None  # % of the compute limit, speedup ÷ MAC reduction (efficiency.annotate)
    power: dict[str, Any] = field(default_factory=lambda: no_power("not measured"))  # runtime.power record
    lead_in_iterations: int = 0  # untimed calls opening its turns in an interleaved run (bench module doc)

    @property
    def throughput(self) -> float:
        """Images per second (``batch / mean latency``)."""
        return self.latency.throughput(self.batch)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record; ``placement`` only when it was measured."""
        record = {
            "artifact": self.artifact,
            "backend": self.backend,
            "providers": self.providers,
            "input_shape": self.input_shape,
            "input_kind": self.input_kind,
            "batch": self.batch,
            "threads": self.threads,
            "iterations": self.latency.count,
            "warmup_iterations": self.warmup_iterations,
            "warmup_ms": self.warmup_ms,
            "lead_in_iterations": self.lead_in_iterations,
            "elapsed_s": self.elapsed_s,
            "latency_ms": self.latency.to_dict(),
            "throughput_ips": self.throughput,
            "peak_rss_mb": self.peak_rss_mb,
            "versions": self.versions,
            "host": self.host,
            "warnings": self.warnings,
            "samples_ms": self.samples_ms,
        }
        if self.placement is not None:
            record["placement"] = self.placement.to_dict()
        record.update(macs=self.macs, precision=self.precision, power=self.power)
        if self.efficiency is not None:
            record["efficiency"] = self.efficiency.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> BenchResult:
        """The result a :meth:`to_dict` record describes (e.g. one a remote ``pocketgan-bench`` wrote)."""
        placement = record.get("placement")
        if placement is not None:
            placement = Placement(**{k: v for k, v in placement.items() if k != "nodes"})
        efficiency = record.get("efficiency")
        return cls(
            artifact=record["artifact"], backend=record["backend"], providers=record["providers"],
            input_shape=record["input_shape"], batch=record["batch"], threads=record["threads"],
            warmup_iterations=record["warmup_iterations"], warmup_ms=record["warmup_ms"],
            elapsed_s=record["elapsed_s"], latency=LatencyStats(**record["latency_ms"]),
            samples_ms=record["samples_ms"], peak_rss_mb=record["peak_rss_mb"], versions=record.get("versions", {}),
            host=record.get("host", {}), warnings=record.get("warnings", []),
            input_kind=record.get("input_kind", "image"), placement=placement, macs=record.get("macs"),
            precision=record.get("precision"), efficiency=Efficiency(**efficiency) if efficiency else None,
            power=record.get("power") or no_power("not recorded"),
            lead_in_iterations=record.get("lead_in_iterations", 0),
        )  # fmt: skip


def make_input(runner: Runner, settings: BenchSettings) -> np.ndarray:
    """A reproducible random batch in the runner's value range (standard-normal latents for a latent input),
    shaped for ``settings``."""
    return BenchInput(runner, settings).first


class BenchInput:
    """What one runner is fed each iteration: one fixed random image batch, or for a latent-input artifact
    fresh standard-normal latents (and noise) every iteration, drawn outside the timed call."""

    def __init__(self, runner: Runner, settings: BenchSettings) -> None:
        self.runner = runner
        self.shape = runner.concrete_input_shape(settings.batch, settings.size)
        self.rng = np.random.default_rng(settings.seed)
        self.latent = runner.io.is_latent
        if self.latent:
            self.first = self.rng.standard_normal(self.shape, dtype=np.float32)
            self._feed(self.first)  # a latent artifact's other inputs are checked before any timing
        else:
            low, high = runner.io.value_range
            self.first = self.rng.uniform(low, high, size=self.shape).astype(np.float32)

    def _feed(self, z: np.ndarray) -> dict[str, np.ndarray]:
        runner = self.runner
        return latent_feeds(runner.info.inputs, runner.io, z, [self.rng] * len(z), None, runner.name)

    def feed(self) -> dict[str, np.ndarray]:
        """A value for every input: the fixed image batch, or fresh latents (and noise)."""
        if not self.latent:
            return {self.runner.input_name: self.first}
        return self._feed(self.rng.standard_normal(self.shape, dtype=np.float32))

    def time_once(self) -> int:
        """Nanoseconds for one run (the output is materialized by the backend); new latents are drawn first."""
        if not self.latent:
            start = time.perf_counter_ns()
            self.runner.run(self.first)
            return time.perf_counter_ns() - start
        feed = self._feed(self.rng.standard_normal(self.shape, dtype=np.float32))
        start = time.perf_counter_ns()
        self.runner.run_feed(feed)
        return time.perf_counter_ns() - start


def benchmark(
    runners: Sequence[Runner],
    settings: BenchSettings,
    progress: ProgressCallback | None = None,
) -> list[BenchResult]:
    """Measure ``runners`` interleaved and return one :class:`BenchResult` each, in the same order.

    ``progress`` receives a "warm-up" task, then a "timing" task (``completed`` of 100 percent), then a
    "placement" task unless ``settings.placement`` is off.
    """
    if not runners:
        raise PocketganError("nothing to benchmark")
    inputs = [BenchInput(r, settings) for r in runners]  # validate every shape before any timing
    what = f"{len(runners)} artifact{'s' if len(runners) > 1 else ''}"
    with ProgressTask(progress, f"warm-up ({what})"):
        warmup_counts = _warm_up(runners, inputs, settings.warmup_ms)
    meter = open_meter() if settings.power else None
    with ProgressTask(progress, f"timing {what}", PERCENT) as task, measuring(meter) as energy:
        loop = _timed_rounds(inputs, settings, task)
    samples, elapsed = loop.samples, loop.elapsed_s
    rss = peak_rss_mb()
    host = host_record()
    results = [
        _result(runner, batch, settings, warmups, elapsed, timed, rss, host)
        for runner, batch, warmups, timed in zip(runners, inputs, warmup_counts, samples, strict=True)
    ]
    for result, lead_ins in zip(results, loop.lead_ins, strict=True):
        result.lead_in_iterations = lead_ins
    frames = [count * settings.batch for count in loop.calls()]
    for result, record in zip(results, energy.records(frames, loop.busy_ms()), strict=True):
        result.power = record
    if settings.placement:
        with ProgressTask(progress, f"placement ({what})", len(runners)) as task:
            for result, batch in zip(task.track(results), inputs, strict=True):
                _record_placement(result, batch)
    return results


def _record_placement(result: BenchResult, batch: BenchInput) -> None:
    """``result.placement`` from the runner's backend (after timing, so it never disturbs it); a backend
    error becomes a warning: the timing stands."""
    try:
        result.placement = batch.runner.placement(batch.feed())
    except PocketganError as exc:
        result.warnings.append(f"placement not recorded: {exc}")


def _warm_up(runners: Sequence[Runner], inputs: Sequence[BenchInput], warmup_ms: float) -> list[int]:
    """Round robin until every runner has run for ``warmup_ms`` (and at least once); returns iteration counts."""
    spent_ns = [0] * len(runners)
    counts = [0] * len(runners)
    budget_ns = warmup_ms * 1e6
    while True:
        pending = [i for i in range(len(runners)) if counts[i] == 0 or spent_ns[i] < budget_ns]
        if not pending:
            return counts
        for i in pending:
            spent_ns[i] += inputs[i].time_once()
            counts[i] += 1


@dataclass
class TimedLoop:
    """What the timed loop measured per runner: its timed samples (ms) and its untimed lead-in calls."""

    samples: list[list[float]]
    lead_in_ms: list[float]
    lead_ins: list[int]
    elapsed_s: float = 0.0

    @classmethod
    def empty(cls, runners: int) -> TimedLoop:
        """Nothing measured yet, for ``runners`` runners."""
        return cls([[] for _ in range(runners)], [0.0] * runners, [0] * runners)

    def calls(self) -> list[int]:
        """Every call each runner made in the loop, lead-ins included (what its energy share paid for)."""
        return [len(timed) + extra for timed, extra in zip(self.samples, self.lead_ins, strict=True)]

    def busy_ms(self) -> list[float]:
        """Each runner's time inside its calls, lead-ins included."""
        return [sum(timed) + extra for timed, extra in zip(self.samples, self.lead_in_ms, strict=True)]


def _timed_rounds(inputs: Sequence[BenchInput], settings: BenchSettings, task: ProgressTask) -> TimedLoop:
    """Rounds of turns (module doc) until both minimums are met, reported to ``task`` after every turn."""
    loop = TimedLoop.empty(len(inputs))
    start = time.perf_counter()
    rounds = 0

    def progress() -> float:
        counts = min(len(timed) for timed in loop.samples) / settings.iterations
        seconds = (time.perf_counter() - start) / settings.duration_s if settings.duration_s else 1.0
        return min(counts, seconds)

    while True:
        for i, batch in enumerate(inputs):
            _turn(batch, i, loop, settings, several=len(inputs) > 1, done=lambda: progress() >= 1.0)
            task.update(completed=min(progress(), 1.0) * PERCENT, status=f"{rounds + 1} round{'s' if rounds else ''}")
        rounds += 1
        if progress() >= 1.0:
            loop.elapsed_s = time.perf_counter() - start
            return loop


def _turn(batch: BenchInput, i: int, loop: TimedLoop, settings: BenchSettings, *, several: bool,
          done: Callable[[], bool]) -> None:  # fmt: skip
    """Runner ``i``'s turn: settle (several runners), a lead-in call when its last one was short against the
    block, then timed calls back to back until ``block_ms`` has passed, or the whole run is done."""
    timed = loop.samples[i]
    if several and settings.settle_ms:
        time.sleep(settings.settle_ms / 1e3)
    if several and timed and timed[-1] < settings.block_ms / 4:
        loop.lead_in_ms[i] += batch.time_once() / 1e6
        loop.lead_ins[i] += 1
    turn_end = time.perf_counter() + settings.block_ms / 1e3
    while True:
        timed.append(batch.time_once() / 1e6)
        if time.perf_counter() >= turn_end or done():
            return


def _result(
    runner: Runner,
    batch: BenchInput,
    settings: BenchSettings,
    warmup_iterations: int,
    elapsed: float,
    samples: list[float],
    rss: float | None,
    host: dict[str, Any],
) -> BenchResult:
    latency = LatencyStats.from_samples(samples)
    warnings = list(runner.info.warnings)
    if latency.noisy:
        warnings.append(
            f"{runner.name}: latency varies a lot (CV {latency.cv:.0%} > {HIGH_CV:.0%}); "
            "close other programs, pin --threads, or raise --duration"
        )
    return BenchResult(
        artifact=runner.name,
        backend=runner.backend,
        providers=runner.providers,
        input_shape=list(batch.shape),
        batch=settings.batch,
        threads=runner.info.threads,
        warmup_iterations=warmup_iterations,
        warmup_ms=settings.warmup_ms,
        elapsed_s=elapsed,
        latency=latency,
        samples_ms=samples,
        peak_rss_mb=rss,
        versions=dict(runner.info.versions),
        host=host,
        warnings=warnings,
        input_kind=runner.io.input_kind,
        macs=macs_at(runner.info.profile, batch.shape),
        precision=runner.info.precision,
    )
