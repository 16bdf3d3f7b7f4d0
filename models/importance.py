"""Channel-importance criteria for pruning: a registry of strategies (entry-point group ``pocketgan.importance``).

Built in: ``l1`` / ``l2`` (magnitude of each channel group's weights), ``taylor`` (|w · dL/dw| of
a proxy loss, see :mod:`pocketgan.models.prune`) and ``random`` (seeded). A plugin registers an
:class:`ImportanceCriterion` (or a torch-pruning ``Importance`` class or instance) under a name;
the Python API also takes a torch-pruning ``Importance`` object directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.core.registry import Registry


@dataclass(frozen=True)
class ImportanceCriterion:
    """A channel-ranking strategy: ``create()`` returns a fresh torch-pruning ``Importance``.

    ``needs_gradients``: it scores from parameter gradients, which pruning computes first.
    """

    create: Callable[[], Any]
    needs_gradients: bool = False
    summary: str = ""


#: Importance criteria by name; plugins: entry-point group ``pocketgan.importance``.
IMPORTANCE: Registry[Any] = Registry("importance", group="pocketgan.importance")


def _tp() -> Any:
    return require("torch_pruning", "train", "channel pruning")


def register_importance(name: str, criterion: ImportanceCriterion | Any) -> None:
    """Register ``criterion`` (an :class:`ImportanceCriterion` or a torch-pruning ``Importance``) as ``name``."""
    IMPORTANCE.register(name, criterion)


register_importance("l1", ImportanceCriterion(lambda: _tp().importance.MagnitudeImportance(p=1), summary="L1 norm"))
register_importance("l2", ImportanceCriterion(lambda: _tp().importance.MagnitudeImportance(p=2), summary="L2 norm"))
register_importance(
    "taylor",
    ImportanceCriterion(lambda: _tp().importance.TaylorImportance(), needs_gradients=True, summary="|w · dL/dw|"),
)
register_importance("random", ImportanceCriterion(lambda: _tp().importance.RandomImportance(), summary="seeded random"))


def resolve_importance(importance: str | Any) -> tuple[str, ImportanceCriterion]:
    """``(name, criterion)`` for a registered name, an :class:`ImportanceCriterion` or a torch-pruning Importance."""
    if isinstance(importance, str):
        return importance, as_criterion(IMPORTANCE.get(importance), importance)
    return type(importance).__name__, as_criterion(importance, type(importance).__name__)


def as_criterion(value: Any, name: str) -> ImportanceCriterion:
    """Normalize what a registry entry or a caller gives into an :class:`ImportanceCriterion`."""
    if isinstance(value, ImportanceCriterion):
        return value
    imp = _tp().importance
    if isinstance(value, imp.Importance):
        return ImportanceCriterion(lambda: copy.deepcopy(value), isinstance(value, imp.GroupTaylorImportance))
    if isinstance(value, type) and issubclass(value, imp.Importance):
        return ImportanceCriterion(value, issubclass(value, imp.GroupTaylorImportance))
    raise PocketganError(
        f"importance {name!r} is a {type(value).__name__}: expected a registered name, an ImportanceCriterion "
        "or a torch-pruning Importance"
    )
