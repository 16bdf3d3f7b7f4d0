"""The registry of runtime backends: ``register_backend("ort")``, ``list_backends()``, ``load(...)``.

A backend is a factory ``fn(artifact, *, threads, providers) -> Runner``. ONNX Runtime (``ort``)
and OpenVINO (``openvino``, with ``pocketgan[openvino]``) are built in; other levels of pocketgan
add their own (``pocketgan.torch_backend`` registers ``torch``), the runtime never imports them.
:func:`pick_backend` chooses one from the artifact, :func:`backends_for` lists all that can run it. A backend can also be announced by
module (:func:`register_backend_module`) so that it is imported only when first loaded.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import Registry

if TYPE_CHECKING:
    from pocketgan.runtime.runner import Runner

BackendFactory = Callable[..., "Runner"]

#: Runtime backends ``fn(artifact, *, threads, providers) -> Runner``; plugins: entry-point group
#: ``pocketgan.backends``. Built-in ones are announced by module and imported on first use.
BACKENDS: Registry[BackendFactory] = Registry("backend", group="pocketgan.backends")
BACKENDS.announce("ort", "pocketgan.runtime.ort_backend")
BACKENDS.announce("openvino", "pocketgan.runtime.openvino_backend")
BACKENDS.announce("tensorrt", "pocketgan.runtime.tensorrt_backend")
BACKENDS.announce("coreml", "pocketgan.runtime.coreml_backend")
BACKENDS.announce("executorch", "pocketgan.runtime.executorch_backend")
BACKENDS.announce("tflite", "pocketgan.runtime.tflite_backend")
BACKENDS.announce("ncnn", "pocketgan.runtime.ncnn_backend")

#: What each built-in backend loads (artifact suffixes) and the package it needs. The first backend
#: listing a suffix is the one chosen for it (the formats table's backend: pocketgan.export.formats).
BACKEND_SUFFIXES = {"ort": (".onnx", ".ort"), "openvino": (".xml", ".onnx"), "tensorrt": (".engine",),
                   "coreml": (".mlpackage",), "executorch": (".pte",), "tflite": (".tflite",), "ncnn": (".param",)}
BACKEND_PACKAGES = {"ort": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt", "coreml": "coremltools",
                    "executorch": "executorch", "tflite": "ai_edge_litert", "ncnn": "ncnn"}
#: Backends that run on one platform only (CoreML prediction needs macOS).
BACKEND_PLATFORMS = {"coreml": "darwin"}
#: The artifact files an export directory may hold, in the order one is picked.
EXPORT_FILES = ("model.onnx", "model.xml", "model.ort", "model.engine", "model.mlpackage", "model.pte", "model.tflite",
                "model.ncnn.param")


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: register ``fn(artifact, *, threads=None, providers=None) -> Runner`` under ``name``."""
    return BACKENDS.register(name)


def register_backend_module(name: str, module: str) -> None:
    """Announce backend ``name``, registered by importing ``module`` the first time it is loaded."""
    BACKENDS.announce(name, module)


def list_backends() -> list[str]:
    """Names accepted by :func:`load`."""
    return BACKENDS.names()


def load(
    artifact: str | os.PathLike[str],
    backend: str = "ort",
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> Runner:
    """Open ``artifact`` with ``backend`` and return a :class:`~pocketgan.runtime.runner.Runner`.

    ``threads`` sets the intra-op thread count (``None``: the library's default);
    ``providers`` overrides the backend's automatic choice of execution providers.
    """
    factory = BACKENDS.get(backend)
    if threads is not None and threads < 1:
        raise PocketganError(f"threads must be >= 1, got {threads}")
    return factory(artifact, threads=threads, providers=list(providers) if providers else None)


def artifact_file(artifact: str | os.PathLike[str]) -> Path:
    """``artifact``, or for an export directory the first of :data:`EXPORT_FILES` it holds."""
    path = Path(artifact)
    if path.is_dir():
        return next((path / name for name in EXPORT_FILES if (path / name).is_file()), path)
    return path


def artifact_path(artifact: str | os.PathLike[str], *, backend: str, export_file: str, what: str) -> Path:
    """``artifact``, or ``export_file`` in an export directory, for a backend that loads one suffix (the
    ``export_file``'s); one-line errors for a missing file or a file of another kind (``what``: its name)."""
    path = Path(artifact)
    if path.is_dir():
        path = path / export_file
    if not path.is_file():
        raise PocketganError(f"{artifact}: no such {what} (nor an export directory holding {export_file})")
    suffix = Path(export_file).suffix
    if path.suffix.lower() != suffix:
        raise PocketganError(f"{path}: the {backend} backend loads {suffix} files, not {path.suffix or 'no suffix'}")
    return path


def pick_backend(artifact: str | os.PathLike[str]) -> str:
    """The backend that loads ``artifact`` by default (by its suffix; ``ort`` when none claims it)."""
    suffix = artifact_file(artifact).suffix.lower()
    return next((name for name, suffixes in BACKEND_SUFFIXES.items() if suffix in suffixes), "ort")


def backends_for(artifact: str | os.PathLike[str]) -> list[str]:
    """Every installed backend that can load ``artifact`` (the default one first)."""
    suffix = artifact_file(artifact).suffix.lower()
    able = [name for name, suffixes in BACKEND_SUFFIXES.items() if suffix in suffixes and backend_installed(name)]
    default = pick_backend(artifact)
    return sorted(able, key=lambda name: name != default)


def backend_installed(name: str) -> bool:
    """Whether the package backend ``name`` needs is importable here (looked up, not imported)."""
    platform = BACKEND_PLATFORMS.get(name)
    if platform is not None and sys.platform != platform:
        return False
    package = BACKEND_PACKAGES.get(name)
    return package is None or importlib.util.find_spec(package) is not None
