"""Running the registered metrics: :func:`evaluate` a generator on a dataset → :class:`EvalReport`.

Each batch is generated once, embedded once by the feature network (the maps feed the paired
metrics, their pooled vectors the distribution metrics), and compared with the ground truth and,
when given, with the teacher's outputs. See :mod:`pocketgan.distill.metrics` for the metrics.

A latent-input generator (StyleGAN2) is evaluated on :func:`eval_latents`: sample ``i`` is made
from latent ``i`` of a fixed stream (:class:`LatentSamples`), the same for every model, so the
teacher column compares the student's image with the teacher's for the same ``z`` (paired), and
FID/KID compare the set of samples with the split's real images (unpaired: there is no target).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.distill.features import FeatureNetwork
from pocketgan.distill.metrics import (
    GROUND_TRUTH,
    TEACHER,
    DistributionMetric,
    Metric,
    PairedMetric,
    Pair,
    selected_metrics,
)
from pocketgan.distill.progress import as_callback

SSIM_MIN_SIZE = 11  # the Gaussian window
NOISY_BELOW = 500  # distribution metrics on fewer images get a note
UNPAIRED_LAYOUTS = ("unaligned", "images")  # B is not the target of the generator's input
EVAL_LATENT_SEED = 0


def eval_latents(count: int, z_dim: int, seed: int = EVAL_LATENT_SEED) -> Tensor:
    """The latents an unconditional generator is evaluated (and shown) on: ``count × z_dim`` standard normals.

    Latent ``i`` depends only on ``(seed, z_dim)`` and ``i`` (the stream is drawn in one go, so a larger
    ``count`` only appends), whatever the model: teacher and students get the same latents.
    """
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(count, z_dim, generator=generator)


class LatentSamples(Dataset):
    """``{"A": latent i, "B": real image i}`` over a dataset of real images, for a latent-input generator.

    ``A`` is :func:`eval_latents` row ``i``; ``B`` is item ``i`` of ``reals`` (an unconditional
    ``images`` dataset, or the B side of any other), so one sample is generated per real image.
    """

    layout = "images"

    def __init__(self, reals: Dataset, z_dim: int, seed: int = EVAL_LATENT_SEED) -> None:
        self.reals = reals
        self.latents = eval_latents(len(reals), z_dim, seed)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"A": self.latents[index], "B": self.reals[index]["B"]}


def latent_dim(model: nn.Module) -> int | None:
    """``z_dim`` of a latent-input generator (its :class:`IOSpec` says so), ``None`` for an image-to-image one."""
    io = getattr(model, "io", None)
    return int(io.z_dim) if io is not None and getattr(io, "is_latent", False) else None


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
    """What :func:`evaluate` measured; ``to_dict()`` is JSON-safe (``inf`` becomes the string ``"inf"``).

    ``feature_network`` is the feature network's name (the label of its metrics), ``feature_key`` its
    content key (:attr:`FeatureNetwork.key`).
    """

    model: str
    feature_network: str
    n: int
    image_size: list[int]
    metrics: dict[str, MetricResult]
    seconds: float
    teacher: str | None = None
    notes: list[str] = field(default_factory=list)
    feature_key: str | None = None

    @property
    def images_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def value(self, key: str, against: str = GROUND_TRUTH) -> float | None:
        """``report.value("fid")`` or ``report.value("psnr", "teacher")``."""
        metric = self.metrics[key]
        return metric.vs_teacher if against == TEACHER else metric.vs_ground_truth

    def row(self) -> dict[str, float | str | None]:
        """Flat figures for a results table: ``psnr``, ``psnr_teacher``, ``fid``, ``kid``, ... and the network."""
        flat: dict[str, float | str | None] = {"feature_network": self.feature_network, "eval_n": self.n}
        if self.feature_key is not None:
            flat["feature_key"] = self.feature_key
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


# ---------------------------------------------------------------- evaluate()


class _Side:
    """Per-image scores and reference embeddings against one reference set (ground truth or teacher)."""

    def __init__(self) -> None:
        self.scores: dict[str, list[Tensor]] = {}
        self.embeddings: list[Tensor] = []

    def add(self, pair: Pair, metrics: list[Metric], feature: FeatureNetwork, paired: bool = True) -> None:
        """Score ``pair`` (per-image metrics only when ``paired``: the reference is the output's own target)."""
        for metric in metrics if paired else []:
            if isinstance(metric, PairedMetric):
                self.scores.setdefault(metric.key, []).append(metric.compute(pair).cpu())
        self.embeddings.append(feature.pool(pair.reference_features).double().cpu())

    def result(self, metric: Metric, fakes: Tensor, options: dict[str, Any]) -> float | None:
        if isinstance(metric, PairedMetric):
            scores = self.scores.get(metric.key)
            return float(torch.cat(scores).double().mean()) if scores else None
        if isinstance(metric, DistributionMetric):
            enough = fakes.shape[0] >= metric.min_images
            return metric.compute(torch.cat(self.embeddings), fakes, options) if enough else None
        raise PocketganError(f"metric {metric.key}: a {type(metric).__name__} is neither paired nor distribution")


def _check_batch(name: str, output: Tensor, target: Tensor) -> None:
    if output.shape != target.shape:
        raise PocketganError(
            f"the {name} outputs {tuple(output.shape[1:])} for targets of {tuple(target.shape[1:])}: "
            "check the dataset direction and the model's channels"
        )


def _generate(model: nn.Module, images: Tensor) -> Tensor:
    return model(images).float().clamp(-1.0, 1.0)


@dataclass
class _Evaluation:
    """The networks of one :func:`evaluate` call and what it has collected so far."""

    model: nn.Module
    teacher: nn.Module | None
    feature: FeatureNetwork
    metrics: list[Metric]
    sides: dict[str, _Side]
    paired: bool = True  # False on unaligned data: B is not A's target, so no per-image scores against it
    fakes: list[Tensor] = field(default_factory=list)
    size: list[int] = field(default_factory=list)

    def add(self, inputs: Tensor, target: Tensor) -> None:
        """Generate, embed and score one batch against the ground truth (and the teacher)."""
        self.size = list(target.shape[-2:])
        if min(self.size) < SSIM_MIN_SIZE:
            height, width = self.size
            raise PocketganError(f"images of {height}×{width} px are too small for SSIM (at least 11×11)")
        fake = _generate(self.model, inputs)
        _check_batch("model", fake, target)
        fake_maps = self.feature(fake)
        self.fakes.append(self.feature.pool(fake_maps).double().cpu())
        self.sides[GROUND_TRUTH].add(Pair(fake, target, fake_maps, self.feature(target)), self.metrics, self.feature,
                                     self.paired)  # fmt: skip
        if self.teacher is not None:
            guide = _generate(self.teacher, inputs)
            _check_batch("teacher", guide, target)
            self.sides[TEACHER].add(Pair(fake, guide, fake_maps, self.feature(guide)), self.metrics, self.feature)

    def results(self, options: dict[str, Any]) -> dict[str, MetricResult]:
        fakes, network = torch.cat(self.fakes), self.feature.name
        results = {}
        for metric in self.metrics:
            values = {side: scores.result(metric, fakes, options) for side, scores in self.sides.items()}
            results[metric.key] = MetricResult(
                metric.key, metric.title(network), values[GROUND_TRUTH], values.get(TEACHER),
                network=network if metric.uses_features else None, higher_is_better=metric.higher_is_better,
                note=metric.note,
            )  # fmt: skip
        return results


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    feature: FeatureNetwork,
    teacher: nn.Module | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: ProgressCallback | None = None,
    model_name: str | None = None,
    teacher_name: str | None = None,
    kid_subset_size: int = 1000,
    metrics: Sequence[str] | None = None,
    latent_seed: int = EVAL_LATENT_SEED,
) -> EvalReport:
    """Every registered metric (or those named in ``metrics``) of ``model`` on ``dataset``.

    ``dataset`` yields ``{"A": input, "B": ground truth}`` (3×H×W in ``[-1, 1]``), as
    ``pocketgan.distill.data.open_dataset``. ``teacher`` adds the "vs teacher" column.
    On an unaligned (CycleGAN) dataset B is an unrelated target-domain image: the per-image
    metrics against it (PSNR, SSIM, LPIPS-style) are not computed (``None``, with a note);
    FID/KID compare the outputs with the B images. ``progress`` receives one event per batch.
    A latent-input ``model`` (StyleGAN2) makes one sample per image of ``dataset`` from
    :func:`eval_latents` (``latent_seed``): see :class:`LatentSamples`.
    """
    z_dim = latent_dim(model)
    if z_dim is not None and not isinstance(dataset, LatentSamples):
        dataset = LatentSamples(dataset, z_dim, latent_seed)
    count = len(dataset)  # type: ignore[arg-type]
    if count == 0:
        raise PocketganError("cannot evaluate on an empty dataset")
    if batch_size < 1:
        raise PocketganError(f"--batch must be at least 1; got {batch_size}")
    device = torch.device(device)
    sides = {GROUND_TRUTH: _Side(), **({TEACHER: _Side()} if teacher is not None else {})}
    paired = getattr(dataset, "layout", "") not in UNPAIRED_LAYOUTS
    run = _Evaluation(model.to(device).eval(), teacher.to(device).eval() if teacher is not None else None,
                      feature.to(device).freeze(), selected_metrics(metrics), sides, paired)  # fmt: skip
    started = time.perf_counter()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    task = ProgressTask(as_callback(progress), f"evaluating {model_name or 'model'}", total=count)
    with torch.inference_mode(), task:
        for batch in loader:
            run.add(batch["A"].to(device).float(), batch["B"].to(device).float())
            task.advance(batch["A"].shape[0])
    results = run.results({"kid_subset_size": kid_subset_size})
    return EvalReport(
        model=model_name or type(model).__name__, feature_network=run.feature.name, n=count, image_size=run.size,
        metrics=results, seconds=round(time.perf_counter() - started, 3),
        teacher=teacher_name if teacher is not None else None, notes=_notes(run.metrics, count) + _unpaired_note(run),
        feature_key=run.feature.key,
    )  # fmt: skip


def _unpaired_note(run: _Evaluation) -> list[str]:
    """What an evaluation on unpaired data leaves out."""
    skipped = [m.name for m in run.metrics if isinstance(m, PairedMetric)]
    if run.paired or not skipped:
        return []
    return [f"unpaired data: {'/'.join(skipped)} against the ground truth not computed (no image is the target "
            "of the generator's input)"]


def _notes(metrics: list[Metric], count: int) -> list[str]:
    """What the reader of a small evaluation must know about its distribution metrics."""
    distribution = [m for m in metrics if isinstance(m, DistributionMetric)]
    missing = [m for m in distribution if count < m.min_images]
    noisy = [m for m in distribution if m.min_images <= count < NOISY_BELOW]
    notes = []
    if missing:
        verb = "needs" if len(missing) == 1 else "need"
        least = max(m.min_images for m in missing)
        notes.append(f"{' and '.join(m.name for m in missing)} {verb} at least {least} images: not computed")
    if noisy:
        notes.append(f"{'/'.join(m.name for m in noisy)} on n={count} images are noisy and biased upwards; "
                     "compare models on the same n")  # fmt: skip
    return notes


# ---------------------------------------------------------------- over training

def evaluate_over_training(
    model: nn.Module,
    snapshots: Sequence[tuple[int, str | Path]],
    dataset: Dataset,
    *,
    feature: FeatureNetwork,
    metrics: Sequence[str] = ("fid",),
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
) -> list[dict[str, float | int | None]]:
    """``[{"step": s, "fid": ...}]``: ``metrics`` of ``model`` with the weights of each snapshot, on ``dataset``.

    ``snapshots`` are ``(step, weights file)`` pairs, e.g. the ones a training run with option
    ``snapshot_every`` left (:func:`pocketgan.distill.run_log.list_snapshots`).
    ``model`` is the finished generator (its architecture rebuilds every snapshot; it is not modified).
    A latent-input model is evaluated on the same :func:`eval_latents` at every step, so the curve
    moves only with the weights.
    """
    import copy

    from safetensors.torch import load_file

    current = copy.deepcopy(model).eval()
    curve: list[dict[str, float | int | None]] = []
    with ProgressTask(as_callback(progress), "metrics over training", total=len(snapshots)) as task:
        for step, path in snapshots:
            current.load_state_dict(load_file(str(path)))
            report = evaluate(current, dataset, feature=feature, batch_size=batch_size, metrics=metrics)
            curve.append({"step": int(step), **{key: report.value(key) for key in metrics}})
            task.advance()
    return curve
