"""Writing :class:`~pocketgan.core.embedded.EmbeddedMetadata` into artifacts (ONNX, OpenVINO, CoreML).

:func:`artifact_metadata` gathers what a deployment needs to use the artifact without its sidecar:
the I/O spec at the exported size, the tensors, MACs and params (the model's stored profile when it
was counted at this size, else counted now with fvcore), and provenance. Each format has its own
writer: :func:`embed_in_onnx` (``metadata_props``, kept by the ``.ort`` conversion and read by
OpenVINO as ``rt_info["framework"]``), :func:`embed_in_openvino` (``rt_info["pocketgan"]``) and
:func:`embed_in_coreml` (``user_defined_metadata``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pocketgan import __version__
from pocketgan.core.embedded import PREFIX, EmbeddedMetadata
from pocketgan.core.optional import require
from pocketgan.export.job import ExportJob

#: OpenVINO ``rt_info`` section holding the metadata (``rt_info["pocketgan"]["io"]`` ...).
OPENVINO_SECTION = "pocketgan"


def artifact_metadata(job: ExportJob, precision: str | None = None) -> EmbeddedMetadata:
    """The metadata of ``job``'s artifact at ``precision`` (default: the job's)."""
    manifest = job.loaded.manifest
    return EmbeddedMetadata(
        io=job.artifact_io(),
        inputs=job.inputs(),
        outputs=job.outputs(),
        profile=_profile(job),
        provenance={"spec": manifest.spec.to_dict(), "source": manifest.provenance,
                    "weights_sha256": manifest.weights_sha256, "pocketgan": __version__},  # fmt: skip
        precision=precision or job.options.precision,
    )


def _profile(job: ExportJob) -> dict[str, Any]:
    """MACs and params at the exported input shape (counted once per job: several formats embed them)."""
    if not hasattr(job, "_embedded_profile"):
        job._embedded_profile = _count(job)  # type: ignore[attr-defined]
    return dict(job._embedded_profile)  # type: ignore[attr-defined]


def _count(job: ExportJob) -> dict[str, Any]:
    """The stored profile if it was counted at the exported shape, else fvcore now."""
    shape = [int(d) for d in job.example().shape]
    stored = job.loaded.manifest.profile
    if stored is not None and list(stored.input_shape) == shape:
        return {"macs": stored.macs, "params": stored.params, "input_shape": shape, "counter": stored.counter}
    from pocketgan.models.profile import count_params, profile_model

    try:
        report = profile_model(job.model, tuple(shape))
        return {**report.to_profile().to_dict(), "input_shape": shape}
    except Exception:  # a model fvcore cannot trace still exports; the params need no tracing
        return {"params": count_params(job.model), "input_shape": shape}


def embed_in_onnx(path: Path, metadata: EmbeddedMetadata) -> None:
    """Set ``metadata``'s entries in the ONNX file's ``metadata_props`` (other entries are kept)."""
    onnx = require("onnx", "export", "ONNX export")
    model = onnx.load(str(path))
    props = metadata.to_props()
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in props]  # e.g. pocketgan.latent
    del model.metadata_props[:]
    for key, value in [*keep, *props.items()]:
        model.metadata_props.add(key=key, value=value)
    model.producer_name = model.producer_name or "pocketgan"
    onnx.save_model(model, str(path), save_as_external_data=False)


def embed_in_openvino(model: Any, metadata: EmbeddedMetadata) -> None:
    """Set ``rt_info["pocketgan"][key]`` of an ``openvino.Model`` (saved into the IR ``.xml``)."""
    for key, value in metadata.to_props().items():
        model.set_rt_info(value, [OPENVINO_SECTION, key.removeprefix(PREFIX)])


def embed_in_coreml(mlmodel: Any, metadata: EmbeddedMetadata) -> None:
    """Add the metadata to a CoreML model's ``user_defined_metadata`` (and a short description)."""
    mlmodel.user_defined_metadata.update(metadata.to_props())
    profile = metadata.profile
    if "macs" in profile:
        mlmodel.short_description = f"pocketgan generator; {profile['macs']} MACs, {profile['params']} params"
    mlmodel.version = __version__
    mlmodel.author = mlmodel.author or "pocketgan"
