"""What quantizing cost in FID/KID: ``pocketgan export ... --precision int8 --data DIR``.

The parity gate (:mod:`pocketgan.export.gate`) bounds how far an int8 (or fp16) artifact's pixels move
from PyTorch's; this measures what that does to the *distribution* of outputs. On DIR's eval split
(:data:`EVAL_SPLIT`) the fp32 PyTorch model (the reference) and the exported artifact (run by its
runtime backend, e.g. onnxruntime for ``model.onnx``) translate the same inputs; both output sets and
the split's ground-truth images are embedded by one feature network (the dataset's domain network by
default, cached; or ``--feature NAME|PATH``), and FID and KID against the ground truth are computed for
each (:func:`pocketgan.distill.quality.frechet_distance` / ``kernel_inception_distance``, the same
functions as ``pocketgan eval``). The change (artifact minus reference) goes into the sidecar's
``extra["quality"]`` (rewritten atomically) and the export's report.

It lives at the application level: the export stage may not import the distill stage (importlinter.toml).
Latent-input generators (StyleGAN2) are not supported yet (one error line, before anything is exported).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pocketgan.core.contract import ArtifactManifest, IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressTask

if TYPE_CHECKING:
    import torch

    from pocketgan.distill.features import FeatureNetwork
    from pocketgan.models import LoadedModel

#: The split FID/KID are measured on (the one ``pocketgan eval`` reads by default).
EVAL_SPLIT = "val"
#: Precisions whose FID/KID change ``--data`` measures (an fp32 artifact matches PyTorch within ``--atol``).
MEASURED_PRECISIONS = ("fp16", "int8")


@dataclass(frozen=True)
class QualityChange:
    """FID/KID of the PyTorch fp32 reference and of the artifact on one split, and their change."""

    data: str
    split: str
    n: int
    feature_network: str
    feature_key: str
    reference: dict[str, float]  # {"fid": ..., "kid": ...}
    artifact: dict[str, float]
    backend: str

    @property
    def delta(self) -> dict[str, float]:
        """Artifact minus reference (positive: the artifact is further from the ground truth)."""
        return {key: self.artifact[key] - self.reference[key] for key in self.reference}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta, "reference_model": "PyTorch fp32 (eval mode)"}

    def line(self, precision: str) -> str:
        """``FID/KID vs DIR/val (n=6, pocketgan-x): PyTorch fp32 12.3 / 0.0123, int8 12.9 / 0.0131: ΔFID +0.6 ...``"""
        ref, art, delta = self.reference, self.artifact, self.delta
        return (f"FID/KID vs {self.data}/{self.split} (n={self.n}, {self.feature_network}): PyTorch fp32 "
                f"{ref['fid']:.4g} / {ref['kid']:.4g}, {precision} {art['fid']:.4g} / {art['kid']:.4g}: "
                f"ΔFID {delta['fid']:+.4g}, ΔKID {delta['kid']:+.4g}")  # fmt: skip


def check_quality_request(loaded: LoadedModel, data: str | os.PathLike[str], precision: str | None = None) -> None:
    """Refuse ``--data`` in one line, before anything is exported, where it cannot be measured (a latent model,
    a missing directory, and with ``precision`` given: fp32, whose artifact matches PyTorch within ``--atol``)."""
    if loaded.model.io.is_latent:
        raise PocketganError("--data: the FID/KID change of a latent-input generator (StyleGAN2) export is not "
                             "supported yet; export without --data")  # fmt: skip
    if precision is not None and precision not in MEASURED_PRECISIONS:
        raise PocketganError(f"--data measures the FID/KID change of a reduced-precision export (--precision "
                             f"{' or '.join(MEASURED_PRECISIONS)}); an {precision} export matches PyTorch within "
                             "--atol, so there is no change to measure")  # fmt: skip
    if not Path(data).is_dir():
        raise PocketganError(f"--data {data}: no such dataset directory")


def measure_quality_change(
    loaded: LoadedModel,
    artifact: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    feature: str | None = None,
    backend: str | None = None,
    kid_subset_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> QualityChange:
    """FID/KID of ``loaded`` (PyTorch, fp32) and of ``artifact`` (its runtime backend) on ``data``'s eval split.

    ``backend`` is the runtime backend (default: the artifact's, by its suffix: onnxruntime for ``.onnx``).
    ``feature`` names the feature network (:func:`pocketgan.distill.features.load_feature_network`;
    default: ``data``'s domain network). The inputs are read with the model's I/O spec at the artifact's
    input size; outputs and ground truth are mapped to ``[-1, 1]`` for the feature network.
    """
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.features import load_feature_network
    from pocketgan.runtime import load
    from pocketgan.runtime.registry import pick_backend

    check_quality_request(loaded, data)
    io = loaded.manifest.io
    runner = load(artifact, backend=backend or pick_backend(artifact))
    dataset = open_dataset(data, split=EVAL_SPLIT, size=_square_size(runner.input_shape, artifact), io=io)
    network = load_feature_network(feature, data=data, progress=progress).freeze()
    reals, ours, theirs = _embed_outputs(loaded, runner, dataset, network, io, progress)
    if len(reals) < 2:
        raise PocketganError(f"--data {data}: FID/KID need at least 2 images in {EVAL_SPLIT}/; it has {len(reals)}")
    return QualityChange(
        data=str(data), split=EVAL_SPLIT, n=len(reals), feature_network=network.name, feature_key=network.key,
        reference=_fid_kid(reals, ours, kid_subset_size), artifact=_fid_kid(reals, theirs, kid_subset_size),
        backend=runner.backend,
    )  # fmt: skip


def record_quality_change(artifact: str | os.PathLike[str], change: QualityChange) -> ArtifactManifest:
    """Add ``change`` to the sidecar beside ``artifact`` as ``extra["quality"]`` (rewritten atomically)."""
    sidecar = ArtifactManifest.for_artifact(artifact)
    if sidecar is None:
        raise PocketganError(f"{artifact}: no sidecar to record the FID/KID change in")
    sidecar.extra["quality"] = change.to_dict()
    sidecar.save(artifact)  # pocketgan.core.fsio.write_json_atomic
    return sidecar


def _square_size(shape: list[int | str], artifact: str | os.PathLike[str]) -> int:
    height, width = shape[-2:]
    if not isinstance(height, int) or height != width:
        raise PocketganError(f"--data: {artifact} takes {height}×{width} inputs; FID/KID are measured at a fixed "
                             "square size (export with --size N)")  # fmt: skip
    return height


def _embed_outputs(
    loaded: LoadedModel, runner: Any, dataset: Any, network: FeatureNetwork, io: IOSpec,
    progress: ProgressCallback | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings of the ground truth, the PyTorch outputs and the artifact's outputs, one image at a time."""
    import torch

    model = loaded.model.eval()
    reals, ours, theirs = [], [], []
    with torch.inference_mode(), ProgressTask(progress, "FID/KID: PyTorch fp32 vs the artifact",
                                              total=len(dataset)) as task:  # fmt: skip
        for index in range(len(dataset)):
            item = dataset[index]
            x, target = item["A"][None].float(), item["B"][None].float()
            artifact_out = torch.from_numpy(np.asarray(runner.run(x.numpy()), dtype=np.float32))
            for bucket, image in ((reals, target), (ours, model(x).float()), (theirs, artifact_out)):
                bucket.append(network.embed(_to_unit(image, io)).double())
            task.advance()
    return torch.cat(reals), torch.cat(ours), torch.cat(theirs)


def _to_unit(image: torch.Tensor, io: IOSpec) -> torch.Tensor:
    """``image`` in the I/O spec's value range → ``[-1, 1]`` (clamped), what the feature network reads."""
    low, high = io.value_range
    return ((image - low) / (high - low) * 2.0 - 1.0).clamp(-1.0, 1.0)


def _fid_kid(reals: torch.Tensor, fakes: torch.Tensor, kid_subset_size: int) -> dict[str, float]:
    from pocketgan.distill.quality import frechet_distance, kernel_inception_distance

    return {"fid": frechet_distance(reals, fakes), "kid": kernel_inception_distance(reals, fakes, kid_subset_size)[0]}
