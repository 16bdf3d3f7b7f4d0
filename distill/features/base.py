"""What every feature network shares, and the registry that resolves ``--feature NAME|PATH``.

A :class:`FeatureNetwork` is a frozen image encoder with two views of an image batch
(``N×3×H×W`` floats in ``[-1, 1]``, resized internally as the network needs):

- ``forward(x) -> list[Tensor]``: multi-scale feature maps, shallow to deep (the
  perceptual network of OMGD's SSIM/style/feature losses, and the LPIPS-style distance);
- ``embed(x) -> Tensor[N, D]``: one pooled vector per image (FID, KID).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import Registry

FeatureFactory = Callable[..., "FeatureNetwork"]
#: Feature-network factories; plugins: entry-point group ``pocketgan.features``.
FEATURE_NETWORKS: Registry[FeatureFactory] = Registry(
    "feature network", group="pocketgan.features", builtin_modules=("pocketgan.distill.features.resolve",)
)


class FeatureNetwork(nn.Module):
    """A frozen multi-scale image encoder. Subclasses implement :meth:`features` and :meth:`pool`.

    Attributes: ``name`` labels every metric computed with it (``"FID (inception)"`` is not
    ``"FID (pocketgan-edges2photos)"``); ``num_features`` is the size ``D`` of :meth:`embed`
    (torchmetrics reads it); ``level_channels`` are the channels of the maps of :meth:`forward`.
    """

    name: str = "feature-network"
    num_features: int = 0
    level_channels: tuple[int, ...] = ()

    def features(self, x: Tensor) -> list[Tensor]:
        """Multi-scale maps of an input already in the network's range and size."""
        raise NotImplementedError

    def pool(self, features: list[Tensor]) -> Tensor:
        """The ``N×D`` embedding from the maps :meth:`forward` returned."""
        raise NotImplementedError

    def prepare(self, x: Tensor) -> Tensor:
        """Resize/convert an ``N×3×H×W`` batch in ``[-1, 1]`` to what :meth:`features` expects."""
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps of ``x`` (``N×3×H×W`` in ``[-1, 1]``), shallow → deep."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise PocketganError(f"{self.name}: expected an N×3×H×W image batch, got shape {tuple(x.shape)}")
        return self.features(self.prepare(x))

    def embed(self, x: Tensor) -> Tensor:
        """Pooled ``N×D`` vectors of ``x`` (``N×3×H×W`` in ``[-1, 1]``), for FID and KID."""
        return self.pool(self(x))

    def freeze(self) -> FeatureNetwork:
        """Evaluation mode for good, and no parameter gradients (inputs may still carry gradients)."""
        super().train(False)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FeatureNetwork:
        """A frozen network ignores ``train()``: batch-norm statistics never move."""
        return super().train(False)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for reports (name, embedding size, levels)."""
        return {"name": self.name, "num_features": self.num_features, "level_channels": list(self.level_channels)}


def register_feature_network(name: str) -> Callable[[FeatureFactory], FeatureFactory]:
    """Decorator: register ``fn(path=None, *, data, cache_dir, progress) -> FeatureNetwork`` as ``name``."""

    def wrap(fn: FeatureFactory) -> FeatureFactory:
        return FEATURE_NETWORKS.register(name, fn)

    return wrap


def list_feature_networks() -> list[str]:
    """Names accepted by :func:`load_feature_network`."""
    return FEATURE_NETWORKS.names()


def feature_factory(name: str) -> FeatureFactory:
    """The registered factory for ``name``, or a one-line error listing the choices."""
    try:
        return FEATURE_NETWORKS.get(name)
    except PocketganError as exc:
        raise PocketganError(
            f"{exc} or give a weights file (.pth for InceptionV3, .safetensors for a pocketgan domain network)"
        ) from None


def default_cache_dir() -> Path:
    """``$POCKETGAN_CACHE/features`` when the variable is set, else ``~/.cache/pocketgan/features``."""
    root = os.environ.get("POCKETGAN_CACHE")
    return Path(root).expanduser() / "features" if root else Path.home() / ".cache" / "pocketgan" / "features"


def unit_normalize(features: Tensor, eps: float = 1e-10) -> Tensor:
    """Scale each spatial position's channel vector to unit length (as LPIPS does)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def feature_distance(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """LPIPS-style distance per image, **without learned weights**.

    For each level: unit-normalise the channel vectors, take the squared difference summed
    over channels and averaged over positions; sum over levels. Identical inputs give 0.
    """
    if len(a) != len(b) or not a:
        raise PocketganError(f"feature distance needs the same non-zero number of levels; got {len(a)} and {len(b)}")
    per_level = [
        (unit_normalize(x) - unit_normalize(y)).pow(2).sum(dim=1).mean(dim=(1, 2)) for x, y in zip(a, b, strict=True)
    ]
    return torch.stack(per_level).sum(dim=0)
