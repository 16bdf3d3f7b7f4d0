"""A restricted unpickler for network pickles (NVlabs stylegan2-ada / stylegan3 ``.pkl``): data only, never code.

:class:`RestrictedUnpickler` resolves only the globals that rebuild tensors, numpy arrays and
plain containers (``torch._utils._rebuild_tensor_v2``, storages, ``collections.OrderedDict``,
``numpy ... _reconstruct``, ...) and refuses every other global with one line naming it
(``module.qualname``), before anything is called. Tensor storages inside the pickle (nested
``torch.save`` blobs) are read with ``torch.load(weights_only=True)``.

NVlabs networks are ``torch_utils.persistence`` objects: the pickle calls
``_reconstruct_persistent_obj(meta)`` where ``meta`` holds the class's module *source code* and the
object's state. Here that call only records ``meta["class_name"]`` and ``meta["state"]`` in a
:class:`PersistentRecord`; the source is dropped unread, nothing is imported or executed.
:func:`module_tensors` then flattens a record's ``_parameters``/``_buffers``/``_modules`` into a
state dict.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pocketgan.core.errors import PocketganError, first_line


class UnsafePickleError(PocketganError):
    """A pickle asked for a global outside the allow-list (it would run code)."""


@dataclass
class PersistentRecord:
    """What an NVlabs persistent object's pickle says, recorded instead of executed."""

    class_name: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The constructor's keyword arguments as pickled (``_init_kwargs``), ``{}`` when absent."""
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}


class PlainDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access): only its items are kept."""

    def __setstate__(self, state: Any) -> None:  # EasyDict pickles no extra state; ignore any
        return None


def _record_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError("malformed persistent object in the pickle (no state dict)")
    return PersistentRecord(class_name=str(meta.get("class_name", "?")), state=dict(meta["state"]))


def _load_storage_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes``, but through torch's weights-only unpickler."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _allowed_globals() -> dict[str, Any]:
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

    allowed: dict[str, Any] = {
        "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": torch._utils._rebuild_parameter_with_state,
        "torch.storage._load_from_bytes": _load_storage_bytes,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "collections.OrderedDict": collections.OrderedDict,
        "torch_utils.persistence._reconstruct_persistent_obj": _record_persistent,
        "dnnlib.util.EasyDict": PlainDict,
        "dnnlib.EasyDict": PlainDict,
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
    }
    for builtins in ("builtins", "__builtin__"):
        for name, value in (("set", set), ("frozenset", frozenset), ("complex", complex), ("bytearray", bytearray)):
            allowed[f"{builtins}.{name}"] = value
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[f"{core}._reconstruct"] = multiarray._reconstruct
        allowed[f"{core}.scalar"] = multiarray.scalar
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32,
                  torch.int16, torch.int8, torch.uint8, torch.bool):  # fmt: skip
        allowed[str(dtype)] = dtype  # "torch.float32"
    for storage in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool"):
        allowed[f"torch.{storage}Storage"] = getattr(torch, f"{storage}Storage")
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that rebuilds data only; ``source`` names the file in error messages."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in self.allowed:
            return self.allowed[qualified]
        raise UnsafePickleError(
            f"{self.source}: refusing to unpickle {qualified} (only tensors, arrays and plain containers are "
            "rebuilt; pocketgan never runs a pickle's code)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refusing a persistent id in the pickle ({str(pid)[:60]})")


def restricted_load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; a refused global or corrupt file is one line."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return RestrictedUnpickler(f, str(path)).load()
    except PocketganError:
        raise
    except Exception as exc:  # truncated, not a pickle, an allowed callable given bad arguments
        reason = first_line(exc, 200)
        raise PocketganError(f"{path}: cannot read the pickle ({reason})") from None


def module_tensors(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a recorded ``nn.Module``: its parameters and buffers, children recursively."""
    state = record.state
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None:
                tensors[prefix + name] = _as_tensor(value, prefix + name)
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, PersistentRecord):
            tensors.update(module_tensors(child, f"{prefix}{name}."))
        elif child is not None:
            raise PocketganError(f"{prefix}{name}: expected a persistent module, found {type(child).__name__}")
    return tensors


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().clone() if value.requires_grad else value
    raise PocketganError(f"{name}: expected a tensor in the pickled module, found {type(value).__name__}")
