"""``pocketgan-bench --remote``: a real SSH round trip to an in-process asyncssh server on the loopback address.

The server (throwaway host and client keys, a free port, SFTP on) runs every command for real in a
subprocess on this machine, so "the device" is this machine with this venv's Python as its
``--remote-python``: the artifacts are really copied, really benchmarked by another process, and the
JSON really fetched back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.remote import RemoteTarget, bundle

from conftest import FAST

asyncssh = pytest.importorskip("asyncssh")

USER = "tester"


class LoopbackDevice:
    """An SSH server on 127.0.0.1 in a background thread; ``drop_on`` closes the connection mid-command."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.identity = root / "id_ed25519"
        self.identity.write_bytes(self.client_key.export_private_key())
        self.identity.chmod(0o600)
        self.home = root / "device-home"
        self.home.mkdir()
        self.drop_on: str | None = None
        self.commands: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.acceptor = self._call(self._listen())
        self.port = self.acceptor.get_port()
        self.target = f"{USER}@127.0.0.1:{self.port}"

    def _call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _listen(self):
        authorized = asyncssh.import_authorized_keys(self.client_key.export_public_key().decode())
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[self.host_key], authorized_client_keys=authorized,
            process_factory=self._run, sftp_factory=True, allow_scp=False,
        )  # fmt: skip

    async def _run(self, process) -> None:
        """Execute the command for real; under ``drop_on``, start it, then drop the connection mid-run."""
        command = process.command
        self.commands.append(command)
        proc = await asyncio.create_subprocess_shell(
            command, cwd=self.home, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        if self.drop_on and self.drop_on in command:
            await asyncio.sleep(0.3)
            process.channel.get_connection().abort()
            os.killpg(proc.pid, signal.SIGKILL)  # the shell and the bench it started, as sshd's hang-up would
            await proc.communicate()  # drain the pipes so the transport closes inside the loop
            return
        out, err = await proc.communicate()
        process.stdout.write(out.decode())
        process.stderr.write(err.decode())
        process.exit(proc.returncode)

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"

    async def _cancel_the_rest(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.acceptor.close()
        self._call(self.acceptor.wait_closed())
        self._call(self._cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    server = LoopbackDevice(tmp_path_factory.mktemp("device"))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def own_ssh_home(tmp_path, monkeypatch, device):
    """A HOME of the test's own: ~/.ssh/known_hosts trusts the loopback device, the user's ~/.ssh is unused."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(device.known_hosts_line())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    device.drop_on = None
    return home


@pytest.fixture
def device_tmp(tmp_path) -> Path:
    """The device's ``--remote-dir`` (this machine's, so nothing is left in /tmp)."""
    path = tmp_path / "device-tmp"
    path.mkdir()
    return path


def remote_args(device, *more: str) -> list[str]:
    return ["--remote", device.target, "--identity", str(device.identity), "--remote-python", sys.executable, *more]


def test_two_artifacts_benchmarked_interleaved_on_the_device(bench, artifacts, device, tmp_path, device_tmp):
    other = tmp_path / "other"  # the same file name in another folder: they must not collide on the device
    other.mkdir()
    for path in (artifacts.static, artifacts.static.with_name("static.onnx.json")):
        shutil.copy(path, other / path.name)
    second = other / "static.onnx"
    run = bench("pocketgan-bench", artifacts.static, second, artifacts.bare, *FAST, "--baseline", second,
                *remote_args(device, "--remote-dir", str(device_tmp)))  # fmt: skip
    assert run.code == 0, run.err
    first, again, bare = run.results
    assert (first["artifact"], again["artifact"]) == (str(artifacts.static), str(second))  # local names back
    assert min(r["iterations"] for r in run.results) >= 5  # FAST's --iterations, each
    assert first["elapsed_s"] == again["elapsed_s"] == bare["elapsed_s"]  # one timed phase on the device
    assert any(w.startswith(f"{artifacts.bare}: no embedded I/O spec and no sidecar") for w in bare["warnings"])
    assert first["threads"] == 1 and first["warmup_ms"] == 50  # the options were sent to the device
    assert first["efficiency"]["baseline"] == str(second)  # --baseline named the device's copy, then ours again
    remote = first["remote"]
    sizes = 2 * (artifacts.static.stat().st_size + artifacts.static.with_name("static.onnx.json").stat().st_size)
    sizes += artifacts.bare.stat().st_size  # no sidecar
    assert remote["target"] == device.target and remote["copied_bytes"] == sizes
    assert remote["pocketgan"] == metadata.version("pocketgan") and remote["python"] == sys.executable
    assert remote["round_trip_s"] >= remote["run_s"] > first["elapsed_s"] and remote["copy_s"] > 0
    assert first["host"]["cpu"] and first["host"]["python"]  # the device's own host record
    assert "power" in first and (first["power"]["source"] is not None or first["power"]["reason"])
    assert Path(remote["remote_dir"]).parent == device_tmp and list(device_tmp.iterdir()) == []  # cleaned up
    ran = [c for c in device.commands if "pocketgan.runtime.cli" in c][-1]
    assert "a0/static.onnx a1/static.onnx a2/bare.onnx" in ran and "--baseline a1/static.onnx" in ran and "--threads 1" in ran
    assert f"remote: {device.target}" in run.out
    p50_row = next(line for line in run.out.splitlines() if line.startswith("│ p50 ms"))
    assert [c.strip() for c in p50_row.split("│")[2:5]] == [f"{r['latency_ms']['p50_ms']:.3f}" for r in run.results]


def test_a_device_without_pocketgan_is_one_line_and_nothing_is_installed(bench, artifacts, device):
    bare = "/usr/bin/python3"
    if not Path(bare).exists():
        pytest.skip("no /usr/bin/python3 to stand for a device without pocketgan")
    args = remote_args(device)
    args[args.index(sys.executable)] = bare
    run = bench("pocketgan-bench", artifacts.static, *FAST, *args)
    assert run.code == 2 and run.results is None
    (line,) = run.err.strip().splitlines()
    assert line.startswith(f"error: {device.target}: {bare} there cannot import pocketgan.runtime")
    assert f"{bare} -m pip install 'pocketgan[runtime]'" in line and "installs nothing" in line
    assert not any("pip" in c for c in device.commands)


def test_a_connection_dropped_mid_run_is_one_line(bench, artifacts, device, device_tmp):
    device.drop_on = "pocketgan.runtime.cli"
    run = bench("pocketgan-bench", artifacts.static, *FAST, *remote_args(device, "--remote-dir", str(device_tmp)))
    assert run.code == 2 and run.results is None
    (line,) = run.err.strip().splitlines()
    assert line.startswith(f"error: {device.target}: connection lost while running the benchmark")
    (left,) = device_tmp.iterdir()  # no connection left to remove it with: the line says where it is
    assert line.endswith(f"; {left} may be left on the device")


def test_refused_unknown_host_key_and_bad_key_are_one_line(bench, artifacts, device, own_ssh_home, tmp_path):
    with_port = remote_args(device)
    with_port[1] = f"{USER}@127.0.0.1:1"  # nothing listens on port 1
    run = bench("pocketgan-bench", artifacts.static, *with_port)
    assert run.code == 2 and "cannot connect" in run.err and len(run.err.strip().splitlines()) == 1
    (own_ssh_home / ".ssh" / "known_hosts").write_text("")
    run = bench("pocketgan-bench", artifacts.static, *remote_args(device))
    assert run.code == 2 and "host key not trusted" in run.err and "--insecure-host-key" in run.err
    assert f"(ssh -p {device.port} {USER}@127.0.0.1 once)" in run.err
    stranger = tmp_path / "stranger"
    stranger.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    args = remote_args(device, "--insecure-host-key")
    args[args.index(str(device.identity))] = str(stranger)
    run = bench("pocketgan-bench", artifacts.static, *args)
    assert run.code == 2 and "authentication failed" in run.err and len(run.err.strip().splitlines()) == 1


@pytest.mark.parametrize("program", ["pocketgan-bench", "pocketgan"])  # `pocketgan bench --remote` too
def test_the_remote_device_error_comes_back_as_one_line(bench, artifacts, device, program):
    run = bench(program, artifacts.static, *FAST, "--batch", "2", *remote_args(device))
    assert run.code == 2
    (line,) = run.err.strip().splitlines()
    assert line.startswith(f"error: {device.target}: pocketgan-bench failed there: ") and "batch" in line


def test_targets_and_bundles():
    target = RemoteTarget.parse("nvidia@jetson.local:2222")
    assert (target.user, target.host, target.port, str(target)) == ("nvidia", "jetson.local", 2222,
                                                                     "nvidia@jetson.local:2222")  # fmt: skip
    assert RemoteTarget.parse("jetson").user is None and RemoteTarget.parse("jetson").port is None
    v6 = RemoteTarget.parse("me@[fe80::1]:22")
    assert (v6.host, v6.port, str(v6)) == ("fe80::1", 22, "me@[fe80::1]:22")
    with pytest.raises(PocketganError, match="expected user@host"):
        RemoteTarget.parse("me@host:ssh")


def test_a_bundle_carries_sidecar_and_companions(tmp_path):
    tmp_path = tmp_path / "export"
    tmp_path.mkdir()
    for name in ("model.xml", "model.bin", "model.xml.json", "net.ncnn.param", "net.ncnn.bin", "unrelated.bin"):
        (tmp_path / name).write_bytes(b"x" * 3)
    ir = bundle(str(tmp_path / "model.xml"), 0)
    assert sorted(p.name for p in ir.paths) == ["model.bin", "model.xml", "model.xml.json"] and ir.size == 9
    assert ir.remote_name == "a0/model.xml"
    assert sorted(p.name for p in bundle(str(tmp_path / "net.ncnn.param"), 3).paths) == ["net.ncnn.bin",
                                                                                        "net.ncnn.param"]
    folder = bundle(str(tmp_path), 1)  # an export directory goes as a whole
    assert folder.paths == (tmp_path,) and folder.size == 18 and folder.remote_name == f"a1/{tmp_path.name}"
    with pytest.raises(PocketganError, match="no such file"):
        bundle(str(tmp_path / "missing.onnx"), 0)
