"""``pocketgan-bench``: benchmark exported artifacts with ONNX Runtime or OpenVINO, no torch needed.

The options are defined once here; ``pocketgan bench`` registers the same command
(:func:`add_bench_command`) after adding its ``torch`` backend. (No ``from __future__ import
annotations``: typer reads the command's annotations, which close over local variables.)
"""

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pocketgan.core.cli import run_app
from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_size
from pocketgan.runtime.backend_choice import AUTO, fastest_lines, resolve_backends
from pocketgan.runtime.registry import list_backends, pick_backend

if TYPE_CHECKING:
    from pocketgan.runtime.bench import BenchResult

ArtifactsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="ARTIFACT",
        help="Artifacts to benchmark (ONNX files or export directories; model directories or "
        "architecture references for --backend torch). Several run interleaved.",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", min=1, help="Intra-op threads (default: the backend's choice).")
]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Images per run (needs a dynamic batch unless 1).")]
SizeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--size", metavar="H|HxW",
        help="Input size, e.g. 256 or 256x320 (required when the artifact's size is dynamic).",
    ),
]
WarmupOpt = Annotated[float, typer.Option("--warmup-ms", min=0, help="Untimed warm-up per artifact, in milliseconds.")]
IterationsOpt = Annotated[int, typer.Option("--iterations", min=1, help="Timed iterations per artifact, at least.")]
DurationOpt = Annotated[float, typer.Option("--duration", min=0, help="Timed seconds, at least.")]
BlockOpt = Annotated[
    float,
    typer.Option("--block-ms", min=0, help="One artifact's turn: timed iterations back to back for this long."),
]
SettleOpt = Annotated[
    float,
    typer.Option("--settle-ms", min=0, help="Idle pause before each turn when several artifacts interleave, so "
                 "the previous runtime's worker threads stop spinning."),
]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--out", "-o", metavar="PATH", help="Write the results (raw samples included) as JSON to PATH."),
]
PlacementOpt = Annotated[
    bool,
    typer.Option(
        "--placement/--no-placement",
        help="After timing, record which provider (or device) ran each part of the graph: a short "
        "profiled onnxruntime run, or OpenVINO's runtime graph with its layer precisions.",
    ),
]
LegacyJsonOpt = Annotated[Optional[Path], typer.Option("--json", hidden=True, help="Old spelling of --out.")]
BaselineOpt = Annotated[
    Optional[str],
    typer.Option(
        "--baseline", metavar="ARTIFACT",
        help="The ARTIFACT the others are compared with (speedup ÷ MAC reduction; default: the first of several).",
    ),
]
ComputeLimitOpt = Annotated[
    str,
    typer.Option(
        "--compute-limit", metavar="cached|refresh|off",
        help="Each artifact's % of this host's compute limit: a GEMM probe run once per host and thread count and "
        "cached under $POCKETGAN_CACHE/host (refresh: probe again, e.g. on a quieter machine; off: skip).",
    ),
]
PowerOpt = Annotated[
    bool,
    typer.Option(
        "--power/--no-power",
        help="Record energy per frame over the timed loop: tegrastats power rails on a Jetson, RAPL CPU package "
        "energy on Linux (/sys/class/powercap); the JSON says why when the host has neither.",
    ),
]
LockClocksOpt = Annotated[
    bool,
    typer.Option(
        "--lock-clocks", help="Jetson: run jetson_clocks for the run (max, fixed clocks), restore the state after."
    ),
]
_REMOTE = "Benchmark on a device over SSH (pocketgan\\[remote])"
RemoteOpt = Annotated[
    Optional[str],
    typer.Option(
        "--remote", metavar="USER@HOST[:PORT]", rich_help_panel=_REMOTE,
        help="Copy the ARTIFACTs (with sidecars) to the device, run pocketgan-bench there with these options, "
        "bring the JSON back with the device's host record. Host keys: ~/.ssh/known_hosts.",
    ),
]  # fmt: skip
RemotePythonOpt = Annotated[
    str,
    typer.Option("--remote-python", metavar="PATH", rich_help_panel=_REMOTE,
                 help="The device's Python that has pocketgan\\[runtime]."),
]  # fmt: skip
IdentityOpt = Annotated[
    Optional[Path],
    typer.Option("--identity", metavar="KEY", rich_help_panel=_REMOTE,
                 help="Private key file (default: ssh-agent and ~/.ssh/id_*)."),
]  # fmt: skip
RemoteDirOpt = Annotated[
    Optional[str],
    typer.Option("--remote-dir", metavar="DIR", rich_help_panel=_REMOTE,
                 help="Where on the device the temporary copy goes (default: its temp dir)."),
]  # fmt: skip
InsecureHostKeyOpt = Annotated[
    bool,
    typer.Option("--insecure-host-key", rich_help_panel=_REMOTE,
                 help="Accept any host key (a lab network only: no protection from a man in the middle)."),
]  # fmt: skip
#: Parameters that stay on this machine under --remote; every other option given is sent to the device.
REMOTE_ONLY = ("remote", "remote_python", "identity", "remote_dir", "insecure_host_key", "out", "legacy_json")


def add_bench_command(app: typer.Typer, name: str | None = "bench", backends: Sequence[str] | None = None) -> None:
    """Register the benchmark command on ``app`` for ``backends`` (default: all registered).

    ``--backend`` is hidden when only one backend is offered.
    """
    offered = list(backends or list_backends())
    choices = ", ".join([*offered, AUTO])

    @app.command(name=name)
    def bench(
        ctx: typer.Context,
        artifacts: ArtifactsArg,
        backend: Annotated[
            Optional[list[str]],
            typer.Option(
                "--backend",
                help=f"Runtime backend ({choices}; default: the artifact's own, .onnx/.ort ort, .xml openvino): "
                "once for all ARTIFACTs, once per ARTIFACT in order, or auto: every installed backend that can "
                "run each ARTIFACT, interleaved, and which is fastest here.",
                show_default=False,
            ),
        ] = None,
        threads: ThreadsOpt = None,
        batch: BatchOpt = 1,
        size: SizeOpt = None,
        warmup_ms: WarmupOpt = 500.0,
        iterations: IterationsOpt = 50,
        duration: DurationOpt = 5.0,
        block_ms: BlockOpt = 100.0,
        settle_ms: SettleOpt = 20.0,
        out: OutOpt = None,
        placement: PlacementOpt = True,
        baseline: BaselineOpt = None,
        compute_limit: ComputeLimitOpt = "cached",
        power: PowerOpt = True,
        lock_clocks: LockClocksOpt = False,
        remote: RemoteOpt = None,
        remote_python: RemotePythonOpt = "python3",
        identity: IdentityOpt = None,
        remote_dir: RemoteDirOpt = None,
        insecure_host_key: InsecureHostKeyOpt = False,
        legacy_json: LegacyJsonOpt = None,
    ) -> None:
        """Measure latency and throughput: warm up, then time ARTIFACTs interleaved in turns of back-to-back runs."""
        if remote is not None:  # the remote options are read from ctx
            from pocketgan.runtime.remote import run_remote_from_cli

            run_remote_from_cli(ctx, artifacts, REMOTE_ONLY)
            return
        loads, backends = resolve_backends(artifacts, backend, offered)
        run_bench(loads, backends=backends, threads=threads, batch=batch,
                  size=parse_size(size) if size is not None else None, warmup_ms=warmup_ms, iterations=iterations,
                  duration=duration, json_path=out or legacy_json, placement=placement, baseline=baseline,
                  compute_limit=compute_limit, power=power, lock_clocks=lock_clocks, block_ms=block_ms,
                  settle_ms=settle_ms)  # fmt: skip


def run_bench(
    artifacts: Sequence[str],
    *,
    backends: Sequence[str] | None = None,
    threads: int | None = None,
    batch: int = 1,
    size: tuple[int, int] | None = None,
    warmup_ms: float = 500.0,
    iterations: int = 50,
    duration: float = 5.0,
    json_path: str | os.PathLike[str] | None = None,
    placement: bool = True,
    baseline: str | None = None,
    compute_limit: str = "cached",
    power: bool = True,
    lock_clocks: bool = False,
    block_ms: float = 100.0,
    settle_ms: float = 20.0,
) -> list["BenchResult"]:
    """Load every artifact (``backends[i]``, default ort), benchmark them interleaved, print a table, write JSON.

    Progress is drawn on stderr (terminals only) by :class:`~pocketgan.runtime.console.RichProgress`,
    which redraws only between timed iterations, so no refresh thread competes with the measured work.
    ``baseline`` (default: the first of several artifacts) is what speedup ÷ MAC reduction compares with;
    ``compute_limit`` (``cached``, ``refresh`` or ``off``) reads or probes the host compute limit when an artifact
    carries its MACs.
    ``power`` records energy per frame where the host can measure it (:mod:`pocketgan.runtime.power`);
    ``lock_clocks`` runs ``jetson_clocks`` around the whole run and restores the clocks after, even on error.
    ``block_ms`` and ``settle_ms`` shape the interleaving (:mod:`pocketgan.runtime.bench`).
    """
    from pocketgan.runtime.bench import BenchSettings, benchmark
    from pocketgan.runtime.compute_limit import limit_if_needed
    from pocketgan.runtime.efficiency import annotate, check_baseline
    from pocketgan.runtime.console import RichProgress, console, err_console
    from pocketgan.runtime.power import locked_clocks
    from pocketgan.runtime.registry import load
    from pocketgan.runtime.report import print_results, write_results_json

    settings = BenchSettings(batch, tuple(size) if size else None, warmup_ms, iterations, duration, placement=placement,
                             power=power, block_ms=block_ms, settle_ms=settle_ms)  # fmt: skip
    if json_path is not None and Path(json_path).is_dir():
        raise PocketganError(f"-o/--out {json_path} is a directory; give a file name")
    baseline = check_baseline(baseline, artifacts)
    backends = list(backends or [pick_backend(a) for a in artifacts])
    runners = [load(a, backend=b, threads=threads) for a, b in zip(artifacts, backends, strict=True)]
    with locked_clocks(lock_clocks), RichProgress(err_console) as bar:
        limit = limit_if_needed(runners, threads, compute_limit, progress=bar)
        results = benchmark(runners, settings, progress=bar)
    annotate(results, limit, baseline)
    print_results(results, console, err_console)
    for line in fastest_lines(results):
        console.print(line, soft_wrap=True, markup=False)
    if json_path is not None:
        written = write_results_json(results, json_path)
        console.print(f"wrote {written}", soft_wrap=True, markup=False)
    return results


app = typer.Typer(
    name="pocketgan-bench",
    help="Benchmark exported generators with ONNX Runtime or OpenVINO (no torch needed).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
add_bench_command(app, name=None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pocketgan-bench``: user errors become one ``error:`` line and exit code 2."""
    return run_app(app, argv, "pocketgan-bench")


if __name__ == "__main__":
    sys.exit(main())
