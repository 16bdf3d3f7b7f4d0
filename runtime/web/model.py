"""What the browser page needs to know about the model: tensors, the size it runs at, the I/O spec, the card.

Read at build time the way the Python runtime reads it (:func:`pocketgan.runtime.ort_backend.load_ort`:
the spec embedded in the ONNX file first, the sidecar second), so the page's pre- and post-processing
is the runtime's (``x * scale + offset`` in the spec's channel order; outputs mapped back and rounded),
and written into the site as ``site.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.core.contract import ArtifactManifest
from pocketgan.core.embedded import EmbeddedMetadata
from pocketgan.core.errors import PocketganError
from pocketgan.runtime.ort_backend import OrtRunner, load_ort, resolve_onnx_path

DEFAULT_SIZE = (256, 256)
WEB_SUFFIXES = (".onnx", ".ort")


@dataclass
class ModelCard:
    """The model card the page shows: where the weights came from, their cost, and the export's parity."""

    source: str
    arch: str | None = None
    macs: int | None = None
    params: int | None = None
    profiled_at: list[int] | None = None
    precision: str = "fp32"
    parity: dict[str, Any] | None = None
    exporter: str | None = None
    opset: int | None = None
    sha256: str | None = None
    size_bytes: int = 0


@dataclass
class WebModel:
    """The model file the page runs and how to feed it (``shape``: the 1×C×H×W input at ``size``)."""

    file: str
    input: str
    output: str
    shape: list[int]
    io: dict[str, Any]
    card: ModelCard
    sidecar: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``model`` object of ``site.json``."""
        data = asdict(self)
        data.pop("warnings")
        return data


def describe_model(artifact: str | os.PathLike[str], size: tuple[int, int] | None = None) -> tuple[Path, WebModel]:
    """The ONNX (or ``.ort``) file behind ``artifact`` and its :class:`WebModel` at ``size`` (needed only for a
    dynamic input: default the exported or profiled size, else 256×256). One-line errors for other formats,
    latent-input generators and sizes the model does not take."""
    path = resolve_onnx_path(artifact)
    if path.suffix.lower() not in WEB_SUFFIXES:
        raise PocketganError(
            f"{artifact}: the browser demo runs ONNX (.onnx or .ort) in onnxruntime-web; export with --format onnx"
        )
    runner = load_ort(path, threads=1)
    if runner.io.is_latent:
        raise PocketganError(f"{artifact}: takes a latent; the browser demo translates images (try pocketgan demo)")
    embedded = EmbeddedMetadata.from_props(runner.session.get_modelmeta().custom_metadata_map, str(path))
    shape = list(runner.concrete_input_shape(1, size or _default_size(runner, embedded)))
    return path, WebModel(
        file=path.name,
        input=runner.input_name,
        output=runner.output_name,
        shape=shape,
        io=runner.io.to_dict(),
        card=_card(path, runner, embedded),
        sidecar=f"{path.name}.json" if runner.info.manifest is not None else None,
        warnings=list(runner.info.warnings),
    )


def _default_size(runner: OrtRunner, embedded: EmbeddedMetadata | None) -> tuple[int, int]:
    """The exported size (sidecar ``extra.input_size``, the spec's fixed size, the profile's input) or 256×256."""
    manifest = runner.info.manifest
    candidates: list[Any] = [
        manifest.extra.get("input_size") if manifest else None,
        runner.io.fixed_size,
        (embedded.profile.get("input_shape") or [None] * 4)[2:] if embedded else None,
    ]
    for candidate in candidates:
        if isinstance(candidate, (list, tuple)) and len(candidate) == 2 and all(isinstance(v, int) for v in candidate):
            return int(candidate[0]), int(candidate[1])
    return DEFAULT_SIZE


def _card(path: Path, runner: OrtRunner, embedded: EmbeddedMetadata | None) -> ModelCard:
    manifest: ArtifactManifest | None = runner.info.manifest
    source_spec = manifest.source if manifest else {}
    provenance = (embedded.provenance if embedded else {}) or source_spec.get("provenance") or {}
    origin = provenance.get("source") if isinstance(provenance.get("source"), dict) else provenance
    profile = (embedded.profile if embedded else {}) or source_spec.get("profile") or {}
    spec = provenance.get("spec") or source_spec.get("spec") or {}
    return ModelCard(
        source=str(origin.get("name") or origin.get("source") or path.name),
        arch=spec.get("arch"),
        macs=profile.get("macs"),
        params=profile.get("params"),
        profiled_at=profile.get("input_shape"),
        precision=manifest.precision if manifest else (embedded.precision if embedded else "fp32"),
        parity=manifest.parity.to_dict() if manifest and manifest.parity else None,
        exporter=manifest.exporter if manifest else None,
        opset=manifest.opset if manifest else None,
        sha256=manifest.sha256 if manifest else None,
        size_bytes=path.stat().st_size,
    )
