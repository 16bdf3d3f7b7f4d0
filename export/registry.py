"""The exporter registry: every artifact format registers a builder under its ``--format`` name.

A builder is ``build(job: ExportJob, dest: Path) -> BuiltArtifact``: it writes the artifact
to ``dest`` (a staging path) and returns how to run it; :func:`pocketgan.export.export_model`
does the rest (parity against PyTorch, sidecar, atomic publish), the same for every format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketgan.core.registry import Registry

if TYPE_CHECKING:
    from pocketgan.export.job import BuiltArtifact, ExportJob

Builder = Callable[["ExportJob", Path], "BuiltArtifact"]

BUILTIN_EXPORTER_MODULES = ("onnx_format", "ort_format", "openvino_format", "coreml", "tensorrt", "executorch_format", "tflite_format", "ncnn_format")


#: Every artifact format; plugins: entry-point group ``pocketgan.exporters`` (an :class:`Exporter`).
EXPORTERS: Registry[Exporter] = Registry(
    "export format", group="pocketgan.exporters", builtin_modules=[f"pocketgan.export.{m}" for m in BUILTIN_EXPORTER_MODULES]
)


@dataclass(frozen=True)
class Exporter:
    """A registered format: its ``name``, artifact file name, supported precisions and builder."""

    name: str
    artifact: str
    precisions: tuple[str, ...]
    build: Builder


def register_exporter(
    name: str, *, artifact: str | None = None, precisions: tuple[str, ...] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator: register ``build(job, dest) -> BuiltArtifact`` as the exporter for format ``name``.

    ``artifact`` is the file (or directory, e.g. ``model.mlpackage``) name written in the output
    directory; ``precisions`` are the ``--precision`` values it accepts. Both default to the
    format's row in :data:`pocketgan.export.formats.FORMATS` (a plugin without a row must give
    ``artifact``; its precisions default to fp32).
    """
    from pocketgan.export.formats import FORMATS

    row = FORMATS.get(name)
    if artifact is None and row is None:
        raise TypeError(f"register_exporter({name!r}) needs artifact= (no row in the formats table)")
    artifact = artifact or row.artifact  # type: ignore[union-attr]
    precisions = precisions or (row.precisions if row else ("fp32",))

    def wrap(build: Builder) -> Builder:
        EXPORTERS.register(name, Exporter(name, artifact, tuple(precisions), build))
        return build

    return wrap


def list_exporters() -> list[str]:
    """Format names accepted by :func:`get_exporter` and ``pocketgan export --format``."""
    return EXPORTERS.names()


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``, or a one-line error listing the known formats."""
    return EXPORTERS.get(name)
