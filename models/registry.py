"""timm-style registries for generators and discriminators, and the ``arch:key=value`` reference syntax."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_value
from pocketgan.core.registry import Registry

#: Generator factories ``fn(widths=None, **config) -> Generator``; plugins: entry-point group ``pocketgan.generators``.
GENERATORS: Registry[Callable[..., Any]] = Registry(
    "generator", group="pocketgan.generators", builtin_modules=("pocketgan.models.resnet", "pocketgan.models.unet")
)
#: Discriminator factories ``fn(**config) -> nn.Module``.
DISCRIMINATORS: Registry[Callable[..., Any]] = Registry(
    "discriminator", group="pocketgan.discriminators", builtin_modules=("pocketgan.models.patchgan",)
)


def register_generator(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a factory ``fn(widths=None, **config) -> Generator`` under ``name``."""
    return GENERATORS.register(name)


def register_discriminator(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a discriminator factory under ``name``."""
    return DISCRIMINATORS.register(name)


def list_generators() -> list[str]:
    """Names accepted by :func:`create_generator`."""
    return GENERATORS.names()


def list_discriminators() -> list[str]:
    """Names accepted by :func:`create_discriminator`."""
    return DISCRIMINATORS.names()


def create_generator(name: str, *, widths: dict[str, int] | None = None, **config: Any):
    """Build a registered generator, e.g. ``create_generator("resnet9", ngf=64)``."""
    return GENERATORS.get(name)(widths=widths, **config)


def create_discriminator(name: str, **config: Any):
    """Build a registered discriminator, e.g. ``create_discriminator("patchgan", input_nc=6)``."""
    return DISCRIMINATORS.get(name)(**config)


def parse_reference(ref: str) -> tuple[str, dict[str, Any]]:
    """``"resnet9:ngf=32,dropout=false"`` → ``("resnet9", {"ngf": 32, "dropout": False})``."""
    name, _, rest = ref.partition(":")
    config: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise PocketganError(f"bad architecture reference {ref!r}: expected arch:key=value,...")
        config[key.strip().replace("-", "_")] = parse_value(value.strip())
    return name.strip(), config


def is_reference(ref: str) -> bool:
    """True when ``ref`` names a registered generator (``resnet9`` or ``resnet9:ngf=16``)."""
    return ref.partition(":")[0] in GENERATORS
