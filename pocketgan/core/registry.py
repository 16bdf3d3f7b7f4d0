"""One registry type for every pluggable thing in pocketgan (standard library only).

Generators, distillers, exporters, runtime backends, dataset builders, feature networks,
metrics and pruning criteria are each a :class:`Registry`. A registry fills itself lazily:

- built-in entries are registered by importing the registry's ``builtin_modules`` the first
  time it is looked up (so ``import pocketgan.models`` stays cheap);
- a single entry can be *announced* by module (:meth:`Registry.announce`) and is imported
  only when it is first asked for;
- third-party packages add entries through the Python entry-point ``group`` (for example
  ``[project.entry-points."pocketgan.generators"] mygan = "mypkg.models:build"``): the entry
  point's name is the registry name and the object it loads is the registered value.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar, overload

from pocketgan.core.errors import PocketganError

T = TypeVar("T")

#: The entry-point groups, one per registry (documented in the README's plugin section).
ENTRY_POINT_GROUPS = (
    "pocketgan.generators",
    "pocketgan.discriminators",
    "pocketgan.distillers",
    "pocketgan.exporters",
    "pocketgan.backends",
    "pocketgan.datasets",
    "pocketgan.features",
    "pocketgan.metrics",
    "pocketgan.importance",
)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean steps?)"`` when a choice is close to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Registry(Generic[T]):
    """A name → value table (factories, classes, strategies) with lazy built-ins and entry points.

    ``kind`` names one entry in messages (``"generator"``); ``group`` is the entry-point group.
    """

    def __init__(self, kind: str, *, group: str | None = None, builtin_modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self.group = group
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, T] = {}
        self._announced: dict[str, str] = {}
        self._builtins_loaded = False
        self._plugins: list[metadata.EntryPoint] | None = None

    # ------------------------------------------------------------------ registering
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, value: T) -> T: ...

    def register(self, name: str, value: Any = None) -> Any:
        """Register ``value`` under ``name``; without ``value``, a decorator that does it.

        Registering a name again replaces the entry (a plugin may override a built-in).
        """
        if not name or not isinstance(name, str):
            raise PocketganError(f"a {self.kind} needs a non-empty name")

        def add(item: T) -> T:
            self._entries[name] = item
            return item

        return add if value is None else add(value)

    def announce(self, name: str, module: str) -> None:
        """Make ``name`` known without importing ``module``, which registers it when first looked up."""
        self._announced[name] = module

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        """The entry registered as ``name``, or a one-line error listing the known names."""
        self._load_builtins()
        if name not in self._entries and name in self._announced:
            importlib.import_module(self._announced[name])
        if name not in self._entries:
            self._load_entry_point(name)
        if name not in self._entries:
            known = self.names()
            raise PocketganError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, known)}; choose from {', '.join(known) or '(none)'}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        """Every name :meth:`get` accepts (built-in, announced and entry points), sorted."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._announced) | {ep.name for ep in self._entry_points()})

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, entry)`` for every entry, loading announced ones and entry points."""
        for name in self.names():
            yield name, self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"

    # ------------------------------------------------------------------ loading
    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True  # set first: the modules call register() while importing
            for module in self._builtin_modules:
                importlib.import_module(module)

    def _entry_points(self) -> list[metadata.EntryPoint]:
        if self._plugins is None:  # read once: installed plugins do not change while running
            self._plugins = list(metadata.entry_points(group=self.group)) if self.group else []
        return self._plugins

    def _load_entry_point(self, name: str) -> None:
        for ep in self._entry_points():
            if ep.name == name:
                try:
                    value = ep.load()
                except Exception as exc:  # a broken plugin: name it, don't crash with its traceback
                    raise PocketganError(
                        f"{self.kind} plugin {name!r} ({ep.value}, entry point group {self.group}) failed to load: "
                        f"{type(exc).__name__}: {exc}"
                    ) from None
                self._entries.setdefault(name, value)
                return
