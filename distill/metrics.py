"""Image-quality metrics of a generator on a paired dataset: the metric registry.

Every metric is a registered :class:`Metric` (``METRICS``; plugins: entry-point group
``pocketgan.metrics``, whose object is a :class:`PairedMetric` or :class:`DistributionMetric`) that
carries its key, label, direction (↑/↓), format and compute function. The registry drives
:func:`~pocketgan.distill.evaluation.evaluate` (also importable from here), the ``pocketgan eval``
table and the run report's results table (:func:`report_columns`). Built in, against the ground
truth (the dataset's B images) and, when given, against the teacher's outputs:

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import Registry
from pocketgan.distill.features import feature_distance
from pocketgan.distill.quality import (  # re-exported: the functions behind the built-in metrics
    frechet_distance,
    kernel_inception_distance,
    psnr_per_image,
    ssim_per_image,
)

GROUND_TRUTH, TEACHER = "ground_truth", "teacher"
DIRECTIONS = {"↑": True, "↓": False}  # arrow → higher is better

_EVALUATION = ("EvalReport", "MetricResult", "evaluate")  # in pocketgan.distill.evaluation, importable here

__all__ = [
    "DistributionMetric", "EvalReport", "METRICS", "Metric", "MetricResult", "PairedMetric", "Pair", "ReportColumn",
    "evaluate", "frechet_distance", "get_metric", "kernel_inception_distance", "list_metrics", "psnr_per_image",
    "register_metric", "report_columns", "selected_metrics", "ssim_per_image",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """``from pocketgan.distill.metrics import evaluate, EvalReport`` (imported lazily: evaluation imports us)."""
    if name in _EVALUATION:
        from pocketgan.distill import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- what a metric is


@dataclass(frozen=True)
class ReportColumn:
    """One column of the run report's results table: the metric against ``against``, placed by ``order``."""

    title: str
    against: str = GROUND_TRUTH  # or TEACHER
    order: float = 100.0
    format: str | None = None  # None: the metric's format


@dataclass(frozen=True)
class Pair:
    """A batch of outputs, the references they are compared with, and both batches' feature maps."""

    output: Tensor
    reference: Tensor
    output_features: list[Tensor]
    reference_features: list[Tensor]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """A registered metric: ``key`` (JSON and table rows), ``label`` (``{network}`` becomes the feature
    network's name), ``direction`` ``"↑"`` (higher is better) or ``"↓"``, ``format`` for its values, and
    where it appears: ``order`` in the eval table, ``columns`` in the run report (none: not shown)."""

    key: str
    label: str
    direction: str
    format: str = "{:.4g}"
    short: str = ""  # in notes ("FID and KID need ..."); default: the key in capitals
    note: str = ""
    uses_features: bool = False
    order: float = 100.0
    columns: tuple[ReportColumn, ...] = ()

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise PocketganError(f"metric {self.key}: direction must be ↑ or ↓, not {self.direction!r}")

    @property
    def higher_is_better(self) -> bool:
        return DIRECTIONS[self.direction]

    @property
    def name(self) -> str:
        return self.short or self.key.upper()

    def title(self, network: str) -> str:
        """The label, with the feature network's name filled in."""
        return self.label.format(network=network)

    def render(self, value: float | None, format: str | None = None) -> str:
        """A table cell: ``–`` when not computed, ``∞`` for identical images' PSNR, else ``format``."""
        if value is None:
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return (format or self.format).format(value)


@dataclass(frozen=True, kw_only=True)
class PairedMetric(Metric):
    """Scored per image against its reference (``compute(pair) -> Tensor[N]``), averaged over the images."""

    compute: Callable[[Pair], Tensor]


@dataclass(frozen=True, kw_only=True)
class DistributionMetric(Metric):
    """Compares the set of outputs with the set of references in the feature network's embedding space:
    ``compute(reference_embeddings, output_embeddings, options) -> float``; needs ``min_images`` of each."""

    compute: Callable[[Tensor, Tensor, dict[str, Any]], float]
    uses_features: bool = True
    min_images: int = 2


#: The metrics :func:`evaluate` computes; plugins: entry-point group ``pocketgan.metrics``.
METRICS: Registry[Metric] = Registry("metric", group="pocketgan.metrics")


def register_metric(metric: Metric) -> Metric:
    """Register ``metric`` under its key (a plugin's entry point may return the object instead)."""
    return METRICS.register(metric.key, metric)


def get_metric(key: str) -> Metric:
    """The metric registered as ``key``, or a one-line error naming the known ones."""
    return METRICS.get(key)


def list_metrics() -> list[str]:
    """Keys of every registered metric, in table order."""
    return [metric.key for metric in selected_metrics()]


def selected_metrics(keys: Sequence[str] | None = None) -> list[Metric]:
    """The metrics named by ``keys`` (default: every registered one), in table order."""
    chosen = [METRICS.get(key) for key in keys] if keys is not None else [metric for _, metric in METRICS.items()]
    return sorted(chosen, key=lambda metric: (metric.order, metric.key))


def report_columns() -> list[tuple[str, str, Metric, str]]:
    """The run report's metric columns: ``(title, row key, metric, format)`` in column order.

    The row key is the metric's key against the ground truth and ``<key>_teacher`` against the teacher,
    as in :meth:`~pocketgan.distill.evaluation.EvalReport.row`.
    """
    columns = [(column, metric) for metric in selected_metrics() for column in metric.columns]
    columns.sort(key=lambda item: item[0].order)
    return [
        (column.title, metric.key if column.against == GROUND_TRUTH else f"{metric.key}_teacher", metric,
         column.format or metric.format)  # fmt: skip
        for column, metric in columns
    ]


# ---------------------------------------------------------------- the built-in metrics


def _kid(real: Tensor, fake: Tensor, options: dict[str, Any]) -> float:
    return kernel_inception_distance(real, fake, options.get("kid_subset_size", 1000))[0]


for _metric in (
    PairedMetric(
        key="psnr", label="PSNR (dB)", direction="↑", format="{:.2f}", order=10,
        compute=lambda pair: psnr_per_image(pair.output, pair.reference),
        columns=(ReportColumn("PSNR (GT)", order=10), ReportColumn("PSNR (teacher)", TEACHER, order=25)),
    ),
    PairedMetric(
        key="ssim", label="SSIM", direction="↑", format="{:.4f}", order=20,
        compute=lambda pair: ssim_per_image(pair.output, pair.reference),
        columns=(ReportColumn("SSIM (GT)", order=20, format="{:.3f}"),),
    ),
    DistributionMetric(
        key="fid", label="FID ({network})", direction="↓", format="{:.3f}", order=30,
        compute=lambda real, fake, options: frechet_distance(real, fake),
        columns=(ReportColumn("FID", order=30, format="{:.2f}"),),
    ),
    DistributionMetric(
        key="kid", label="KID ({network})", direction="↓", format="{:.5f}", order=40, compute=_kid,
        note="polynomial kernel, ×1 (not ×1e3)", columns=(ReportColumn("KID", order=40, format="{:.3f}"),),
    ),
    PairedMetric(
        key="lpips_style", label="LPIPS-style distance ({network}, unweighted)", direction="↓", format="{:.4f}",
        short="LPIPS-style", order=50, uses_features=True,
        compute=lambda pair: feature_distance(pair.output_features, pair.reference_features),
        note="unit-normalised features, squared difference, spatial mean, summed over levels; no learned weights",
    ),
):  # fmt: skip
    register_metric(_metric)
