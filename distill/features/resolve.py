"""``load_feature_network``: resolve ``--feature NAME|PATH`` (and ``--data``) to a frozen network.

Accepted forms:

- ``None`` or ``"domain"``: the domain network of ``data`` (trained once, then cached);
- ``"pocketgan-<dataset>"``: the newest cached network of that name (for ``data``'s contents when
  ``data`` is given, whatever its training config; trained with the default config if there is none);
- ``"inception"``: FID InceptionV3 from a ``pt_inception-2015-12-05*.pth`` found in the cache
  directory or torch hub's checkpoint folder (where pytorch-fid keeps it);
- a path ending in ``.pth``/``.pt``: FID InceptionV3 from that file;
- a path ending in ``.safetensors``: a saved domain network (with its ``.json`` sidecar).
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
from pocketgan.distill.features.inception import WEIGHTS_GLOB, find_inception_weights, load_inception
from pocketgan.core.errors import PocketganError

DOMAIN_PREFIX = "pocketgan-"


def load_feature_network(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    domain_config: DomainConfig | None = None,
) -> FeatureNetwork:
    """A frozen :class:`FeatureNetwork` for ``name_or_path`` (see the module docstring).

    ``data`` is a dataset directory (needed by the domain network); ``cache_dir`` overrides
    ``$POCKETGAN_CACHE/features`` (default ``~/.cache/pocketgan/features``); ``domain_config``
    overrides the domain network's architecture and training budget (part of its cache key).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    text = "domain" if name_or_path is None else str(name_or_path)
    options = {"data": data, "cache_dir": cache_dir, "progress": progress, "domain_config": domain_config}
    suffix = Path(text).suffix.lower()
    if suffix in (".pth", ".pt"):
        return load_inception(text)
    if suffix == ".safetensors":
        return load_domain_network(text)
    if text.startswith(DOMAIN_PREFIX):
        return _named_domain_network(text, **options)
    return feature_factory(text)(**options)


@register_feature_network("domain")
def _domain(*, data, cache_dir: Path, progress: bool, domain_config: DomainConfig | None, **_) -> FeatureNetwork:
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


def _named_domain_network(name: str, *, data, cache_dir: Path, progress: bool, domain_config, **_) -> FeatureNetwork:
    """A cached network of that name (for ``data``, if given: any config); trained for ``data`` when none is."""
    if data is None:
        cached = cached_domain_networks(cache_dir, name)
        if not cached:
            raise PocketganError(f"no cached feature network {name} in {cache_dir}: pass --data DIR to train it")
        return load_domain_network(cached[-1])
    from pocketgan.distill.data import dataset_fingerprint

    expected = domain_network_name(data)
    if name != expected:
        raise PocketganError(f"feature network {name} does not belong to dataset {data} (its network is {expected})")
    cached = cached_domain_networks(cache_dir, name, dataset_fingerprint(data))
    if cached and domain_config is None:
        return load_domain_network(cached[-1])
    return _domain(data=data, cache_dir=cache_dir, progress=progress, domain_config=domain_config)
