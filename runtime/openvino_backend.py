"""The OpenVINO backend (``openvino``): IR (``.xml`` + ``.bin``) or ONNX files on an OpenVINO device.

Needs ``pip install 'pocketgan[openvino]'``. The CPU plugin by default (``providers=["GPU"]`` or
``["NPU"]`` picks another device), with the latency performance hint, float32 inference precision
(the CPU plugin's bf16 default on AMX / AVX512-BF16 hosts would change the numbers), and
``threads`` as ``INFERENCE_NUM_THREADS``. The I/O spec comes from the artifact's ``rt_info``
(``pocketgan`` section of an IR, or an ONNX file's ``metadata_props``), else its sidecar.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.core.embedded import KEYS, PREFIX
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.optional import require
from pocketgan.runtime.artifact_meta import describe_artifact, read_sidecar
from pocketgan.runtime.placement import Placement, from_openvino_runtime_model
from pocketgan.runtime.registry import register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

LOADS = (".xml", ".onnx")
EXPORT_FILES = ("model.xml", "model.onnx")
DEFAULT_DEVICE = "CPU"
#: Compile settings besides the thread count.
COMPILE_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


class OpenVinoRunner(Runner):
    """A compiled OpenVINO model and one infer request."""

    def __init__(self, compiled: Any, info: RunnerInfo) -> None:
        super().__init__(info)
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 batch of the first input and return the first output as a float32 array (a copy)."""
        return self.run_feed({self.input_name: batch})

    def run_feed(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run with a value for every input by name; the first output as a float32 array (a copy)."""
        names = [t.name for t in self.info.inputs]
        missing = [name for name in names if name not in feed]
        if missing:
            raise PocketganError(f"{self.name}: no value for input {', '.join(missing)}")
        arrays = {name: np.ascontiguousarray(feed[name], dtype=np.float32) for name in names}
        try:
            self.request.infer(arrays)
        except Exception as exc:  # shape mismatches and device errors: one line
            shapes = ", ".join(f"{name} {tuple(a.shape)}" for name, a in arrays.items())
            raise PocketganError(f"{self.name}: OpenVINO failed on input {shapes}: {first_line(exc)}") from None
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)

    def placement(self, feed: Mapping[str, np.ndarray]) -> Placement | None:
        """The compiled model's runtime graph after a run of ``feed``: every executed layer under the device
        that ran it, with its runtime precision (``u8``/``i8`` for an int8 IR) and kernel."""
        self.run_feed(feed)  # the runtime graph is final once the model has run
        devices = [str(d) for d in self.compiled.get_property("EXECUTION_DEVICES")]
        return from_openvino_runtime_model(self.compiled.get_runtime_model(), devices, self.providers[0])


@register_backend("openvino")
def load_openvino(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> OpenVinoRunner:
    """Open an IR ``.xml``, an ONNX file or an export directory with OpenVINO; ``providers[0]`` is the device."""
    ov = require("openvino", "openvino", "running OpenVINO models")
    path = resolve_path(artifact)
    sidecar = read_sidecar(path)
    core = ov.Core()
    device = choose_device(core.available_devices, providers)
    try:
        model = core.read_model(str(path))
        described = describe_artifact(path, embedded_props(model), sidecar)
        config: dict[str, Any] = dict(COMPILE_CONFIG)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, device, config)
    except PocketganError:
        raise
    except Exception as exc:  # a truncated IR, a missing .bin, an op the device lacks
        raise PocketganError(f"{path}: OpenVINO cannot load the model ({first_line(exc)})") from None
    info = RunnerInfo(
        name=str(artifact), backend="openvino",
        inputs=_tensor_infos(compiled.inputs, described.inputs), outputs=_tensor_infos(compiled.outputs, described.outputs),
        providers=[str(d) for d in compiled.get_property("EXECUTION_DEVICES")],
        io=described.io or IOSpec(size_multiple=1), manifest=described.manifest,
        threads=int(compiled.get_property("INFERENCE_NUM_THREADS")) if threads else None,
        versions={"openvino": ov.get_version().split("-")[0], "numpy": np.__version__}, warnings=described.warnings,
        profile=described.profile, precision=described.precision,
    )  # fmt: skip
    return OpenVinoRunner(compiled, info)


def resolve_path(artifact: str | os.PathLike[str]) -> Path:
    """``artifact`` (``.xml`` or ``.onnx``), or ``model.xml`` / ``model.onnx`` in an export directory."""
    path = Path(artifact)
    if path.is_dir():
        path = next((path / name for name in EXPORT_FILES if (path / name).is_file()), path / EXPORT_FILES[0])
    if not path.is_file():
        raise PocketganError(f"{artifact}: no such OpenVINO IR or ONNX file")
    if path.suffix.lower() not in LOADS:
        raise PocketganError(f"{path}: the openvino backend loads {' or '.join(LOADS)} files, not {path.suffix}")
    return path


def choose_device(available: Sequence[str], requested: Sequence[str] | None) -> str:
    """``requested[0]`` (``CPU``, ``GPU``, ``NPU``) checked against ``available``, else the CPU."""
    if not requested:
        return DEFAULT_DEVICE
    device = requested[0].upper()
    if device.split(".")[0] not in {d.split(".")[0] for d in available}:
        raise PocketganError(f"OpenVINO device {device} is not available here (available: {', '.join(available)})")
    return device


def embedded_props(model: Any) -> dict[str, str]:
    """The ``pocketgan.*`` metadata of an ``openvino.Model``: an IR's ``rt_info["pocketgan"]`` or, for a
    model read from ONNX, its ``metadata_props`` (``rt_info["framework"]``)."""
    props = {}
    for key in KEYS:
        for section in (["pocketgan", key], ["framework", PREFIX + key]):
            if model.has_rt_info(section):
                props[PREFIX + key] = str(model.get_rt_info(section).astype(str))
                break
    return props


def _tensor_infos(ports: Sequence[Any], declared: Sequence[TensorInfo]) -> list[TensorInfo]:
    """Port names and shapes; dynamic dims take the declared name (``batch``) or ``dim<i>``."""
    infos = []
    for index, port in enumerate(ports):
        names = port.get_names()
        name = port.get_any_name() if names else f"port{index}"
        match = next((t for t in declared if t.name == name), declared[index] if index < len(declared) else None)
        shape: list[int | str] = []
        for i, dim in enumerate(port.get_partial_shape()):
            if dim.is_static:
                shape.append(dim.get_length())
            else:
                shape.append(match.shape[i] if match is not None and i < len(match.shape) else f"dim{i}")
        infos.append(TensorInfo(name, shape, "float32"))
    return infos
