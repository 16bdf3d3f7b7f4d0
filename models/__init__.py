"""Generators and discriminators, their registry, model directories, pruning and profiling.

Any ``nn.Module`` becomes a pocketgan generator with :func:`wrap` (or a ``module:factory``
reference, or a ``pocketgan.generators`` entry point); every stage then accepts it.
"""

from pocketgan.core.contract import IOSpec
from pocketgan.models import fast_resnet as _fast_resnet  # noqa: F401  (registers)
from pocketgan.models import patchgan as _patchgan  # noqa: F401
from pocketgan.models import resnet as _resnet  # noqa: F401
from pocketgan.models import stylegan2 as _stylegan2  # noqa: F401
from pocketgan.models import unet as _unet  # noqa: F401
from pocketgan.models.base import FeatureTap, Generator, as_generator, capture_features
from pocketgan.models.graph import LAYER_PRUNERS, LayerPruner, register_pruner
from pocketgan.models.importance import IMPORTANCE, ImportanceCriterion, register_importance
from pocketgan.models.io import LoadedModel, as_loaded, build_generator, load_model, save_model
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
from pocketgan.models.wrap import WrappedGenerator, wrap

__all__ = [
    "IMPORTANCE",
    "IOSpec",
    "LAYER_PRUNERS",
    "FeatureTap",
    "Generator",
    "ImportanceCriterion",
    "LayerPruner",
    "LoadedModel",
    "ProfileReport",
    "PruneResult",
    "WrappedGenerator",
    "as_generator",
    "as_loaded",
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
    "register_importance",
    "register_pruner",
    "save_model",
    "wrap",
]
