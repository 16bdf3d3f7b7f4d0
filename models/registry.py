"""timm-style registries for generators and discriminators, and the architecture reference syntax.

A reference is ``NAME[:key=value,...]`` for a registered generator (built in, or a
``pocketgan.generators`` entry point) or ``MODULE:FACTORY[:key=value,...]`` for any importable
callable returning an ``nn.Module`` (``mypkg.nets:build:channels=16``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_value
from pocketgan.core.registry import Registry

FACTORY_SYNTAX = "arch:key=value,... or package.module:factory[:key=value,...]"
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_FACTORY_NAME = _MODULE_NAME  # a function or class, or an attribute path such as Zoo.small

#: Generator factories ``fn(widths=None, **config) -> Generator``; plugins: entry-point group ``pocketgan.generators``.
GENERATORS: Registry[Callable[..., Any]] = Registry(
    "generator",
    group="pocketgan.generators",
    builtin_modules=(
        "pocketgan.models.resnet", "pocketgan.models.fast_resnet", "pocketgan.models.unet", "pocketgan.models.stylegan2"
    ),
)
#: Discriminator factories ``fn(**config) -> nn.Module``.
DISCRIMINATORS: Registry[Callable[..., Any]] = Registry(
    "discriminator",
    group="pocketgan.discriminators",
    builtin_modules=("pocketgan.models.patchgan", "pocketgan.models.stylegan2"),
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
    """Build a generator by reference name, e.g. ``create_generator("resnet9", ngf=64)``.

    ``name`` is a registered generator or an importable factory (``"mypkg.nets:build"``); see
    :mod:`pocketgan.models.factory` for how factories that know nothing about ``widths`` are pruned.
    """
    from pocketgan.models.factory import build_from_reference

    return build_from_reference(name, config, widths)


def create_discriminator(name: str, **config: Any):
    """Build a registered discriminator, e.g. ``create_discriminator("patchgan", input_nc=6)``."""
    return DISCRIMINATORS.get(name)(**config)


def parse_reference(ref: str) -> tuple[str, dict[str, Any]]:
    """Split an architecture reference into its name and config.

    ``"resnet9:ngf=32,dropout=false"`` → ``("resnet9", {"ngf": 32, "dropout": False})``;
    ``"mypkg.nets:build:ngf=8"`` → ``("mypkg.nets:build", {"ngf": 8})``. After the first colon,
    ``key=value`` pairs mean a registered generator's config, a Python name (no ``=``) an
    importable factory (see :data:`FACTORY_SYNTAX`).
    """
    head, _, rest = ref.strip().partition(":")
    second, colon, after = rest.partition(":")
    if _FACTORY_NAME.fullmatch(second.strip()) and head.strip() not in GENERATORS:
        name, rest = f"{head.strip()}:{second.strip()}", after if colon else ""
    else:
        name = head.strip()
    config: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise PocketganError(f"bad architecture reference {ref!r}: expected {FACTORY_SYNTAX}")
        config[key.strip().replace("-", "_")] = parse_value(value.strip())
    return name, config


def is_factory_name(name: str) -> bool:
    """True for ``module:factory`` names (``mypkg.nets:build``), as :func:`parse_reference` returns them."""
    module, colon, attr = name.partition(":")
    return bool(colon) and bool(_MODULE_NAME.fullmatch(module)) and bool(_FACTORY_NAME.fullmatch(attr))


def is_reference(ref: str) -> bool:
    """True when ``ref`` names a registered generator (``resnet9:ngf=16``) or a factory (``nets:build``)."""
    try:
        name, _ = parse_reference(ref)
    except PocketganError:
        return ref.partition(":")[0] in GENERATORS
    return name in GENERATORS or is_factory_name(name)
