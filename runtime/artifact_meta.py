"""What a backend knows about an artifact: its embedded metadata first, then the sidecar beside it.

Every backend calls :func:`describe_artifact` with the artifact's own string metadata (ONNX
``metadata_props``, OpenVINO ``rt_info``) and gets the I/O spec, the declared tensors and the
warnings to show: a bare ``model.onnx`` copied without its sidecar still translates correctly,
because the spec travels inside it (:mod:`pocketgan.core.embedded`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketgan.core.contract import ArtifactManifest, IOSpec, TensorInfo
from pocketgan.core.embedded import EmbeddedMetadata
from pocketgan.core.fsio import sha256_file


@dataclass
class ArtifactDescription:
    """The I/O spec (``None``: neither embedded nor in a sidecar), declared tensors, sidecar and warnings."""

    io: IOSpec | None
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    manifest: ArtifactManifest | None
    embedded: EmbeddedMetadata | None
    warnings: list[str] = field(default_factory=list)

    @property
    def io_source(self) -> str:
        """``"embedded"``, ``"sidecar"`` or ``"default"``: where :attr:`io` came from."""
        return "embedded" if self.embedded else "sidecar" if self.manifest else "default"

    @property
    def profile(self) -> dict[str, Any]:
        """MACs, params and the input shape they were counted at: embedded, else the sidecar's model profile
        (``{}``: neither says)."""
        embedded = self.embedded.profile if self.embedded else None
        source = self.manifest.source if self.manifest else None
        if embedded and embedded.get("macs"):
            return dict(embedded)
        profile = (source or {}).get("profile")
        return dict(profile) if isinstance(profile, dict) else {}

    @property
    def precision(self) -> str | None:
        """The artifact's precision (``fp32``, ``fp16``, ``int8``) as it or its sidecar says; ``None``: unknown."""
        if self.embedded:
            return self.embedded.precision
        return self.manifest.precision if self.manifest else None


def read_sidecar(path: Path) -> ArtifactManifest | None:
    """The sidecar beside ``path``, validated (a malformed one is one error line), read before the
    artifact itself so that its error comes first."""
    return ArtifactManifest.for_artifact(path)


#: ``describe_artifact``'s default: read the sidecar beside the artifact now.
READ_SIDECAR: Any = object()


def describe_artifact(path: Path, props: Mapping[str, str], manifest: Any = READ_SIDECAR) -> ArtifactDescription:
    """The description of the artifact at ``path`` whose own metadata is ``props``; ``manifest`` is its
    sidecar when the backend already read it (:func:`read_sidecar`), else it is read here."""
    if manifest is READ_SIDECAR:
        manifest = read_sidecar(path)
    embedded = EmbeddedMetadata.from_props(props, str(path))
    warnings: list[str] = []
    if manifest is not None and manifest.sha256 and path.is_file() and manifest.sha256 != sha256_file(path):
        warnings.append(f"{path}: sidecar sha256 does not match the file; it may describe another export")
    if embedded is None and manifest is None:
        warnings.append(f"{path}: no embedded I/O spec and no sidecar {path.name}.json; assuming values in [-1, 1]")
    if embedded is not None:
        return ArtifactDescription(embedded.io, embedded.inputs, embedded.outputs, manifest, embedded, warnings)
    if manifest is not None:
        return ArtifactDescription(manifest.io, manifest.inputs, manifest.outputs, manifest, None, warnings)
    return ArtifactDescription(None, [], [], None, None, warnings)
