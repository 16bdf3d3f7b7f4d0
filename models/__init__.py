"""Generators and discriminators, their registry, model directories and checkpoint loading."""

from pocketgan.models import patchgan as _patchgan  # noqa: F401  (registers)
from pocketgan.models import resnet as _resnet  # noqa: F401
from pocketgan.models import unet as _unet  # noqa: F401
from pocketgan.models.base import FeatureTap, Generator, capture_features
from pocketgan.models.io import LoadedModel, build_generator, load_model, save_model
from pocketgan.models.profile import ProfileReport, profile_model
from pocketgan.models.prune import PruneResult, prune_model
from pocketgan.models.registry import (
    create_discriminator,
    create_generator,
    list_discriminators,
    list_generators,
    parse_reference,
    register_discriminator,
    register_generator,
)

__all__ = [
    "FeatureTap",
    "Generator",
    "LoadedModel",
    "ProfileReport",
    "PruneResult",
    "build_generator",
    "capture_features",
    "create_discriminator",
    "create_generator",
    "list_discriminators",
    "list_generators",
    "load_model",
    "parse_reference",
    "profile_model",
    "prune_model",
    "register_discriminator",
    "register_generator",
    "save_model",
]

