"""Image-quality metrics of a generator on a paired dataset: :func:`evaluate` → :class:`EvalReport`.

Against the ground truth (the dataset's B images) and, when given, against the teacher's outputs:

- **PSNR** and **SSIM** (torchmetrics functional, ``data_range=2`` on ``[-1, 1]``): per image, averaged.
  Identical images give PSNR ``inf`` and SSIM 1.
- **FID** and **KID** (torchmetrics ``FrechetInceptionDistance`` / ``KernelInceptionDistance``) in the
  embedding space of a feature network. Each image set is embedded once (``FeatureNetwork.pool`` of the
  same forward pass that gives the LPIPS-style maps) and the metric modules receive those embeddings.
  FID needs at least 2 images and is noisy (biased upwards) on small ``n``: the report gives ``n``.
- An **LPIPS-style distance** in the same feature space: unit-normalised channel features, squared
  differences summed over channels, averaged over positions and summed over levels, **with no learned
  weights** (so it is not LPIPS; see :func:`pocketgan.distill.features.feature_distance`).

Every feature-space metric is labelled with its network: ``"FID (pocketgan-edges2photos)"``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from pocketgan.distill.features import FeatureNetwork, feature_distance
from pocketgan.distill.features.progress import TaskBar
from pocketgan.core.errors import PocketganError

SSIM_MIN_SIZE = 11  # the Gaussian window


@dataclass
class MetricResult:
    """One metric against the ground truth and against the teacher (``None``: not computed)."""

    key: str
    label: str
    vs_ground_truth: float | None
    vs_teacher: float | None = None
    network: str | None = None
    higher_is_better: bool = False
    note: str = ""


@dataclass
class EvalReport:
    """What :func:`evaluate` measured; ``to_dict()`` is JSON-safe (``inf`` becomes the string ``"inf"``)."""

    model: str
    feature_network: str
    n: int
    image_size: list[int]
    metrics: dict[str, MetricResult]
    seconds: float
    teacher: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def value(self, key: str, against: str = "ground_truth") -> float | None:
        """``report.value("fid")`` or ``report.value("psnr", "teacher")``."""
        metric = self.metrics[key]
        return metric.vs_teacher if against == "teacher" else metric.vs_ground_truth

    def row(self) -> dict[str, float | str | None]:
        """Flat figures for a results table: ``psnr``, ``psnr_teacher``, ``fid``, ``kid``, ... and the network."""
        flat: dict[str, float | str | None] = {"feature_network": self.feature_network, "eval_n": self.n}
        for key, metric in self.metrics.items():
            flat[key] = metric.vs_ground_truth
            flat[f"{key}_teacher"] = metric.vs_teacher
        return flat

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images_per_second"] = round(self.images_per_second, 3)
        data["values"] = self.row()
        return _json_safe(data)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------- distribution metrics on embeddings


class _PrecomputedEmbedding(nn.Module):
    """The torchmetrics ``feature`` module for embeddings already computed by ``FeatureNetwork.embed``/``pool``."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, embeddings: Tensor) -> Tensor:
        return embeddings


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two ``N×D`` embedding sets (torchmetrics ``FrechetInceptionDistance``); needs N ≥ 2 each."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_sets(real, fake, "FID")
    metric = FrechetInceptionDistance(feature=_PrecomputedEmbedding(real.shape[1]), normalize=True)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_inception_distance(
    real: Tensor, fake: Tensor, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID mean and std between two ``N×D`` embedding sets (torchmetrics ``KernelInceptionDistance``).

    Subsets of ``min(subset_size, N_real, N_fake)`` images (one subset when that is everything);
    the subset draws use ``seed``, so the value is repeatable.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_sets(real, fake, "KID")
    size = min(subset_size, real.shape[0], fake.shape[0])
    subsets = 1 if size == real.shape[0] == fake.shape[0] else 100
    with warnings.catch_warnings():  # "will save all extracted features in buffer": they are small embeddings
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_PrecomputedEmbedding(real.shape[1]), subsets=subsets, subset_size=size, normalize=True
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _check_sets(real: Tensor, fake: Tensor, what: str) -> None:
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise PocketganError(f"{what} needs at least 2 images in each set; got {real.shape[0]} and {fake.shape[0]}")


# ---------------------------------------------------------------- per-image metrics


def psnr_per_image(prediction: Tensor, target: Tensor) -> Tensor:
    """PSNR (dB) of each image pair, images in ``[-1, 1]``; ``inf`` for identical images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(prediction, target, data_range=2.0, reduction="none", dim=(1, 2, 3))


def ssim_per_image(prediction: Tensor, target: Tensor) -> Tensor:
    """SSIM of each image pair (Gaussian window 11, σ 1.5), images in ``[-1, 1]``; 1 for identical images."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(prediction, target, data_range=2.0, reduction="none")


class _Comparison:
    """Per-image scores and embeddings of one reference set (ground truth or teacher)."""

    def __init__(self) -> None:
        self.psnr: list[Tensor] = []
        self.ssim: list[Tensor] = []
        self.distance: list[Tensor] = []
        self.embeddings: list[Tensor] = []

    def add(self, fake: Tensor, reference: Tensor, fake_maps: list[Tensor], reference_maps: list[Tensor], pool) -> None:
        self.psnr.append(psnr_per_image(fake, reference).cpu())
        self.ssim.append(ssim_per_image(fake, reference).cpu())
        self.distance.append(feature_distance(fake_maps, reference_maps).cpu())
        self.embeddings.append(pool(reference_maps).double().cpu())

    def mean(self, values: list[Tensor]) -> float:
        return float(torch.cat(values).double().mean())


def _check_batch(name: str, output: Tensor, target: Tensor) -> None:
    if output.shape != target.shape:
        raise PocketganError(
            f"the {name} outputs {tuple(output.shape[1:])} for targets of {tuple(target.shape[1:])}: "
            "check the dataset direction and the model's channels"
        )


def _generate(model: nn.Module, images: Tensor) -> Tensor:
    return model(images).float().clamp(-1.0, 1.0)


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    feature: FeatureNetwork,
    teacher: nn.Module | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: bool = True,
    model_name: str | None = None,
    teacher_name: str | None = None,
    kid_subset_size: int = 1000,
) -> EvalReport:
    """PSNR, SSIM, FID, KID and the LPIPS-style distance of ``model`` on ``dataset`` (see the module docstring).

    ``dataset`` yields ``{"A": input, "B": ground truth}`` (3×H×W in ``[-1, 1]``), as
    ``pocketgan.distill.data.open_dataset``. ``teacher`` adds the "vs teacher" column.
    """
    count = len(dataset)  # type: ignore[arg-type]
    if count == 0:
        raise PocketganError("cannot evaluate on an empty dataset")
    if batch_size < 1:
        raise PocketganError(f"--batch must be at least 1; got {batch_size}")
    device = torch.device(device)
    model = model.to(device).eval()
    teacher = teacher.to(device).eval() if teacher is not None else None
    feature = feature.to(device).freeze()
    truth, versus_teacher = _Comparison(), _Comparison()
    fake_embeddings: list[Tensor] = []
    size: list[int] = []
    started = time.perf_counter()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    with torch.inference_mode(), TaskBar(f"evaluating {model_name or 'model'}", count, progress) as bar:
        for batch in loader:
            inputs, target = batch["A"].to(device).float(), batch["B"].to(device).float()
            size = list(target.shape[-2:])
            if min(size) < SSIM_MIN_SIZE:
                raise PocketganError(f"images of {size[0]}×{size[1]} px are too small for SSIM (at least 11×11)")
            fake = _generate(model, inputs)
            _check_batch("model", fake, target)
            fake_maps = feature(fake)
            fake_embeddings.append(feature.pool(fake_maps).double().cpu())
            truth.add(fake, target, fake_maps, feature(target), feature.pool)
            if teacher is not None:
                guide = _generate(teacher, inputs)
                _check_batch("teacher", guide, target)
                versus_teacher.add(fake, guide, fake_maps, feature(guide), feature.pool)
            bar.advance(inputs.shape[0])
    fakes = torch.cat(fake_embeddings)
    metrics = _summarise(truth, versus_teacher if teacher is not None else None, fakes, feature.name, kid_subset_size)
    seconds = time.perf_counter() - started
    notes = [] if count >= 2 else ["FID and KID need at least 2 images: not computed"]
    if 2 <= count < 500:
        notes.append(f"FID/KID on n={count} images are noisy and biased upwards; compare models on the same n")
    return EvalReport(
        model=model_name or type(model).__name__,
        feature_network=feature.name,
        n=count,
        image_size=size,
        metrics=metrics,
        seconds=round(seconds, 3),
        teacher=teacher_name if teacher is not None else None,
        notes=notes,
    )


def _summarise(
    truth: _Comparison, teacher: _Comparison | None, fakes: Tensor, network: str, kid_subset_size: int
) -> dict[str, MetricResult]:
    def both(score: Callable[[_Comparison], float | None]) -> tuple[float | None, float | None]:
        return score(truth), (score(teacher) if teacher is not None else None)

    def distribution(compute: Callable[[Tensor, Tensor], float]) -> Callable[[_Comparison], float | None]:
        return lambda side: compute(torch.cat(side.embeddings), fakes) if fakes.shape[0] >= 2 else None

    fid = both(distribution(frechet_distance))
    kid = both(distribution(lambda real, fake: kernel_inception_distance(real, fake, kid_subset_size)[0]))
    return {
        "psnr": MetricResult("psnr", "PSNR (dB)", *both(lambda s: s.mean(s.psnr)), higher_is_better=True),
        "ssim": MetricResult("ssim", "SSIM", *both(lambda s: s.mean(s.ssim)), higher_is_better=True),
        "fid": MetricResult("fid", f"FID ({network})", *fid, network=network),
        "kid": MetricResult("kid", f"KID ({network})", *kid, network=network, note="polynomial kernel, ×1 (not ×1e3)"),
        "lpips_style": MetricResult(
            "lpips_style",
            f"LPIPS-style distance ({network}, unweighted)",
            *both(lambda s: s.mean(s.distance)),
            network=network,
            note="unit-normalised features, squared difference, spatial mean, summed over levels; no learned weights",
        ),
    }
