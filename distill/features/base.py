"""What every feature network shares, and the registry that resolves ``--feature NAME|PATH``.

A :class:`FeatureNetwork` is a frozen image encoder with two views of an image batch
(``N×3×H×W`` floats in ``[-1, 1]``, resized internally as the network needs):

- ``forward(x) -> list[Tensor]``: multi-scale feature maps, shallow to deep (the
  perceptual network of OMGD's SSIM/style/feature losses, and the LPIPS-style distance);
- ``embed(x) -> Tensor[N, D]``: one pooled vector per image (FID, KID).

Its ``key`` is a content address (family, levels and weights, not the name): run identities and
cache keys record it, so a retrained or replaced network is never mistaken for the old one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.keys import fingerprint
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
    (torchmetrics reads it); ``level_channels`` are the channels of the maps of :meth:`forward`;
    ``key`` is the network's content address (see :func:`network_key`).
    """

    name: str = "feature-network"
    num_features: int = 0
    level_channels: tuple[int, ...] = ()
    _key: str | None = None

    @property
    def key(self) -> str:
        """Content key: a hash of the class, the levels and the weights (not the name).

        Computed on first use and again after :meth:`load_state_dict`, :meth:`freeze` or a dtype/device
        change (in-place edits of a frozen network's weights are not tracked).
        """
        if self._key is None:
            self._key = network_key(self)
        return self._key

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`nn.Module.load_state_dict`; new weights get a new :attr:`key`."""
        self._key = None
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, *args: Any, **kwargs: Any) -> Any:  # .to(), .double(), ...: the dtype is part of the key
        self._key = None
        return super()._apply(*args, **kwargs)

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
        self._key = None  # the weights are final now
        super().train(False)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FeatureNetwork:
        """A frozen network ignores ``train()``: batch-norm statistics never move."""
        return super().train(False)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for reports (name, embedding size, levels)."""
        return {"name": self.name, "key": self.key, "num_features": self.num_features,
                "level_channels": list(self.level_channels)}  # fmt: skip


def weights_digest(module: nn.Module) -> str:
    """sha256 of a module's state dict: every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def network_key(network: FeatureNetwork) -> str:
    """The content key of ``network``: its class, embedding size, levels and weights; the same for a
    network and its saved-and-reloaded copy, different as soon as one weight differs."""
    family = f"{type(network).__module__}.{type(network).__qualname__}"
    return fingerprint("feature-network", family, network.num_features, list(network.level_channels),
                       weights_digest(network))  # fmt: skip


def register_feature_network(name: str) -> Callable[[FeatureFactory], FeatureFactory]:
    """Decorator: register ``fn(*, data, cache_dir, progress, domain_config) -> FeatureNetwork`` as ``name``.

    ``progress`` is a :data:`~pocketgan.core.progress.ProgressCallback` or ``None``; accept ``**kwargs``
    for arguments a factory does not use.
    """

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
