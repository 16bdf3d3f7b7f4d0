"""Turning a third-party library's failure (torch, onnx, coremltools, TensorRT) into one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pocketgan.core.errors import PocketganError


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextmanager
def reraise_as_user_error(what: str) -> Iterator[None]:
    """Re-raise any unexpected exception inside the block as ``PocketganError("<what>: <first line>")``."""
    try:
        yield
    except PocketganError:
        raise
    except Exception as exc:
        raise PocketganError(f"{what}: {first_line(exc)}") from None
