"""The registry of runtime backends: ``register_backend("ort")``, ``list_backends()``, ``load(...)``.

A backend is a factory ``fn(artifact, *, threads, providers) -> Runner``. The ONNX Runtime
backend (``ort``) is built in; other levels of pocketgan add their own (``pocketgan.torch_backend``
registers ``torch``), the runtime itself never imports them. A backend can also be announced by
module (:func:`register_backend_module`) so that it is imported only when first loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import Registry

if TYPE_CHECKING:
    from pocketgan.runtime.runner import Runner

BackendFactory = Callable[..., "Runner"]

#: Runtime backends ``fn(artifact, *, threads, providers) -> Runner``; plugins: entry-point group
#: ``pocketgan.backends``. Built-in ones are announced by module and imported on first use.
BACKENDS: Registry[BackendFactory] = Registry("backend", group="pocketgan.backends")
BACKENDS.announce("ort", "pocketgan.runtime.ort_backend")


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: register ``fn(artifact, *, threads=None, providers=None) -> Runner`` under ``name``."""
    return BACKENDS.register(name)


def register_backend_module(name: str, module: str) -> None:
    """Announce backend ``name``, registered by importing ``module`` the first time it is loaded."""
    BACKENDS.announce(name, module)


def list_backends() -> list[str]:
    """Names accepted by :func:`load`."""
    return BACKENDS.names()


def load(
    artifact: str | os.PathLike[str],
    backend: str = "ort",
    threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> Runner:
    """Open ``artifact`` with ``backend`` and return a :class:`~pocketgan.runtime.runner.Runner`.

    ``threads`` sets the intra-op thread count (``None``: the library's default);
    ``providers`` overrides the backend's automatic choice of execution providers.
    """
    factory = BACKENDS.get(backend)
    if threads is not None and threads < 1:
        raise PocketganError(f"threads must be >= 1, got {threads}")
    return factory(artifact, threads=threads, providers=list(providers) if providers else None)
