"""The error types every layer raises; the CLIs turn them into one line and a non-zero exit (standard library only)."""

from __future__ import annotations


class PocketganError(Exception):
    """A user-facing failure: bad input, a missing file, an unmet target. Printed as one line."""

    exit_code = 2


class ManifestError(PocketganError):
    """A model directory or artifact sidecar is missing, malformed or too new."""


class MissingDependencyError(PocketganError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: install pocketgan[{extra}] (pip install 'pocketgan[{extra}]')")


class ParityError(PocketganError):
    """An exported artifact disagrees with PyTorch beyond the tolerance."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type name: how a
    third-party library's failure is quoted inside a one-line :class:`PocketganError`."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
