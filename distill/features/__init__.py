"""Feature networks for metrics (FID, KID, LPIPS-style) and perceptual losses.

``load_feature_network(name_or_path, data=DIR)`` returns a frozen :class:`FeatureNetwork`:
the dataset's own *domain network* (trained here, cached; labelled ``pocketgan-<dataset>``),
or FID InceptionV3 from a local weights file (labelled ``inception``). Every metric names
the network it used: "FID (inception)" is not comparable with "FID (pocketgan-edges2photos)";
every network has a content ``key`` (its weights' hash) that run identities and cache keys record.
"""

from pocketgan.distill.features.base import (
    FeatureNetwork,
    default_cache_dir,
    feature_distance,
    list_feature_networks,
    network_key,
    register_feature_network,
    unit_normalize,
)
from pocketgan.distill.features.degradations import DEGRADATION_NAMES, degrade
from pocketgan.distill.features.domain import (
    DomainConfig,
    DomainFeatureNet,
    domain_network_path,
    load_domain_network,
    save_domain_network,
    train_domain_network,
)
from pocketgan.distill.features.inception import FIDInceptionV3, load_inception
from pocketgan.distill.features.resolve import load_feature_network

__all__ = [
    "DEGRADATION_NAMES",
    "DomainConfig",
    "DomainFeatureNet",
    "FIDInceptionV3",
    "FeatureNetwork",
    "default_cache_dir",
    "degrade",
    "domain_network_path",
    "feature_distance",
    "list_feature_networks",
    "load_domain_network",
    "load_feature_network",
    "load_inception",
    "network_key",
    "register_feature_network",
    "save_domain_network",
    "train_domain_network",
    "unit_normalize",
]
