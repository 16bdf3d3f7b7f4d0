"""Shared fixtures for the runtime and bench tests: tiny real ONNX generators with sidecars.

Built with ``torch.onnx.export`` directly (not the export stage) from ``mobile-resnet:ngf=4``.
This module holds no tests; ``test_runtime.py`` and ``test_bench.py`` import its fixtures.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pocketgan.manifest import ArtifactManifest, TensorInfo, sha256_file
from pocketgan.models import create_generator

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


_BUILT: list[Artifacts] = []  # one export per session, though two test modules import the fixture


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    if not _BUILT:
        _BUILT.append(_build(tmp_path_factory))
    return _BUILT[0]


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
        argv = [str(a) for a in args] + (["--json", str(out_path)] if json_out else [])
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
