"""The contract between pipeline stages: model directories and artifact sidecars.

A *model directory* holds ``model.safetensors`` and ``model.json`` (a
:class:`ModelManifest`): the architecture spec that rebuilds the generator
(per-layer widths included, so pruned models rebuild exactly), how the input is
normalized, where the weights came from, and their profile.

An *artifact* (``model.onnx``, a TensorRT engine, an ``.mlpackage``) carries a
sidecar ``<artifact>.json`` (an :class:`ArtifactManifest`) with its tensor names,
shapes, normalization, checksum and parity against PyTorch.

This module uses the standard library only: the torch-free runtime imports it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.core.errors import ManifestError
from pocketgan.core.fsio import read_json, write_json_atomic

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"


@dataclass
class GeneratorSpec:
    """Everything needed to rebuild a generator: ``arch`` + ``config`` + per-layer ``widths``.

    ``widths`` maps a conv module's name (as in the state dict) to its output
    channels; ``None`` means the architecture's default widths.
    """

    arch: str
    config: dict[str, Any] = field(default_factory=dict)
    widths: dict[str, int] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorSpec:
        _require(data, ("arch",), "spec")
        widths = data.get("widths")
        if widths is not None and not all(isinstance(v, int) and v > 0 for v in widths.values()):
            raise ManifestError("spec.widths must map layer names to positive integers")
        return cls(arch=str(data["arch"]), config=dict(data.get("config") or {}), widths=widths)


@dataclass
class IOSpec:
    """How pixels enter and leave the generator (NCHW float32, RGB)."""

    input_channels: int = 3
    output_channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    normalization: str = "x / 127.5 - 1 (uint8 RGB to [-1, 1])"
    size_multiple: int = 4
    fixed_size: tuple[int, int] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IOSpec:
        out = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        out.value_range = tuple(out.value_range)  # type: ignore[assignment]
        out.fixed_size = tuple(out.fixed_size) if out.fixed_size else None  # type: ignore[assignment]
        return out


@dataclass
class Profile:
    """Compute cost at one input shape. ``macs`` follows ``counter``'s convention."""

    macs: int
    params: int
    input_shape: list[int]
    counter: str = "fvcore"
    convention: str = "1 fused multiply-add = 1 MAC; ConvTranspose counted over input positions"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        _require(data, ("macs", "params", "input_shape"), "profile")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class ModelManifest:
    """``model.json`` of a model directory."""

    spec: GeneratorSpec
    io: IOSpec = field(default_factory=IOSpec)
    provenance: dict[str, Any] = field(default_factory=dict)
    profile: Profile | None = None
    weights_sha256: str | None = None
    format_version: int = FORMAT_VERSION
    kind: str = "generator"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        if not isinstance(data, dict):
            raise ManifestError("model manifest must be a JSON object")
        _check_version(data)
        _require(data, ("spec",), "model manifest")
        return cls(
            spec=GeneratorSpec.from_dict(data["spec"]),
            io=IOSpec.from_dict(data.get("io") or {}),
            provenance=dict(data.get("provenance") or {}),
            profile=Profile.from_dict(data["profile"]) if data.get("profile") else None,
            weights_sha256=data.get("weights_sha256"),
            format_version=int(data.get("format_version", FORMAT_VERSION)),
            kind=str(data.get("kind", "generator")),
        )

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> ModelManifest:
        """Read and validate ``model_dir/model.json``."""
        return cls.from_dict(read_json(Path(model_dir) / MODEL_JSON))

    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        return write_json_atomic(Path(model_dir) / MODEL_JSON, self.to_dict())


@dataclass
class TensorInfo:
    """One input or output of an artifact. Dynamic dims are strings (``"batch"``)."""

    name: str
    shape: list[int | str]
    dtype: str = "float32"


@dataclass
class Parity:
    """Agreement of an artifact with the PyTorch model on sample inputs."""

    max_abs: float
    mean_abs: float
    psnr_db: float
    atol: float
    samples: int
    passed: bool


@dataclass
class ArtifactManifest:
    """Sidecar ``<artifact>.json`` of an exported model."""

    format: str
    file: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    io: IOSpec = field(default_factory=IOSpec)
    precision: str = "fp32"
    exporter: str = ""
    opset: int | None = None
    parity: Parity | None = None
    source: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    kind: str = "artifact"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactManifest:
        if not isinstance(data, dict):
            raise ManifestError("artifact sidecar must be a JSON object")
        _check_version(data)
        _require(data, ("format", "file", "sha256", "inputs", "outputs"), "artifact sidecar")
        return cls(
            format=data["format"],
            file=data["file"],
            sha256=data["sha256"],
            inputs=[TensorInfo(**t) for t in data["inputs"]],
            outputs=[TensorInfo(**t) for t in data["outputs"]],
            io=IOSpec.from_dict(data.get("io") or {}),
            precision=data.get("precision", "fp32"),
            exporter=data.get("exporter", ""),
            opset=data.get("opset"),
            parity=Parity(**data["parity"]) if data.get("parity") else None,
            source=dict(data.get("source") or {}),
            extra=dict(data.get("extra") or {}),
            format_version=int(data.get("format_version", FORMAT_VERSION)),
        )

    @classmethod
    def for_artifact(cls, artifact: str | os.PathLike[str]) -> ArtifactManifest | None:
        """The sidecar next to ``artifact`` (``model.onnx`` → ``model.onnx.json``), if any."""
        path = sidecar_path(artifact)
        return cls.from_dict(read_json(path)) if path.exists() else None

    def save(self, artifact: str | os.PathLike[str]) -> Path:
        return write_json_atomic(sidecar_path(artifact), self.to_dict())


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    """``model.onnx`` → ``model.onnx.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def _check_version(data: dict[str, Any]) -> None:
    version = data.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ManifestError(
            f"manifest format_version {version!r} is newer than this pocketgan understands "
            f"({FORMAT_VERSION}); upgrade pocketgan"
        )


def _require(data: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ManifestError(f"{what} is missing {', '.join(missing)}")
