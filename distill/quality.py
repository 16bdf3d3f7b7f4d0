"""The image-quality functions behind the built-in metrics (torchmetrics underneath).

Per image pair: :func:`psnr_per_image`, :func:`ssim_per_image` (images in ``[-1, 1]``, ``data_range=2``).
Between two sets of embeddings (``FeatureNetwork.embed``/``pool``): :func:`frechet_distance` (FID) and
:func:`kernel_inception_distance` (KID). The LPIPS-style distance is
:func:`pocketgan.distill.features.feature_distance`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError


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


def psnr_per_image(prediction: Tensor, target: Tensor) -> Tensor:
    """PSNR (dB) of each image pair, images in ``[-1, 1]``; ``inf`` for identical images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(prediction, target, data_range=2.0, reduction="none", dim=(1, 2, 3))


def ssim_per_image(prediction: Tensor, target: Tensor) -> Tensor:
    """SSIM of each image pair (Gaussian window 11, σ 1.5), images in ``[-1, 1]``; 1 for identical images."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(prediction, target, data_range=2.0, reduction="none")
