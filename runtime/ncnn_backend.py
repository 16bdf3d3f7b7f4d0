"""The ``ncnn`` backend: an ncnn ``.param`` + ``.bin`` pair (``pocketgan export --format ncnn``) on the CPU.

Needs ``pip install 'pocketgan[ncnn]'`` (the ``ncnn`` package; no torch). ``threads`` sets
``opt.num_threads`` (ncnn's default: the physical big cores). An fp32 artifact runs with fp16/bf16
storage and arithmetic off (ncnn turns fp16 storage on by default wherever the CPU has it, which
would change the numbers); an fp16 one with fp16 storage, arithmetic and packing on.

An ncnn ``.param`` carries no metadata, so the sidecar written beside it (``model.ncnn.param.json``)
is required: its ``extra.metadata`` holds what other formats embed (I/O spec, tensors, precision, MACs). Without it, loading fails
in one line rather than guessing the value range and the input size. The blob names come from the
``.param`` itself (its ``Input`` layer; the blob no layer consumes). One sample is extracted at a
time; a batch runs sample by sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.ncnn import configure_ncnn
from pocketgan.core.optional import require
from pocketgan.runtime.artifact_meta import describe_artifact, read_sidecar
from pocketgan.runtime.placement import Placement, from_layers
from pocketgan.runtime.registry import artifact_path, register_backend
from pocketgan.runtime.runner import Runner, RunnerInfo

EXPORT_FILE = "model.ncnn.param"
#: The sidecar's ``extra`` key holding the metadata other formats embed (the exporter writes it).
SIDECAR_METADATA = "metadata"
DEVICE = "CPU"
#: Layers that compute nothing (the graph input; ncnn's blob fan-out), left out of the placement.
NON_LAYERS = frozenset({"Input", "Split"})


class NcnnRunner(Runner):
    """A loaded ``ncnn.Net``: one extractor per sample, the first input blob in, the output blob out."""

    def __init__(self, net: Any, ncnn: Any, blobs: tuple[str, str], info: RunnerInfo) -> None:
        super().__init__(info)
        self.net, self._ncnn = net, ncnn
        self.blob_in, self.blob_out = blobs

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run an NCHW float32 batch (sample by sample) and return the NCHW float32 output."""
        batch = np.asarray(batch, dtype=np.float32)
        self._check(batch.shape)
        outputs = []
        for sample in batch:
            sample = np.ascontiguousarray(sample)
            with self.net.create_extractor() as extractor:
                extractor.input(self.blob_in, self._ncnn.Mat(sample))
                status, out = extractor.extract(self.blob_out)
                if status != 0:
                    raise PocketganError(f"{self.name}: ncnn failed to compute {self.blob_out} (status {status})")
                outputs.append(np.array(out, dtype=np.float32))
        return np.stack(outputs)

    def _check(self, shape: tuple[int, ...]) -> None:
        """A one-line error for a batch that is not NCHW with the declared channels and size (ncnn would
        compute nonsense or crash on it)."""
        declared = self.input_shape
        fits = len(shape) == 4 and all(not isinstance(d, int) or d == s for d, s in zip(declared[1:], shape[1:]))
        if not fits or shape[0] < 1:
            raise PocketganError(f"{self.name}: ncnn input must be N×{'×'.join(map(str, declared[1:]))}; got {shape}")

    def placement(self, feed: Any) -> Placement | None:
        """Every computing layer of the loaded net under the CPU: ncnn refuses to load a layer type it has
        no kernel for, so nothing falls back (``Net.layers()`` after a run of ``feed``)."""
        self.run_feed(feed)
        kinds = [layer.type for layer in self.net.layers() if layer.type not in NON_LAYERS]
        return from_layers("ncnn Net.layers", DEVICE, kinds)


@register_backend("ncnn")
def load_ncnn(
    artifact: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
) -> NcnnRunner:
    """Open an ncnn ``.param`` (its ``.bin`` beside it) or an export directory holding ``model.ncnn.param``."""
    ncnn = require("ncnn", "ncnn", "running ncnn models")
    if providers and [p.upper() for p in providers] != [DEVICE]:
        raise PocketganError(f"the ncnn backend runs on the CPU here; providers {list(providers)} are not available")
    path = resolve_path(artifact)
    sidecar = read_sidecar(path)
    if sidecar is None:
        raise PocketganError(f"{path}: an ncnn .param carries no I/O spec and its sidecar {path.name}.json is missing; "
                             "copy the sidecar pocketgan export wrote beside it")  # fmt: skip
    described = describe_artifact(path, dict(sidecar.extra.get(SIDECAR_METADATA) or {}), sidecar)
    fp16 = described.precision == "fp16"
    net = ncnn.Net()
    configure_ncnn(net.opt, fp16=fp16, threads=threads)
    try:
        if net.load_param(str(path)) != 0 or net.load_model(str(path.with_suffix(".bin"))) != 0:
            raise PocketganError(f"{path}: ncnn cannot load the model (a layer type it lacks, or a truncated .bin)")
        blobs = (net.input_names()[0], net.output_names()[0])
    except PocketganError:
        raise
    except Exception as exc:
        raise PocketganError(f"{path}: ncnn cannot load the model ({first_line(exc)})") from None
    info = RunnerInfo(
        name=str(artifact), backend="ncnn", inputs=list(described.inputs),
        outputs=list(described.outputs), providers=[DEVICE], io=described.io or IOSpec(), manifest=sidecar,
        threads=int(net.opt.num_threads), versions={"ncnn": str(ncnn.__version__), "numpy": np.__version__},
        warnings=described.warnings, profile=described.profile, precision=described.precision,
    )  # fmt: skip
    return NcnnRunner(net, ncnn, blobs, info)


def resolve_path(artifact: str | os.PathLike[str]) -> Path:
    """``artifact`` (a ``.param`` whose ``.bin`` is beside it), or ``model.ncnn.param`` in an export directory."""
    path = artifact_path(artifact, backend="ncnn", export_file=EXPORT_FILE, what="ncnn .param")
    if not path.with_suffix(".bin").is_file():
        raise PocketganError(f"{path}: its weights {path.with_suffix('.bin').name} are missing beside it")
    return path
