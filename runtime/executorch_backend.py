"""The ExecuTorch backend (``executorch``): a ``.pte`` program run by ExecuTorch's runtime (``executorch.runtime``).

Needs ``pip install 'pocketgan[executorch]'``. The program's delegate runs where this host's runtime has
it: the pip wheel carries XNNPACK (the CPU path phones use), so an XNNPACK ``.pte`` runs here as on an
Android or iOS CPU; a CoreML, QNN or MediaTek program loads only on its device (one-line error here).

- **Threads**: ``threads`` sets the size of ExecuTorch's CPU threadpool (the one XNNPACK runs on) with
  ``portable_lib._unsafe_reset_threadpool``, before the program is loaded. The pool is process-wide and an
  XNNPACK program keeps the pool it was loaded with (resizing it under a loaded program leaves that program
  a dangling pool: it hangs or crashes on its next run), so every program loaded in one process runs with
  one thread count: a load asking for another while an earlier runner is alive is a one-line error (bench
  other counts in separate processes). ``None`` keeps the pool as it is (ExecuTorch's default: one thread
  per core) and records its size.
- **I/O spec**: the program's constant method ``pocketgan_metadata`` (the exporter embeds the pocketgan
  string map there, :data:`~pocketgan.core.embedded.EXECUTORCH_METADATA_METHOD`), else the sidecar.
- **Placement**: what ran inside the delegate, as ExecuTorch's inspector reported it at export (the
  sidecar's ``coverage`` record; the runtime itself has no per-op report without an ETDump build).
- **torch**: ExecuTorch's Python runtime is a pybind module linked against libtorch; it imports torch
  itself and takes and returns ``torch.Tensor`` values (numpy arrays are refused). This backend is the one
  runtime module that touches torch, for those two conversions, and only once a program is loaded;
  importing it imports neither. On a phone the C++ runtime needs no torch.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.contract import TensorInfo
from pocketgan.core.coverage import coverage_of
from pocketgan.core.embedded import EXECUTORCH_METADATA_METHOD
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.optional import require
from pocketgan.runtime.artifact_meta import describe_artifact, read_sidecar
from pocketgan.runtime.placement import Placement
from pocketgan.runtime.registry import artifact_path, register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

EXPORT_FILE = "model.pte"
#: The runners alive in this process (they all run on the one threadpool size).
_LIVE: weakref.WeakSet[ExecuTorchRunner] = weakref.WeakSet()
METHOD = "forward"
#: Where the delegated part runs (placement's provider names).
DELEGATED, PORTABLE = "delegate", "portable kernels"


class ExecuTorchRunner(Runner):
    """One loaded ExecuTorch program's ``forward`` method, with the threadpool size it runs with."""

    def __init__(self, program: Any, method: Any, info: RunnerInfo) -> None:
        super().__init__(info)
        self.program = program  # the method lives as long as its program
        self.method = method
        import torch  # ExecuTorch's pybindings take torch tensors (module docstring)

        self._tensor = torch.from_numpy

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 NCHW batch and return the first output as a float32 array (a copy)."""
        array = np.ascontiguousarray(batch, dtype=np.float32)
        try:
            outputs = self.method.execute([self._tensor(array)])
        except Exception as exc:  # shape mismatches, a delegate error: one line
            raise PocketganError(f"{self.name}: ExecuTorch failed on input {tuple(array.shape)}: {first_line(exc)}") from None
        return outputs[0].numpy().astype(np.float32, copy=True)

    def placement(self, feed: Any) -> Placement | None:
        """The delegated vs portable-kernel operator counts the exporter recorded (ExecuTorch's inspector), or
        ``None`` without a sidecar."""
        manifest = self.info.manifest
        coverage = coverage_of(manifest.extra) if manifest is not None else None
        if coverage is None:
            return None
        by_provider = {f"{coverage.backend} {DELEGATED}": coverage.delegated, PORTABLE: coverage.fallback}
        return Placement(source=f"sidecar coverage ({coverage.source}, at export)", first_choice=next(iter(by_provider)),
                         by_provider={k: v for k, v in by_provider.items() if v}, op_types={},
                         fallback_ops=dict(coverage.by_op))  # fmt: skip


@register_backend("executorch")
def load_executorch(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> ExecuTorchRunner:
    """Open a ``.pte`` (or an export directory holding ``model.pte``) with ExecuTorch's runtime."""
    if providers:
        raise PocketganError("the executorch backend takes no providers: the program's delegate is fixed at export")
    runtime_module = require("executorch.runtime", "executorch", "running ExecuTorch programs")
    threadpool = require("executorch.extension.pybindings.portable_lib", "executorch", "running ExecuTorch programs")
    path = resolve_path(artifact)
    sidecar = read_sidecar(path)
    if threads is not None:  # before loading: XNNPACK takes the pool when the method is initialized
        set_threads(threadpool, threads)
    threads = int(threadpool._threadpool_get_thread_count())
    try:
        with native_log_quiet():
            program = runtime_module.Runtime.get().load_program(path)
            method = program.load_method(METHOD)
    except Exception as exc:  # not a program, a delegate this runtime lacks, no forward method
        raise PocketganError(f"{path}: ExecuTorch cannot load the program ({first_line(exc)})") from None
    described = describe_artifact(path, embedded_props(program), sidecar)
    meta = method.metadata
    inputs = _tensors(meta.input_tensor_meta(0).sizes(), described.inputs, "input")
    outputs = _tensors(meta.output_tensor_meta(0).sizes(), described.outputs, "output")
    import executorch.version as et_version  # the wheel's version module

    info = RunnerInfo(
        name=str(artifact), backend="executorch", inputs=inputs, outputs=outputs, providers=[_delegate(sidecar)],
        manifest=described.manifest, threads=threads, warnings=described.warnings,
        versions={"executorch": et_version.__version__, "numpy": np.__version__},
        profile=described.profile, precision=described.precision, **({"io": described.io} if described.io else {}),
    )  # fmt: skip
    runner = ExecuTorchRunner(program, method, info)
    _LIVE.add(runner)
    return runner


def resolve_path(artifact: str | os.PathLike[str]) -> Path:
    """``artifact`` (a ``.pte``), or ``model.pte`` in an export directory; one-line errors."""
    return artifact_path(artifact, backend="executorch", export_file=EXPORT_FILE, what="ExecuTorch program")


def embedded_props(program: Any) -> dict[str, str]:
    """The ``pocketgan.*`` string map the exporter stored as the program's constant metadata method ({}: none)."""
    if EXECUTORCH_METADATA_METHOD not in program.method_names:
        return {}
    value = program.load_method(EXECUTORCH_METADATA_METHOD).execute([])[0]
    try:
        return {str(k): str(v) for k, v in json.loads(value).items()}
    except (TypeError, ValueError, AttributeError):
        return {}  # not ours: the sidecar (or the default) describes it


def set_threads(threadpool: Any, threads: int) -> None:
    """Resize ExecuTorch's CPU threadpool (process-wide) to ``threads``: only while no runner loaded with another
    size is alive (module docstring), else a one-line error."""
    current = int(threadpool._threadpool_get_thread_count())
    if current == threads:
        return
    if any(runner.info.threads != threads for runner in _LIVE):
        raise PocketganError(f"ExecuTorch's threadpool is process-wide and already runs a program with {current} "
                             f"thread{'s' * (current != 1)}: load programs with --threads {threads} in another process")  # fmt: skip
    with native_log_quiet():
        threadpool._unsafe_reset_threadpool(int(threads))


def _delegate(sidecar: Any) -> str:
    """The provider name: the sidecar's delegate (``XNNPACK``), else ``ExecuTorch``."""
    coverage = coverage_of(sidecar.extra) if sidecar is not None else None
    return f"ExecuTorch:{coverage.backend}" if coverage is not None else "ExecuTorch"


def _tensors(sizes: Sequence[int], declared: Sequence[TensorInfo], default: str) -> list[TensorInfo]:
    """The program's tensor (static sizes), named as declared (embedded or sidecar) or ``default``."""
    name = declared[0].name if declared else default
    return [TensorInfo(name, [int(d) for d in sizes], "float32")]


@contextmanager
def native_log_quiet() -> Iterator[None]:
    """Silence ExecuTorch's native log lines (cpuinfo probing, "Resetting threadpool") written straight to
    file descriptor 2 while loading; its errors still arrive as exceptions."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
