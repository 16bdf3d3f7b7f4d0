"""The ``coreml`` backend: a CoreML ``.mlpackage`` predicted with coremltools, on macOS only.

The I/O spec comes from the package's ``user_defined_metadata`` (written by the exporter), else its
sidecar. ``providers`` picks the compute units: ``ALL`` (default: CPU, GPU and the Neural Engine),
``CPU_AND_NE``, ``CPU_AND_GPU`` or ``CPU_ONLY``. Elsewhere loading fails in one line.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import TensorInfo
from pocketgan.runtime.artifact_meta import describe_artifact
from pocketgan.runtime.registry import register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")


class CoreMLRunner(Runner):
    """An ``MLModel`` predicting one NCHW float32 batch per call (tensor inputs)."""

    def __init__(self, model: Any, info: RunnerInfo) -> None:
        super().__init__(info)
        self.model = model

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Predict ``batch`` and return the first output as float32."""
        result = self.model.predict({self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(result[self.output_name], dtype=np.float32)


@register_backend("coreml")
def load_coreml(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> CoreMLRunner:
    """Load ``artifact`` (a ``.mlpackage`` or an export directory holding one) for prediction on macOS."""
    if sys.platform != "darwin":
        raise PocketganError(f"the coreml backend predicts on macOS only (this host is {sys.platform}); "
                             "pocketgan export validates the package here")  # fmt: skip
    try:
        ct = importlib.import_module("coremltools")
    except ImportError:
        raise PocketganError("the coreml backend needs coremltools: pip install 'pocketgan[coreml]'") from None
    path = Path(artifact)
    path = path / "model.mlpackage" if path.is_dir() and path.suffix != ".mlpackage" else path
    if not path.exists():
        raise PocketganError(f"{path}: no such CoreML package")
    units = (providers or ["ALL"])[0].upper()
    if units not in COMPUTE_UNITS:
        raise PocketganError(f"CoreML compute units must be one of {', '.join(COMPUTE_UNITS)}; got {units}")
    model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, units))
    spec = model.get_spec()
    described = describe_artifact(path, dict(spec.description.metadata.userDefined))
    tensors = [[TensorInfo(f.name, list(f.type.multiArrayType.shape) or ["dynamic"]) for f in features]
               for features in (spec.description.input, spec.description.output)]  # fmt: skip
    info = RunnerInfo(name=str(path), backend="coreml", inputs=tensors[0], outputs=tensors[1],
                      providers=[f"CoreML:{units}"], manifest=described.manifest, warnings=described.warnings,
                      versions={"coremltools": ct.__version__}, **({"io": described.io} if described.io else {}),
                      profile=described.profile, precision=described.precision)  # fmt: skip
    return CoreMLRunner(model, info)
