"""The ``progress`` argument of distill's long-running functions (training, feature networks, evaluation).

They report through :class:`pocketgan.core.progress.ProgressTask` and never draw: the CLI passes
``pocketgan.console.RichProgress()``, a Python caller its own callback or nothing.
"""

from __future__ import annotations

from pocketgan.core.progress import ProgressCallback


def as_callback(progress: ProgressCallback | bool | None) -> ProgressCallback | None:
    """``progress`` when it is a callback, else ``None`` (silent).

    ``True``/``False`` (what these functions took before they reported through callbacks) mean silent:
    library code has no terminal to draw on.
    """
    return progress if callable(progress) else None
