"""Building generators from their reference: registered names and importable ``module:factory`` callables.

Two kinds of factory build a generator from its :class:`~pocketgan.core.contract.GeneratorSpec`:

- *width-aware* factories take ``widths=`` (every built-in: ``fn(widths=None, **config)``) and
  build pruned widths themselves;
- *plain* factories (``mypkg.nets:build``, a class, or a ``pocketgan.generators`` entry point that
  returns any ``nn.Module``) know nothing about widths: pocketgan builds the fresh model and
  re-applies the recorded widths with torch-pruning's dependency graph
  (:func:`pocketgan.models.graph.apply_widths`). A plain factory may return a module already
  wrapped with :func:`pocketgan.models.wrap` (to declare its :class:`IOSpec`); otherwise it gets
  the default ``IOSpec()``.

``module:factory`` references are imported the way uvicorn imports its ``APP``: with the current
directory on ``sys.path``, so ``pocketgan profile mynets:build`` finds ``./mynets.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import did_you_mean
from pocketgan.models.base import Generator
from pocketgan.models.registry import GENERATORS, is_factory_name


def resolve_factory(name: str) -> Callable[..., Any]:
    """The callable a reference name stands for: a registered generator or an imported ``module:factory``."""
    if is_factory_name(name) and name not in GENERATORS:
        return import_factory(name)
    return GENERATORS.get(name)


def import_factory(name: str) -> Callable[..., Any]:
    """Import ``package.module:attr`` (``attr`` may be dotted) with the current directory on ``sys.path``."""
    module_name, _, attr_path = name.partition(":")
    module = _import_module(module_name, name)
    value: Any = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            known = [n for n in dir(value) if not n.startswith("_")]
            raise PocketganError(f"{name}: {module_name} has no attribute {part!r}{did_you_mean(part, known)}")
        value = getattr(value, part)
    if not callable(value):
        raise PocketganError(f"{name}: {type(value).__name__} is not callable; name a function or class")
    return value


def _import_module(module_name: str, name: str) -> Any:
    if module_name == "__main__" and "__main__" in sys.modules:
        return sys.modules["__main__"]
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # like uvicorn: user code next to where the command runs
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise PocketganError(
                f"{name}: no module named {module_name} (looked in the current directory {cwd} and the installed "
                "packages); run pocketgan where that file is, or install its package"
            ) from None
        raise PocketganError(f"{name}: importing {module_name} failed: {exc}") from None
    except Exception as exc:  # the user's module raised while importing
        raise PocketganError(f"{name}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None


def takes_widths(factory: Callable[..., Any]) -> bool:
    """True when ``factory`` builds pruned widths itself (it has a ``widths`` parameter, as the built-ins do)."""
    try:
        return "widths" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def call_factory(name: str, factory: Callable[..., Any], config: Mapping[str, Any], **extra: Any) -> Any:
    """``factory(**extra, **config)`` with a one-line error naming the reference when it raises."""
    try:
        return factory(**extra, **config)
    except PocketganError:
        raise
    except Exception as exc:
        settings = ", ".join(f"{k}={v!r}" for k, v in config.items())
        raise PocketganError(f"building {name}({settings}) failed: {type(exc).__name__}: {exc}") from None


def build_from_reference(
    name: str,
    config: Mapping[str, Any],
    widths: Mapping[str, int] | None = None,
    *,
    pruners: Mapping[type, Any] | None = None,
) -> Generator:
    """Build the generator ``name`` (registered or ``module:factory``) with ``config`` and pruned ``widths``.

    ``pruners`` adds torch-pruning custom pruners (by module type) to the registered ones when a plain
    factory's model is pruned to ``widths``.
    """
    factory = resolve_factory(name)
    if takes_widths(factory):
        return call_factory(name, factory, config, widths=dict(widths) if widths else None)
    model = adopt(call_factory(name, factory, config), name, config)
    if widths:
        from pocketgan.models.graph import apply_widths

        apply_widths(model, widths, pruners=pruners)
    return model


def adopt(module: Any, name: str, config: Mapping[str, Any]) -> Generator:
    """A plain factory's result as a generator that records ``name`` and ``config`` as its rebuild recipe."""
    from pocketgan.models.wrap import WrappedGenerator, wrap

    if isinstance(module, Generator) and not isinstance(module, WrappedGenerator):
        return module
    if not isinstance(module, nn.Module):
        raise PocketganError(f"{name} returned a {type(module).__name__}, not a torch.nn.Module")
    return wrap(module, factory=name, config=dict(config))
