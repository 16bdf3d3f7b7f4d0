"""Export stage: turn a generator into a deployable artifact (ONNX, ORT, OpenVINO, CoreML, TensorRT) plus its sidecar.

``export_model(load_model("resnet9:ngf=8"), "onnx", "out/", ExportOptions(size=(64, 64)))`` writes
``out/model.onnx`` and ``out/model.onnx.json`` after checking the artifact against PyTorch.
The formats table (:mod:`pocketgan.export.formats`) lists every format, what it needs and what runs it.
New formats plug in with :func:`register_exporter`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first attribute access, so that the formats table (pocketgan.export.formats) and the
# registry load without torch (``pocketgan export --help`` stays fast).
_LAZY = {
    "artifact_sha256": "api", "export_model": "api", "resolve_size": "api",
    "INT8_RANGES": "job", "PRECISIONS": "job", "BuiltArtifact": "job", "ExportJob": "job", "ExportOptions": "job",
    "ParityRule": "parity", "measure_parity": "parity",
    "Exporter": "registry", "get_exporter": "registry", "list_exporters": "registry", "register_exporter": "registry",
    "FORMATS": "formats", "FormatSpec": "formats", "format_spec": "formats", "parse_formats": "formats",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"pocketgan.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "FormatSpec",
    "format_spec",
    "parse_formats",
    "INT8_RANGES",
    "PRECISIONS",
    "BuiltArtifact",
    "ExportJob",
    "ExportOptions",
    "Exporter",
    "ParityRule",
    "artifact_sha256",
    "export_model",
    "get_exporter",
    "list_exporters",
    "measure_parity",
    "register_exporter",
    "resolve_size",
]
