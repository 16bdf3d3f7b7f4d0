"""Shared fixtures: the CLI in-process, one torch thread, tiny real ONNX artifacts and the bench runner."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pocketgan.core.contract import ArtifactManifest, TensorInfo
from pocketgan.core.fsio import sha256_file
from pocketgan.models import create_generator

os.environ.setdefault("COLUMNS", "160")  # rich tables: don't wrap in captured output


SIZE = 32
FAST = ("--duration", "0.2", "--iterations", "5", "--warmup-ms", "50", "--threads", "1")


@dataclass
class Artifacts:
    """``static``: 1×3×32×32; ``dynamic``: batch/height/width dynamic; ``bare``: static, no sidecar."""

    model: torch.nn.Module
    static: Path
    dynamic: Path
    bare: Path


def export_onnx(model: torch.nn.Module, path: Path, *, dynamic: bool) -> Path:
    """Export ``model`` at 32×32 (opset 17, TorchScript exporter) and write its sidecar."""
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer chatter
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros(1, 3, SIZE, SIZE),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes} if dynamic else None,
        )
    shape: list[int | str] = ["batch", 3, "height", "width"] if dynamic else [1, 3, SIZE, SIZE]
    ArtifactManifest(
        format="onnx",
        file=path.name,
        sha256=sha256_file(path),
        inputs=[TensorInfo("input", shape)],
        outputs=[TensorInfo("output", list(shape))],
        io=model.io,
        opset=17,
        exporter="torch.onnx.export (tests)",
    ).save(path)
    return path


#: Markers for hardware no CI machine of this kind has. Under ``POCKETGAN_STRICT_SKIPS=1`` (``.ci/run`` sets it)
#: a skip in a test without one of them fails instead: a package or tool CI should have installed (chromium,
#: a phone runtime) cannot pass unnoticed as a skip.
HARDWARE_MARKERS = ("macos", "tensorrt", "gpu", "jetson")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("POCKETGAN_STRICT_SKIPS") == "1"
    if strict and report.skipped and not hasattr(report, "wasxfail"):
        if not any(item.get_closest_marker(marker) for marker in HARDWARE_MARKERS):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            report.outcome = "failed"
            report.longrepr = f"skipped without a hardware marker ({', '.join(HARDWARE_MARKERS)}): {reason}"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    """Tiny real ONNX generators (mobile-resnet:ngf=4, torch.onnx.export directly) with sidecars."""
    return _build(tmp_path_factory)


def _build(tmp_path_factory) -> Artifacts:
    torch.manual_seed(0)
    model = create_generator("mobile-resnet", ngf=4).eval()
    root = tmp_path_factory.mktemp("onnx")
    static = export_onnx(model, root / "static.onnx", dynamic=False)
    bare = root / "bare.onnx"
    bare.write_bytes(static.read_bytes())
    return Artifacts(model, static, export_onnx(model, root / "dynamic.onnx", dynamic=True), bare)


@dataclass
class BenchRun:
    code: int
    out: str
    err: str
    results: list[dict] | None


@pytest.fixture
def bench(cli, capsys, tmp_path):
    """``bench("pocketgan", args...)`` or ``bench("pocketgan-bench", args...)`` with ``--json`` read back."""
    from pocketgan.runtime.cli import main as bench_main

    def run(program: str, *args: object, json_out: bool = True) -> BenchRun:
        out_path = tmp_path / "results.json"
        out_path.unlink(missing_ok=True)
        argv = [str(a) for a in args] + (["-o", str(out_path)] if json_out else [])
        if program == "pocketgan":
            res = cli("bench", *argv)
            code, out, err = res.code, res.out, res.err
        else:
            capsys.readouterr()
            code = bench_main(argv)
            out, err = capsys.readouterr()
        results = json.loads(out_path.read_text()) if out_path.exists() else None
        return BenchRun(code, out, err, results)

    return run


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """``cli("profile", "resnet9:ngf=8")`` → :class:`CliResult` from ``pocketgan.cli.main``."""
    from pocketgan.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def tiny_student():
    """A seeded ``mobile-resnet:ngf=4`` (a :class:`~pocketgan.models.LoadedModel`), one per test module."""
    from pocketgan.models import load_model

    torch.manual_seed(0)
    return load_model("mobile-resnet:ngf=4")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny networks run fastest on one thread, and each pytest-xdist worker gets its own core."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
