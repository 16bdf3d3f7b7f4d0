"""``pocketgan-bench --remote user@host``: benchmark on the device the model will run on, over SSH.

One SSH connection (asyncssh, ``pip install 'pocketgan[remote]'``) does it all:

1. **check** that the device's Python has pocketgan's runtime (``python -c "import pocketgan.runtime"``);
   when it has not, one line says how to install it there. Nothing is ever installed.
2. **copy** every artifact with its sidecar and companion files (OpenVINO ``.bin``, ncnn ``.bin``,
   a ``.mlpackage`` or an export directory as a whole) by SFTP into a fresh remote temporary directory,
   one sub-directory per artifact so that two ``model.onnx`` never collide;
3. **run** ``python -m pocketgan.runtime.cli ARTIFACT... -o remote.json`` there with the same bench
   options (the artifacts interleave on the device as they do locally; ``--lock-clocks`` and the power
   record happen on the device);
4. **fetch** the JSON, put back the local artifact names, add a ``remote`` record (target, round trip,
   connect/copy/run/fetch seconds, bytes copied) beside the device's own ``host`` record, and remove
   the remote directory.

Host keys are checked against ``~/.ssh/known_hosts`` (and ``~/.ssh/config`` applies, as for ``ssh``);
``--insecure-host-key`` accepts any key, for a lab network only. A refused or dropped connection,
a failed authentication or an unknown host key is one ``error:`` line (exit 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.core.contract import sidecar_path
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.optional import require
from pocketgan.core.progress import ProgressCallback, ProgressTask

#: Files that travel with an artifact of this suffix (same stem): OpenVINO weights, ncnn weights.
COMPANIONS = {".xml": (".bin",), ".param": (".bin",)}
#: The JSON the device writes, inside the remote directory.
REMOTE_JSON = "remote.json"
_CHECK = ("import importlib.metadata as m, sys, pocketgan.runtime; "
          "print(m.version('pocketgan')); print(sys.executable)")
_MKDTEMP = "import sys, tempfile; print(tempfile.mkdtemp(prefix='pocketgan-bench-', dir=sys.argv[1] or None))"
_RMTREE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
CONNECT_TIMEOUT_S = 20
KEEPALIVE_S = 10  # a dead link is noticed after 3 unanswered keepalives


@dataclass(frozen=True)
class RemoteTarget:
    """Where to benchmark: ``user@host[:port]`` and how to get there."""

    host: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    identity: Path | None = None
    remote_dir: str | None = None
    insecure_host_key: bool = False

    @classmethod
    def parse(cls, spec: str, **options: Any) -> RemoteTarget:
        """``user@host``, ``host:2222``, ``user@[::1]:2222`` → a target (``options``: the other fields)."""
        user, _, hostport = spec.rpartition("@")
        host, port = hostport, None
        if hostport.startswith("["):  # [IPv6]:port
            host, _, rest = hostport[1:].partition("]")
            port = rest.removeprefix(":") or None
        elif hostport.count(":") == 1:
            host, port = hostport.split(":")
        if not host or (port is not None and not port.isdigit()):
            raise PocketganError(f"--remote {spec!r}: expected user@host or user@host:port")
        return cls(host, user or None, int(port) if port else None, **options)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}{f':{self.port}' if self.port else ''}"

    def ssh_command(self) -> str:
        """The ``ssh`` command line that reaches this target (to accept its host key once)."""
        return shlex.join(["ssh", *(["-p", str(self.port)] if self.port else []),
                           f"{self.user + '@' if self.user else ''}{self.host}"])  # fmt: skip

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``asyncssh.connect`` (asyncssh's defaults for what is not given)."""
        options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "keepalive_interval": KEEPALIVE_S}
        if self.user:
            options["username"] = self.user
        if self.port:
            options["port"] = self.port
        if self.identity is not None:
            if not self.identity.is_file():
                raise PocketganError(f"--identity {self.identity}: no such file")
            options["client_keys"] = [str(self.identity)]
        if self.insecure_host_key:
            options["known_hosts"] = None
        return options


@dataclass(frozen=True)
class Bundle:
    """One artifact's files to copy and its path on the device, relative to the remote directory."""

    artifact: str
    paths: tuple[Path, ...]
    remote_name: str

    @property
    def subdir(self) -> str:
        return self.remote_name.split("/", 1)[0]

    @property
    def size(self) -> int:
        """Bytes to copy (directories walked)."""
        return sum(f.stat().st_size for p in self.paths for f in _files(p))


def bundle(artifact: str, index: int) -> Bundle:
    """The files of ``artifact``: itself (a file or a whole directory), its sidecar, its companion files."""
    path = Path(artifact)
    if not path.exists():
        raise PocketganError(f"{artifact}: no such file or directory")
    paths = [path, sidecar_path(path)]
    paths += [path.with_suffix(suffix) for suffix in COMPANIONS.get(path.suffix.lower(), ())]
    return Bundle(artifact, tuple(p for p in paths if p.exists()), f"a{index}/{path.name}")


def _files(path: Path) -> Iterator[Path]:
    yield from (f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]


@dataclass
class RemoteRecord:
    """The ``remote`` record of each result: where, with what, and how long each step took."""

    target: str
    python: str
    pocketgan: str | None = None
    remote_dir: str | None = None
    copied_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # connect, check, copy, run, fetch, cleanup

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "python": self.python, "pocketgan": self.pocketgan, "remote_dir": self.remote_dir,
            "copied_bytes": self.copied_bytes, "round_trip_s": sum(self.seconds.values()),
            **{f"{step}_s": s for step, s in self.seconds.items()},
        }  # fmt: skip


class _Session:
    """One SSH connection's work; ``step`` names what it is doing, for the error line."""

    def __init__(self, asyncssh: Any, target: RemoteTarget, progress: ProgressCallback | None) -> None:
        self.ssh = asyncssh
        self.target = target
        self.progress = progress
        self.record = RemoteRecord(str(target), target.python)
        self.key, self.step = "connect", "connecting"
        self.failed_at: str | None = None  # the step an error interrupted (cleanup comes after it)
        self.executable = target.python  # resolved to the device's sys.executable by check_runtime
        self._started = time.perf_counter()

    def timed(self, key: str, step: str) -> None:
        """Close the current step's clock (``seconds[key]``) and start the next one's."""
        now = time.perf_counter()
        self.record.seconds[self.key] = now - self._started
        self.key, self.step, self._started = key, step, now

    async def make_workdir(self, conn: Any) -> str:
        """A fresh temporary directory on the device (under ``--remote-dir`` when given)."""
        done = await self.python(conn, _MKDTEMP, self.target.remote_dir or "")
        if done.exit_status != 0:
            where = f" under {self.target.remote_dir}" if self.target.remote_dir else ""
            raise PocketganError(f"{self.target}: cannot make a directory{where}: {_last_line(done.stderr)}")
        self.record.remote_dir = str(done.stdout).strip()
        return self.record.remote_dir

    async def python(self, conn: Any, code: str, *args: str) -> Any:
        """Run ``python -c code args`` on the device."""
        return await conn.run(shlex.join([self.executable, "-c", code, *args]), check=False)

    async def check_runtime(self, conn: Any) -> None:
        """The device's pocketgan version, or one line saying how to install it there."""
        done = await self.python(conn, _CHECK)
        if done.exit_status == 0:  # the version, then the absolute interpreter (which a later `cd` cannot break)
            lines = str(done.stdout).strip().splitlines()
            self.record.pocketgan, self.executable = lines[0].strip(), lines[-1].strip()
            return
        python = self.target.python
        if done.exit_status == 127:
            raise PocketganError(f"{self.target}: no {python} on the device; give --remote-python PATH")
        why = _last_line(done.stderr) or f"exit {done.exit_status}"
        raise PocketganError(
            f"{self.target}: {python} there cannot import pocketgan.runtime ({why}); install it on the device "
            f"with: {python} -m pip install 'pocketgan[runtime]' (pocketgan-bench --remote installs nothing)"
        )

    async def copy(self, sftp: Any, workdir: str, bundles: Sequence[Bundle]) -> None:
        """Every bundle into ``workdir/a<i>/`` (SFTP), reported in bytes."""
        total = sum(b.size for b in bundles)
        self.record.copied_bytes = total
        with ProgressTask(self.progress, f"copy to {self.target}", total) as task:
            for b in bundles:
                await sftp.mkdir(f"{workdir}/{b.subdir}")
                seen: dict[str, int] = {}

                def moved(src: bytes, _dst: bytes, done: int, _total: int, seen: dict[str, int] = seen) -> None:
                    task.advance(done - seen.get(src, 0))
                    seen[src] = done

                await sftp.put([str(p) for p in b.paths], f"{workdir}/{b.subdir}", recurse=True,
                               preserve=True, progress_handler=moved)  # fmt: skip

    async def bench(self, conn: Any, workdir: str, argv: Sequence[str]) -> None:
        """``python -m pocketgan.runtime.cli argv -o remote.json`` in ``workdir``; its error line if it fails."""
        command = [self.executable, "-m", "pocketgan.runtime.cli", *argv, "-o", REMOTE_JSON]
        with ProgressTask(self.progress, f"bench on {self.target}"):
            done = await conn.run(f"cd {shlex.quote(workdir)} && {shlex.join(command)}", check=False)
        if done.exit_status is None:
            signal = f" (signal {done.exit_signal[0]})" if done.exit_signal else ""
            raise self.ssh.ConnectionLost(f"the channel closed before the run ended{signal}")
        if done.exit_status != 0:
            why = _last_line(done.stderr) or _last_line(done.stdout) or f"exit {done.exit_status}"
            raise PocketganError(f"{self.target}: pocketgan-bench failed there: {why.removeprefix('error: ')}")


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


async def _run(asyncssh: Any, target: RemoteTarget, bundles: Sequence[Bundle], argv: Sequence[str],
               session: _Session) -> list[dict[str, Any]]:  # fmt: skip
    """Connect, check, copy, bench, fetch, clean up; the device's records."""
    async with asyncssh.connect(target.host, **target.connect_options()) as conn:
        session.timed("check", "checking the device's pocketgan")
        await session.check_runtime(conn)
        workdir = await session.make_workdir(conn)
        try:
            async with conn.start_sftp_client() as sftp:
                session.timed("copy", "copying the artifacts")
                await session.copy(sftp, workdir, bundles)
                session.timed("run", "running the benchmark")
                await session.bench(conn, workdir, argv)
                session.timed("fetch", "fetching the results")
                async with sftp.open(f"{workdir}/{REMOTE_JSON}", "rb") as f:
                    records = json.loads(await f.read())
        except BaseException:
            session.failed_at = session.step
            await _remove(session, conn, workdir)
            raise
        session.timed("cleanup", "removing the remote directory")
        await _remove(session, conn, workdir)
        session.timed("done", "closing")
    return records


async def _remove(session: _Session, conn: Any, workdir: str) -> None:
    """Remove the remote directory; on a connection already lost, leave it (the first error is the news)."""
    try:
        await session.python(conn, _RMTREE, workdir)
    except (session.ssh.Error, OSError):
        pass


def remote_bench(
    artifacts: Sequence[str],
    target: RemoteTarget,
    options: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> list[dict[str, Any]]:
    """Benchmark ``artifacts`` on ``target`` with ``pocketgan-bench`` ``options``; the device's JSON records.

    Each record keeps the local artifact name, the device's ``host`` record, and gains ``remote``
    (:class:`RemoteRecord`). An ``options`` value naming a local artifact (``--baseline A``) is rewritten
    to its path on the device.
    """
    asyncssh = require("asyncssh", "remote", "pocketgan-bench --remote")
    bundles = [bundle(a, i) for i, a in enumerate(artifacts)]
    names = {b.artifact: b.remote_name for b in bundles}
    argv = [*names.values(), *(names.get(o, o) for o in options)]
    session = _Session(asyncssh, target, progress)
    try:
        records = asyncio.run(_run(asyncssh, target, bundles, argv, session))
    except PocketganError:
        raise
    except Exception as exc:  # asyncssh and socket errors: one line naming the step
        step = session.failed_at or session.step
        raise PocketganError(describe_failure(asyncssh, target, step, exc, session.record.remote_dir)) from None
    return [_localize(r, {v: k for k, v in names.items()}, session.record) for r in records]


def describe_failure(asyncssh: Any, target: RemoteTarget, step: str, exc: BaseException,
                     remote_dir: str | None = None) -> str:  # fmt: skip
    """The one line for an SSH failure at ``step`` (``remote_dir``: the device's directory, if made)."""
    why = first_line(exc)
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"{target}: authentication failed ({why}); give --identity KEY with a key the device accepts"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (f"{target}: host key not trusted ({why}); add it to ~/.ssh/known_hosts ({target.ssh_command()} "
                "once), or pass --insecure-host-key on a lab network")  # fmt: skip
    if isinstance(exc, (asyncssh.KeyImportError, asyncssh.KeyEncryptionError)):
        return f"--identity {target.identity}: cannot use the key ({why}); an unencrypted key or ssh-agent"
    if step == "connecting" and isinstance(exc, (OSError, asyncio.TimeoutError)):
        return f"{target}: cannot connect ({why})"
    if isinstance(exc, (asyncssh.Error, OSError, EOFError, asyncio.TimeoutError)):
        left = f"; {remote_dir} may be left on the device" if remote_dir else ""
        return f"{target}: connection lost while {step} ({why}){left}"
    return f"{target}: {type(exc).__name__} while {step}: {why}"


def _localize(record: dict[str, Any], local: dict[str, str], remote: RemoteRecord) -> dict[str, Any]:
    """The record with local artifact names (in the baseline and the warnings too) and the ``remote`` record."""
    record = {**record, "artifact": local.get(record["artifact"], record["artifact"]), "remote": remote.to_dict()}
    record["warnings"] = [_renamed(w, local) for w in record.get("warnings", [])]
    efficiency = record.get("efficiency")
    if efficiency and efficiency.get("baseline") in local:
        record["efficiency"] = {**efficiency, "baseline": local[efficiency["baseline"]]}
    if remote.pocketgan and remote.pocketgan != _local_version():
        mismatch = f"the device runs pocketgan {remote.pocketgan}, this host {_local_version()}"
        record["warnings"] = [*record["warnings"], mismatch]
    return record


def _renamed(text: str, local: dict[str, str]) -> str:
    """``text`` with every device path of an artifact (``a<i>/name``) replaced by its local name."""
    for remote_name in sorted(local, key=len, reverse=True):
        text = text.replace(remote_name, local[remote_name])
    return text


def _local_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pocketgan")
    except metadata.PackageNotFoundError:
        return "unknown"


def remote_line(record: dict[str, Any]) -> str:
    """``remote: user@host: round trip 3.2 s (connect 0.1 s, copy 1.2 MiB in 0.3 s, run 2.6 s, fetch 0.0 s)``."""
    r = record["remote"]
    copy = f"copy {r['copied_bytes'] / 2**20:.2f} MiB in {r.get('copy_s', 0):.2f} s"
    steps = ", ".join([f"connect {r.get('connect_s', 0):.2f} s", f"check {r.get('check_s', 0):.2f} s", copy,
                       f"run {r.get('run_s', 0):.1f} s", f"fetch {r.get('fetch_s', 0):.2f} s"])  # fmt: skip
    return f"remote: {r['target']}, pocketgan {r['pocketgan']}: round trip {r['round_trip_s']:.1f} s ({steps})"


def run_remote_bench(
    artifacts: Sequence[str],
    target: RemoteTarget,
    options: Sequence[str] = (),
    json_path: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """The CLI's ``--remote``: :func:`remote_bench`, the same table as a local run, the JSON written atomically."""
    from pocketgan.core.fsio import write_json_atomic
    from pocketgan.runtime.backend_choice import fastest_lines
    from pocketgan.runtime.bench import BenchResult
    from pocketgan.runtime.console import RichProgress, console, err_console
    from pocketgan.runtime.report import print_results

    if json_path is not None and Path(json_path).is_dir():
        raise PocketganError(f"-o/--out {json_path} is a directory; give a file name")
    with RichProgress(err_console) as bar:
        records = remote_bench(artifacts, target, options, progress=bar)
    results = [BenchResult.from_dict(r) for r in records]
    print_results(results, console, err_console)
    for line in [*fastest_lines(results), remote_line(records[0])]:
        console.print(line, soft_wrap=True, markup=False)
    if json_path is not None:
        console.print(f"wrote {write_json_atomic(json_path, records)}", soft_wrap=True, markup=False)
    return records


def run_remote_from_cli(ctx: Any, artifacts: Sequence[str], local_only: Sequence[str]) -> list[dict[str, Any]]:
    """``pocketgan-bench --remote``: the target from the command line's ``--remote`` options (a ``typer.Context``),
    every other option given forwarded to the device (:func:`forwarded_options`)."""
    p = ctx.params
    target = RemoteTarget.parse(p["remote"], python=p["remote_python"], identity=p["identity"],
                                remote_dir=p["remote_dir"], insecure_host_key=p["insecure_host_key"])  # fmt: skip
    return run_remote_bench(artifacts, target, forwarded_options(ctx, local_only), p["out"] or p.get("legacy_json"))


def forwarded_options(ctx: Any, skip: Sequence[str]) -> list[str]:
    """The bench options the user gave on this command line (a ``typer.Context``), as flags for the device.

    Options left at their default are not sent (the device applies the same defaults); ``skip`` names
    the parameters that stay here (``--remote`` and its kin, ``-o/--out``).
    """
    argv: list[str] = []
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name in skip:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name == "DEFAULT":
            continue
        value, flag = ctx.params[param.name], max(param.opts, key=len)
        if param.is_flag and param.secondary_opts:
            argv.append(flag if value else max(param.secondary_opts, key=len))
        elif param.is_flag:
            argv += [flag] if value else []
        else:
            for item in value if param.multiple else [value]:
                argv += [flag, str(item)]
    return argv
