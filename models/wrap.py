"""``wrap``: give any ``nn.Module`` the generator interface every pocketgan stage uses.

Like ``torch.nn.utils.parametrize``, :func:`wrap` swaps the module's class, in place, for a
subclass that adds pocketgan's :class:`~pocketgan.models.base.Generator` methods (``io``,
``spec``, ``check_input_size``, ...). The module's forward, parameters, buffers, module names
and state dict are untouched, so ``model.safetensors`` loads back into the user's own class.

The spec of a wrapped model is its factory reference (``mypkg.nets:build`` + config, or the
module's own class when no factory is given) and, once pruned, every prunable layer's width;
:func:`pocketgan.models.factory.build_from_reference` rebuilds it from that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

from pocketgan.core.contract import GeneratorSpec, IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.models.base import FeatureTap, Generator, prunable_widths

#: What wrapping adds to a module; a module that already has one of these cannot be wrapped.
INTERFACE = (
    "io", "arch", "spec", "feature_taps", "check_input_size", "example_input", "pocketgan_wrap", "wrapped_class",
)  # fmt: skip


class WrapInfo:
    """What :func:`wrap` records on a module: its rebuild recipe and its unpruned widths."""

    def __init__(self, factory: str, config: Mapping[str, Any], taps: Iterable[FeatureTap], base: dict[str, int]):
        self.factory = factory
        self.config = dict(config)
        self.taps = list(taps)
        self.base_widths = dict(base)  # the factory's widths: a spec records widths only when they differ


class WrappedGenerator(Generator):
    """The generator interface mixed into a wrapped module's class (see :func:`wrap`)."""

    pocketgan_wrap: WrapInfo
    wrapped_class: type  # the user's class, set on each per-class subclass

    def spec(self) -> GeneratorSpec:
        """The factory reference and config, plus every prunable layer's width once any differs."""
        info = self.pocketgan_wrap
        widths = prunable_widths(self)
        changed = widths != info.base_widths
        return GeneratorSpec(arch=info.factory, config=dict(info.config), widths=widths if changed else None)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """Pickle (``torch.save(model)``) and deep-copy through the user's class, re-wrapped on load."""
        return (_rewrapped, (type(self).wrapped_class,), self.__dict__)

    def feature_taps(self) -> list[FeatureTap]:
        """The taps given to :func:`wrap` (distillers read these intermediate features)."""
        if not self.pocketgan_wrap.taps:
            raise PocketganError(
                f"{self.arch} declares no feature taps; pass taps=[FeatureTap(name, channels, stride), ...] to "
                "pocketgan.models.wrap to distill features from it"
            )
        return list(self.pocketgan_wrap.taps)


def wrap(
    module: nn.Module,
    io: IOSpec | None = None,
    *,
    factory: str | Callable[..., Any] | None = None,
    config: Mapping[str, Any] | None = None,
    taps: Iterable[FeatureTap] | None = None,
) -> Generator:
    """Make ``module`` a pocketgan generator, in place, and return it.

    ``io``: how pixels enter and leave it (default ``IOSpec()``: 3 → 3 channels in [-1, 1], sizes
    multiples of 4). ``factory`` (``"mypkg.nets:build"`` or the callable itself) and ``config`` are
    recorded in saved model directories so ``load_model`` and the CLI rebuild the model with
    ``factory(**config)``; without them the module's class is recorded and called with no arguments.
    ``taps`` lists intermediate features for distillation. Wrapping a wrapped module updates what is given.
    """
    if not isinstance(module, nn.Module):
        raise PocketganError(f"wrap() takes a torch.nn.Module; got {type(module).__name__}")
    if isinstance(module, Generator) and not isinstance(module, WrappedGenerator):
        return module  # a built-in generator already is one
    if isinstance(module, WrappedGenerator):
        return _update(module, io, factory, config, taps)
    clashes = [name for name in INTERFACE if hasattr(type(module), name) or name in vars(module)]
    if clashes:
        raise PocketganError(
            f"cannot wrap {type(module).__name__}: it already has {', '.join(clashes)}, which pocketgan's generator "
            "interface adds; wrap a module that holds it instead"
        )
    original = type(module)
    module.__class__ = _wrapped_class(original)
    module.io = io or IOSpec()
    module.arch = _reference(factory, original)
    module.pocketgan_wrap = WrapInfo(module.arch, config or {}, taps or (), prunable_widths(module))
    return module


def _update(module: WrappedGenerator, io: IOSpec | None, factory: Any, config: Any, taps: Any) -> Generator:
    info = module.pocketgan_wrap
    if io is not None:
        module.io = io
    if factory is not None:
        module.arch = info.factory = _reference(factory, None)
    if config is not None:
        info.config = dict(config)
    if taps is not None:
        info.taps = list(taps)
    return module


_CLASSES: dict[type, type] = {}


def _wrapped_class(cls: type) -> type:
    """``cls`` with the generator interface first in its MRO (one class per wrapped type)."""
    if cls not in _CLASSES:
        names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "wrapped_class": cls}
        _CLASSES[cls] = type(cls.__name__, (WrappedGenerator, cls), names)
    return _CLASSES[cls]


def _rewrapped(cls: type) -> nn.Module:
    """An empty instance of ``cls`` with the generator interface (its state follows, as for any module)."""
    module = cls.__new__(cls)
    module.__class__ = _wrapped_class(cls)
    return module


def _reference(factory: str | Callable[..., Any] | None, cls: type | None) -> str:
    """``"module:qualname"`` of ``factory`` (or of ``cls`` when no factory is given)."""
    if isinstance(factory, str):
        return factory
    target = factory if factory is not None else cls
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if not module or not qualname:
        raise PocketganError(f"wrap(factory=...) needs a 'module:function' string or a named callable; got {target!r}")
    return f"{module}:{qualname}"


def rebuildable(reference: str) -> str | None:
    """Why a model recorded as ``reference`` could not be rebuilt elsewhere, or ``None`` when it can."""
    if "<locals>" in reference or "<lambda>" in reference:
        return f"{reference} is defined inside a function; pass factory='module:function' to pocketgan.models.wrap"
    return None
