"""timm-style registries for generators and discriminators, and the ``arch:key=value`` reference syntax."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocketgan.errors import PocketganError

_GENERATORS: dict[str, Callable[..., Any]] = {}
_DISCRIMINATORS: dict[str, Callable[..., Any]] = {}


def register_generator(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a factory ``fn(widths=None, **config) -> Generator`` under ``name``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _GENERATORS[name] = fn
        return fn

    return wrap


def register_discriminator(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a discriminator factory under ``name``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _DISCRIMINATORS[name] = fn
        return fn

    return wrap


def list_generators() -> list[str]:
    """Names accepted by :func:`create_generator`."""
    return sorted(_GENERATORS)


def list_discriminators() -> list[str]:
    return sorted(_DISCRIMINATORS)


def create_generator(name: str, *, widths: dict[str, int] | None = None, **config: Any):
    """Build a registered generator, e.g. ``create_generator("resnet9", ngf=64)``."""
    return _lookup(_GENERATORS, name, "generator")(widths=widths, **config)


def create_discriminator(name: str, **config: Any):
    """Build a registered discriminator, e.g. ``create_discriminator("patchgan", input_nc=6)``."""
    return _lookup(_DISCRIMINATORS, name, "discriminator")(**config)


def _lookup(table: dict[str, Callable[..., Any]], name: str, what: str) -> Callable[..., Any]:
    if name not in table:
        raise PocketganError(f"unknown {what} {name!r}; choose from {', '.join(sorted(table))}")
    return table[name]


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
    return ref.partition(":")[0] in _GENERATORS


def parse_value(text: str) -> Any:
    """``"true"`` → True, ``"16"`` → 16, ``"1e-4"`` → 0.0001, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
