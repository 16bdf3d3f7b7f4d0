"""Turning a third-party library's failure (torch, onnx, coremltools, TensorRT) into one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pocketgan.core.errors import PocketganError, first_line

__all__ = ["first_line", "reraise_as_user_error"]


@contextmanager
def reraise_as_user_error(what: str) -> Iterator[None]:
    """Re-raise any unexpected exception inside the block as ``PocketganError("<what>: <first line>")``."""
    try:
        yield
    except PocketganError:
        raise
    except Exception as exc:
        raise PocketganError(f"{what}: {first_line(exc)}") from None
