"""Helpers the method modules share: typed options, loss logging, freezing, taps, the conditional PatchGAN."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import types
import typing
from dataclasses import fields
from typing import Any, TypeVar

from torch import Tensor, nn

from pocketgan.distill.base import DistillConfig, set_requires_grad
from pocketgan.core.errors import PocketganError
from pocketgan.models import create_discriminator

_Options = TypeVar("_Options", bound="MethodOptions")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class MethodOptions:
    """Mixin for a method's options dataclass: :meth:`from_config` reads ``config.options``.

    Values are coerced to the type of the field's default (``"1e2"`` → 100.0, ``"false"``
    → False; for a tuple default ``"1,2"``, ``[1, 2]`` or ``1`` → a tuple), so options typed
    on the command line (``--option lambda_cd=1e2``) or in a recipe work. A field that defaults
    to None is coerced by its annotation (``teacher_lr: float | None``: ``"1e-4"`` → 1e-4,
    ``"none"`` → None).
    Unknown names and bad values raise a one-line :class:`PocketganError`; subclasses
    validate ranges and choices in ``__post_init__``.
    """

    @classmethod
    def from_config(cls: type[_Options], config: DistillConfig, method: str) -> _Options:
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(config.options) - set(known))
        if unknown:
            raise PocketganError(
                f"{method}: unknown option {', '.join(unknown)}; valid options: {', '.join(sorted(known))}"
            )
        try:
            hints = typing.get_type_hints(cls)
        except NameError:  # an annotation only importable under TYPE_CHECKING: coerce by defaults alone
            hints = {}
        values = {key: _coerce(method, key, value, _prototype(known[key].default, hints.get(key)))
                  for key, value in config.options.items()}  # fmt: skip
        return cls(**values)


def _prototype(default: Any, annotation: Any) -> Any:
    """What a value is coerced like: the default, or for a None default a zero of the annotated type."""
    if default is not None:
        return default
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        if len(kinds) == 1 and kinds[0] in (bool, int, float, str):
            return _Optional(kinds[0]())
    return None


class _Optional:
    """A None-defaulted option's prototype: ``none`` → None, anything else coerced like ``zero``."""

    def __init__(self, zero: Any) -> None:
        self.zero = zero


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, _Optional):
        if value is None or str(value).strip().lower() == "none":
            return None
        default = default.zero
    if isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(","))
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)
    try:
        if isinstance(default, bool):
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError
            return text in _TRUE
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str) and not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError):
        raise PocketganError(f"{method}: option {key}={value!r} must be a {type(default).__name__}") from None
    return value


def as_floats(losses: dict[str, Tensor]) -> dict[str, float]:
    """Detached Python floats of the losses, for logging."""
    return {key: float(value.detach()) for key, value in losses.items()}


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside the block (a generator's step through a
    discriminator); their previous ``requires_grad`` flags are restored afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    set_requires_grad(module, False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def require_choice(method: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    """One-line error unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PocketganError(f"{method}: option {key}={value!r}; choose {' or '.join(choices)}")


def require_non_negative(method: str, **values: float) -> None:
    """One-line error naming the first negative (or NaN) value."""
    for key, value in values.items():
        if not value >= 0:
            raise PocketganError(f"{method}: option {key} must be >= 0; got {value}")


def require_target(batch: dict[str, Tensor], method: str) -> Tensor:
    """The batch's ground truth ``B``, or a one-line error saying the method needs paired data."""
    if batch.get("B") is None:
        raise PocketganError(f"{method} needs paired data: the batch has no target B")
    return batch["B"]


def generator_taps(model: nn.Module, role: str) -> list:
    """``model.feature_taps()``, or a one-line error when ``model`` is not a pocketgan generator."""
    if not hasattr(model, "feature_taps"):
        raise PocketganError(f"the {role} ({type(model).__name__}) is not a pocketgan generator with feature taps")
    return model.feature_taps()


def conditional_discriminator(teacher: nn.Module, ndf: int, n_layers: int) -> nn.Module:
    """A PatchGAN on ``(A, B)`` pairs sized from ``teacher.io``."""
    io = teacher.io
    return create_discriminator("patchgan", input_nc=io.input_channels + io.output_channels, ndf=ndf,
                                n_layers=n_layers)  # fmt: skip
