"""`pocketgan bench`: the runtime's benchmark with an extra ``torch`` backend for eager comparisons.

Options are shared with ``pocketgan-bench`` (:mod:`pocketgan.runtime.cli`); only the backend list differs.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `bench` verb to `app`."""
    from pocketgan.runtime.cli import add_bench_command
    from pocketgan.runtime.registry import register_backend_module

    register_backend_module("torch", "pocketgan.torch_backend")  # imported (with torch) only when used
    add_bench_command(app, name="bench")
