"""Metadata embedded inside an artifact, so a bare ``model.onnx`` copied to a device still runs right.

The exporter writes the same string map into every format's own metadata: ONNX ``metadata_props``
(kept by the ``.ort`` conversion), OpenVINO ``rt_info`` (under ``pocketgan``), CoreML
``user_defined_metadata``, an ExecuTorch program's constant method :data:`EXECUTORCH_METADATA_METHOD`
(the map as one JSON string). Each value is JSON under a ``pocketgan.``-prefixed key:

- ``pocketgan.io``: the :class:`~pocketgan.core.contract.IOSpec` (``IOSpec.to_dict()``, so fields added
  to it travel automatically), ``pocketgan.inputs`` / ``pocketgan.outputs``: the tensors,
- ``pocketgan.profile``: MACs, params and the input shape they were counted at,
- ``pocketgan.provenance``: the generator spec, where its weights came from, the pocketgan version,
- ``pocketgan.precision`` and ``pocketgan.format_version``.

The runtime reads these first and the sidecar second (the sidecar keeps sha256 and parity).
Standard library only: the torch-free runtime imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pocketgan.core.contract import FORMAT_VERSION, IOSpec, TensorInfo
from pocketgan.core.errors import ManifestError

PREFIX = "pocketgan."
KEYS = ("io", "inputs", "outputs", "profile", "provenance", "precision", "format_version")
#: ExecuTorch programs carry the string map as the JSON returned by this constant method of the ``.pte``.
EXECUTORCH_METADATA_METHOD = "pocketgan_metadata"


@dataclass
class EmbeddedMetadata:
    """What an artifact says about itself, independent of its sidecar."""

    io: IOSpec
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"

    def to_props(self) -> dict[str, str]:
        """The ``{"pocketgan.io": "<json>", ...}`` string map written into the artifact."""
        values: dict[str, Any] = {
            "io": self.io.to_dict(),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "profile": self.profile,
            "provenance": self.provenance,
            "precision": self.precision,
            "format_version": FORMAT_VERSION,
        }
        return {PREFIX + key: json.dumps(value, sort_keys=True) for key, value in values.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str) -> EmbeddedMetadata | None:
        """The metadata in ``props`` (an artifact's string map), ``None`` if it carries none.

        A present but malformed entry is one :class:`~pocketgan.core.errors.ManifestError` line naming ``source``.
        """
        if PREFIX + "io" not in props:
            return None
        values = {key: _json(props, key, source) for key in KEYS if PREFIX + key in props}
        io = IOSpec.from_dict(values["io"], f"{source}: embedded {PREFIX}io")
        tensors = {
            name: [TensorInfo.from_dict(t, f"{source}: embedded {PREFIX}{name}") for t in values.get(name) or []]
            for name in ("inputs", "outputs")
        }
        return cls(io=io, inputs=tensors["inputs"], outputs=tensors["outputs"],
                   profile=dict(values.get("profile") or {}), provenance=dict(values.get("provenance") or {}),
                   precision=str(values.get("precision", "fp32")))  # fmt: skip


def _json(props: Mapping[str, str], key: str, source: str) -> Any:
    try:
        return json.loads(props[PREFIX + key])
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{source}: embedded {PREFIX}{key} is not valid JSON ({exc})") from None
