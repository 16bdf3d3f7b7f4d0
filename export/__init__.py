"""Export stage: turn a generator into a deployable artifact (ONNX, CoreML, TensorRT) plus its sidecar.

``export_model(load_model("resnet9:ngf=8"), "onnx", "out/", ExportOptions(size=(64, 64)))`` writes
``out/model.onnx`` and ``out/model.onnx.json`` after checking the artifact against PyTorch.
New formats plug in with :func:`register_exporter`.
"""

from pocketgan.export.api import artifact_sha256, export_model, resolve_size
from pocketgan.export.job import INT8_RANGES, PRECISIONS, BuiltArtifact, ExportJob, ExportOptions
from pocketgan.export.parity import ParityRule, measure_parity
from pocketgan.export.registry import Exporter, get_exporter, list_exporters, register_exporter

__all__ = [
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
