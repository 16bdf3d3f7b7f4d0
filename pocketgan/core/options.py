"""Parsing the values users type: sizes, ``key=value`` options, scalars (standard library only).

Every verb spells these the same way: ``--size 256`` or ``--size 256x320`` (height × width),
``--option key=value`` (repeatable) for method options, ``-o/--out`` for what a verb writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pocketgan.core.errors import PocketganError

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$")


def parse_size(text: str | int, *, flag: str = "--size") -> tuple[int, int]:
    """``"256"`` → ``(256, 256)``; ``"256x320"`` → ``(256, 320)`` (height, width); both positive."""
    match = _SIZE.match(str(text))
    if not match:
        raise PocketganError(f"{flag} takes H or HxW (e.g. 256 or 256x320); got {text!r}")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height < 1 or width < 1:
        raise PocketganError(f"{flag} needs positive sizes; got {text!r}")
    return height, width


def parse_square_size(text: str | int, *, flag: str = "--size") -> int:
    """Like :func:`parse_size`, for verbs that work on square images: ``"64"`` or ``"64x64"`` → 64."""
    height, width = parse_size(text, flag=flag)
    if height != width:
        raise PocketganError(f"{flag} must be square here (H or HxH); got {text!r}")
    return height


def parse_value(text: str) -> Any:
    """``"true"`` → True, ``"16"`` → 16, ``"1e-4"`` → 0.0001, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_key_values(items: Iterable[str] | None, *, flag: str = "--option") -> dict[str, Any]:
    """``["lambda_cd=100", "agd_weights=10,1e4,10,1e-5", "use_deep=false"]`` → a typed dict.

    Commas make lists; ``-`` in keys becomes ``_``.
    """
    options: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise PocketganError(f"{flag} {item!r}: expected key=value")
        parts = [parse_value(p.strip()) for p in value.split(",")]
        options[key.strip().replace("-", "_")] = parts if len(parts) > 1 else parts[0]
    return options
