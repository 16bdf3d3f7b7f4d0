"""The exporter registry: every artifact format registers a builder under its ``--format`` name.

A builder is ``build(job: ExportJob, dest: Path) -> BuiltArtifact``: it writes the artifact
to ``dest`` (a staging path) and returns how to run it; :func:`pocketgan.export.export_model`
does the rest (parity against PyTorch, sidecar, atomic publish), the same for every format.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketgan.errors import PocketganError

if TYPE_CHECKING:
    from pocketgan.export.job import BuiltArtifact, ExportJob

Builder = Callable[["ExportJob", Path], "BuiltArtifact"]

BUILTIN_EXPORTER_MODULES = ("onnx_format", "coreml", "tensorrt")

_EXPORTERS: dict[str, Exporter] = {}


@dataclass(frozen=True)
class Exporter:
    """A registered format: its ``name``, artifact file name, supported precisions and builder."""

    name: str
    artifact: str
    precisions: tuple[str, ...]
    build: Builder


def register_exporter(
    name: str, *, artifact: str, precisions: tuple[str, ...] = ("fp32",)
) -> Callable[[Builder], Builder]:
    """Decorator: register ``build(job, dest) -> BuiltArtifact`` as the exporter for format ``name``.

    ``artifact`` is the file (or directory, e.g. ``model.mlpackage``) name written in the output
    directory; ``precisions`` are the ``--precision`` values it accepts.
    """

    def wrap(build: Builder) -> Builder:
        _EXPORTERS[name] = Exporter(name, artifact, tuple(precisions), build)
        return build

    return wrap


def load_builtin_exporters() -> None:
    """Import the built-in format modules so they register themselves."""
    for module in BUILTIN_EXPORTER_MODULES:
        importlib.import_module(f"pocketgan.export.{module}")


def list_exporters() -> list[str]:
    """Format names accepted by :func:`get_exporter` and ``pocketgan export --format``."""
    load_builtin_exporters()
    return sorted(_EXPORTERS)


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``, or a one-line error listing the known formats."""
    load_builtin_exporters()
    if name not in _EXPORTERS:
        raise PocketganError(f"unknown export format {name!r}; choose from {', '.join(list_exporters())}")
    return _EXPORTERS[name]
