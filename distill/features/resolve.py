"""``load_feature_network``: resolve ``--feature NAME|PATH`` (and ``--data``) to a frozen network.

Accepted forms, each resolved by content key (never "the newest file"):

- ``None`` or ``"domain"``: the domain network of ``data`` for the config (default
  :class:`DomainConfig`), at its content address (dataset fingerprint + config); trained once, then cached;
- ``"pocketgan-<dataset>"``: the same network, after checking the name belongs to ``data``; without
  ``data``, the only cached network of that name (several: an error naming them);
- ``"pocketgan-<dataset>-<key>"``: that cached network (the file name in the cache directory);
- ``"inception"``: FID InceptionV3 from a ``pt_inception-2015-12-05*.pth`` found in the cache
  directory or torch hub's checkpoint folder (where pytorch-fid keeps it);
- ``"dino-resnet50"`` / ``"clip-rn50"``: DINO ResNet-50 / CLIP RN50's image tower from a weights file found
  in the cache directory; ``"dino-resnet50=PATH"`` / ``"clip-rn50=PATH"``: from that file;
- a path ending in ``.pth``/``.pt``/``.safetensors`` whose keys are a DINO ResNet-50's or a CLIP RN50's:
  that tower (:func:`~pocketgan.distill.features.towers.tower_for_weights`);
- a path ending in ``.pth``/``.pt``: FID InceptionV3 from that file;
- a path ending in ``.safetensors``: a saved domain network (with its ``.json`` sidecar).

Every network's ``key`` (:attr:`FeatureNetwork.key`) hashes its weights: that is what run identities
and cache keys record.
"""

from __future__ import annotations

import os
from pathlib import Path

from pocketgan.distill.features.base import (
    FeatureNetwork,
    default_cache_dir,
    feature_factory,
    list_feature_networks,
    register_feature_network,
)
from pocketgan.distill.features.domain import (
    DomainConfig,
    cached_domain_networks,
    domain_network_for,
    domain_network_name,
    load_domain_network,
)
from pocketgan.core.contract import sidecar_path
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.features.inception import WEIGHTS_GLOB, find_inception_weights, load_inception
from pocketgan.distill.features import clip_rn50, resnet50  # noqa: F401  (register dino-resnet50, clip-rn50)
from pocketgan.distill.features.towers import TOWERS, tower_for_weights

DOMAIN_PREFIX = "pocketgan-"


def load_feature_network(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    domain_config: DomainConfig | None = None,
) -> FeatureNetwork:
    """A frozen :class:`FeatureNetwork` for ``name_or_path`` (see the module docstring).

    ``data`` is a dataset directory (needed by the domain network); ``cache_dir`` overrides
    ``$POCKETGAN_CACHE/features`` (default ``~/.cache/pocketgan/features``); ``domain_config``
    overrides the domain network's architecture and training budget (part of its cache key);
    ``progress`` receives the events of reading photos and training, when a network is trained.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    text = "domain" if name_or_path is None else str(name_or_path)
    options = {"data": data, "cache_dir": cache_dir, "progress": progress, "domain_config": domain_config}
    name, sep, weights = text.partition("=")
    if sep and name in TOWERS and not Path(text).exists():  # NAME=PATH: that network's weights
        return feature_factory(name)(weights=weights, **options)
    tower = tower_for_weights(text)
    if tower is not None:
        return feature_factory(tower)(weights=text, **options)
    suffix = Path(text).suffix.lower()
    if suffix in (".pth", ".pt"):
        return load_inception(text)
    if suffix == ".safetensors":
        return load_domain_network(text)
    if text.startswith(DOMAIN_PREFIX):
        return _named_domain_network(text, **options)
    return feature_factory(text)(**options)


@register_feature_network("domain")
def _domain(
    *, data, cache_dir: Path, progress: ProgressCallback | None, domain_config: DomainConfig | None, **_
) -> FeatureNetwork:
    """The domain network trained on (and cached for) dataset ``data``."""
    if data is None:
        raise PocketganError(
            "the domain feature network is trained on a dataset: pass --data DIR "
            f"(or --feature {' | '.join(list_feature_networks())} | a weights file)"
        )
    return domain_network_for(data, cache_dir=cache_dir, config=domain_config or DomainConfig(), progress=progress)


@register_feature_network("inception")
def _inception(*, cache_dir: Path, **_) -> FeatureNetwork:
    """FID InceptionV3 from weights already on this machine (never downloaded)."""
    torch_hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    found = find_inception_weights([cache_dir, torch_hub])
    if found is None:
        raise PocketganError(
            f"inception needs the FID weights file {WEIGHTS_GLOB} (pytorch-fid's), which cannot be downloaded "
            f"here: copy it into {cache_dir} or pass its path as --feature"
        )
    return load_inception(found)


def _named_domain_network(
    name: str, *, data, cache_dir: Path, progress: ProgressCallback | None, domain_config, **_
) -> FeatureNetwork:
    """``pocketgan-<dataset>[-<key>]`` by content key (see the module docstring)."""
    exact = cache_dir / f"{name}.safetensors"
    if exact.exists() and sidecar_path(exact).exists():  # pocketgan-<dataset>-<key>: that file
        return load_domain_network(exact)
    if data is None:
        cached = cached_domain_networks(cache_dir, name)
        if not cached:
            raise PocketganError(f"no cached feature network {name} in {cache_dir}: pass --data DIR to train it")
        if len(cached) > 1:
            names = ", ".join(path.stem for path in cached)
            raise PocketganError(f"{len(cached)} cached feature networks are called {name} ({names}): "
                                 "pass --data DIR to use the one of that dataset, or name one of them")  # fmt: skip
        return load_domain_network(cached[0])
    expected = domain_network_name(data)
    if name != expected:
        raise PocketganError(f"feature network {name} does not belong to dataset {data} (its network is {expected})")
    return _domain(data=data, cache_dir=cache_dir, progress=progress, domain_config=domain_config)
