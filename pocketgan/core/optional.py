"""Optional dependencies, imported inside the function that needs them (standard library only)."""

from __future__ import annotations

import importlib
from types import ModuleType

from pocketgan.core.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import an optional dependency or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from None
